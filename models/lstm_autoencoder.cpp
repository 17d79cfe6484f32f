// LSTMAutoencoder: encoder state as the code, repeat-vector or seq2seq decoder, per-step
// linear logits, losses masked to the valid steps (see lstm_autoencoder.h).
#include "models/lstm_autoencoder.h"

#include <vector>

namespace encore::models {

namespace {
constexpr const char* kName = "LSTMAutoencoder";
}

const char* decoder_kind_name(LSTMDecoderKind kind) {
  return kind == LSTMDecoderKind::repeat ? "repeat" : "seq2seq";
}

const char* feedback_name(LSTMFeedback feedback) {
  return feedback == LSTMFeedback::threshold ? "threshold" : "argmax";
}

LSTMAutoencoder::LSTMAutoencoder(const LSTMAutoencoderOptions& o) : options_(o) {
  ENCORE_CHECK(o.input_dim > 0 && o.hidden > 0, kName,
               "input_dim and hidden must be positive, got ", o.input_dim, " and ", o.hidden);
  ENCORE_CHECK(o.decoder == LSTMDecoderKind::repeat || o.decoder == LSTMDecoderKind::seq2seq, kName,
               "unknown decoder kind ", static_cast<int>(o.decoder));
  ENCORE_CHECK(o.feedback == LSTMFeedback::threshold || o.feedback == LSTMFeedback::argmax, kName,
               "unknown feedback ", static_cast<int>(o.feedback));
  nn::RecurrentOptions rnn{.init = o.init, .gen = o.gen};
  const bool repeat = o.decoder == LSTMDecoderKind::repeat;
  encoder_ = register_module("encoder", std::make_shared<nn::LSTM>(o.input_dim, o.hidden, rnn));
  decoder_ = register_module(
      "decoder", std::make_shared<nn::LSTM>(repeat ? o.hidden : o.input_dim, o.hidden, rnn));
  output_ = register_module("output", std::make_shared<nn::Linear>(
                                          o.hidden, o.input_dim, nn::LinearOptions{.gen = o.gen}));
}

Tensor LSTMAutoencoder::checked_input(const char* what, const Tensor& x,
                                      const Tensor& lengths) const {
  const int64_t dim = options_.input_dim;
  ENCORE_CHECK(x.defined(), kName, what, ": input is undefined");
  ENCORE_CHECK(x.dim() == 3 && x.size(2) == dim && x.size(0) > 0 && x.size(1) > 0, kName, what,
               ": expected x (N, T, ", dim, ") with N, T > 0, got ", x.shape());
  ENCORE_CHECK(x.dtype() == DType::f32, kName, what, ": expected f32 x, got ", x.dtype(), " ",
               x.shape());
  if (!lengths.defined()) return x;
  const int64_t n = x.size(0), steps = x.size(1);
  ENCORE_CHECK(lengths.dtype() == DType::i64 && lengths.dim() == 1 && lengths.size(0) == n, kName,
               what, ": expected lengths as i64 (", n, ") for x ", x.shape(), ", got ",
               lengths.dtype(), " ", lengths.shape());
  std::vector<int64_t> len = lengths.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    ENCORE_CHECK(len[i] >= 0 && len[i] <= steps, kName, what, ": lengths[", i, "] = ", len[i],
                 " is outside [0, ", steps, "] for x ", x.shape());
  // (N, T, 1): padded steps become zeros, so nothing there (not even NaN) reaches a value or
  // a gradient.
  Tensor keep = unsqueeze(nn::sequence_mask(lengths, steps), 2);
  return where(keep, x, scalar(0.0));
}

void LSTMAutoencoder::check_state(const char* what, const nn::LSTMState& s) const {
  const int64_t h = options_.hidden;
  ENCORE_CHECK(s.h.defined() && s.c.defined(), kName, what, ": the state needs both h and c");
  ENCORE_CHECK(s.h.dim() == 2 && s.h.size(1) == h && s.h.size(0) > 0 && s.c.shape() == s.h.shape(),
               kName, what, ": expected state h and c (N, ", h, "), got ", s.h.shape(), " and ",
               s.c.shape());
}

nn::LSTMState LSTMAutoencoder::encode(const Tensor& x, const Tensor& lengths) const {
  Tensor input = checked_input("encode", x, lengths);
  nn::LSTMOutput out = encoder_->forward(input, {}, lengths);
  return {select(out.h_n, 0, 0), select(out.c_n, 0, 0)};  // (1, N, H) -> (N, H)
}

Tensor LSTMAutoencoder::code(const nn::LSTMState& state) const {
  check_state("code", state);
  if (options_.decoder == LSTMDecoderKind::repeat) return state.h;
  return concat({state.h, state.c}, 1);
}

int64_t LSTMAutoencoder::code_size() const {
  return options_.decoder == LSTMDecoderKind::repeat ? options_.hidden : 2 * options_.hidden;
}

nn::LSTMState LSTMAutoencoder::state_from_code(const Tensor& code) const {
  ENCORE_CHECK(code.defined() && code.dim() == 2 && code.size(1) == code_size() &&
                   code.size(0) > 0 && code.dtype() == DType::f32,
               kName, "state_from_code: expected f32 codes (N, ", code_size(), ") for the ",
               decoder_kind_name(options_.decoder), " decoder, got ",
               code.defined() ? to_string(code.shape()) : "undefined");
  const int64_t h = options_.hidden;
  if (options_.decoder == LSTMDecoderKind::repeat) return {code, zeros({code.size(0), h})};
  return {narrow(code, 1, 0, h), narrow(code, 1, h, h)};
}

Tensor LSTMAutoencoder::decode(const nn::LSTMState& state, int64_t steps) const {
  check_state("decode", state);
  ENCORE_CHECK(steps > 0, kName, "decode: steps must be positive, got ", steps);
  const int64_t n = state.h.size(0), h = options_.hidden, dim = options_.input_dim;
  if (options_.decoder == LSTMDecoderKind::repeat) {
    // RepeatVector: (N, H) -> (N, steps, H), a stride-0 view.
    Tensor repeated = expand(unsqueeze(state.h, 1), {n, steps, h});
    return output_->forward(decoder_->forward(repeated).output);
  }
  // Free-running: one step at a time, feeding back the prediction as a 0/1 vector.
  nn::LSTMState s{unsqueeze(state.h, 0), unsqueeze(state.c, 0)};  // (1, N, H)
  Tensor input = zeros({n, 1, dim});
  const Tensor symbols = arange(0, double(dim), 1, DType::f32);  // (I)
  Tensors logits;
  logits.reserve(size_t(steps));
  for (int64_t t = 0; t < steps; ++t) {
    nn::LSTMOutput out = decoder_->forward(input, s);
    s = {out.h_n, out.c_n};
    Tensor z = output_->forward(out.output);  // (N, 1, I)
    logits.push_back(z);
    // 1/0 f32 (N, 1, I); comparisons are not differentiated.
    if (options_.feedback == LSTMFeedback::threshold)
      input = gt(stop_gradient(z), 0.0);
    else
      input = eq(unsqueeze(argmax(stop_gradient(z), 2).to(DType::f32), 2), symbols);
  }
  return concat(logits, 1);
}

Tensor LSTMAutoencoder::decode_teacher_forced(const nn::LSTMState& state,
                                              const Tensor& targets) const {
  check_state("decode_teacher_forced", state);
  const int64_t dim = options_.input_dim;
  ENCORE_CHECK(targets.defined() && targets.dim() == 3 && targets.size(2) == dim &&
                   targets.size(1) > 0 && targets.dtype() == DType::f32,
               kName, "decode_teacher_forced: expected f32 targets (N, T, ", dim, "), got ",
               targets.defined() ? to_string(targets.shape()) : "undefined");
  ENCORE_CHECK(targets.size(0) == state.h.size(0), kName, "decode_teacher_forced: targets ",
               targets.shape(), " and state ", state.h.shape(), " differ in batch size");
  const int64_t steps = targets.size(1);
  if (options_.decoder == LSTMDecoderKind::repeat) return decode(state, steps);
  // Inputs (N, T, I): zeros at t = 0, then targets[:, 0 .. T-2] (shifted right by one).
  Tensor inputs = pad(narrow(targets, 1, 0, steps - 1), {0, 0, 1, 0});
  nn::LSTMOutput out = decoder_->forward(inputs, {unsqueeze(state.h, 0), unsqueeze(state.c, 0)});
  return output_->forward(out.output);
}

Tensor LSTMAutoencoder::forward(const Tensor& x, const Tensor& lengths) const {
  Tensor input = checked_input("forward", x, lengths);
  return decode_teacher_forced(encode(input, lengths), input);
}

Tensor LSTMAutoencoder::reconstruct(const Tensor& x, const Tensor& lengths) const {
  Tensor input = checked_input("reconstruct", x, lengths);
  return decode(encode(input, lengths), input.size(1));
}

Tensor LSTMAutoencoder::masked_loss(const Tensor& logits, const Tensor& targets,
                                    const Tensor& lengths) const {
  ENCORE_CHECK(logits.defined() && targets.defined() && logits.shape() == targets.shape(), kName,
               "loss: logits and targets must have one shape (N, T, I), got ",
               logits.defined() ? to_string(logits.shape()) : "undefined", " and ",
               targets.defined() ? to_string(targets.shape()) : "undefined");
  Tensor clean = checked_input("loss", targets, lengths);
  // (N, T): Keras' binary_crossentropy averages over the features of a step.
  Tensor per_step = mean(nn::bce_with_logits(logits, clean, nn::Reduction::none), {2});
  if (!lengths.defined()) return mean(per_step);
  Tensor valid = nn::sequence_mask(lengths, targets.size(1));
  double count = sum(valid).item();
  // where, not a product with the mask: a padded step's loss never reaches the sum or the
  // gradient, whatever its value. A batch of only empty sequences has loss 0.
  return sum(where(valid, per_step, scalar(0.0))) / (count > 0 ? count : 1.0);
}

Tensor LSTMAutoencoder::loss(const Tensor& x, const Tensor& lengths) const {
  Tensor input = checked_input("loss", x, lengths);
  return masked_loss(forward(input, lengths), input, lengths);
}

std::string LSTMAutoencoder::describe() const {
  std::string s = std::string(kName) + "(" + std::to_string(options_.input_dim) + " -> " +
                  std::to_string(options_.hidden) + ", " + decoder_kind_name(options_.decoder);
  if (options_.decoder == LSTMDecoderKind::seq2seq && options_.feedback == LSTMFeedback::argmax)
    s += ", argmax feedback";
  return s + ")";
}

}  // namespace encore::models
