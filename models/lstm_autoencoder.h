// LSTMAutoencoder (seeds 000 and 003): an encoder LSTM reads a padded batch of sequences and
// its state at each sequence's last valid step is the code; a decoder LSTM turns the code back
// into a sequence, with a linear layer giving per-step logits for bce_with_logits (linear:
// seed 000's ReLU on the logits kept every output at or above 0.5). Two decoders:
//
//   repeat   the code h repeated at every step as the input of a decoder LSTM that starts
//            from zeros (Keras' RepeatVector, the usual answer to seed 003);
//   seq2seq  a decoder LSTM started from the encoder's final (h, c) (seed 000): in training
//            teacher-forced (its input at step t is the target at t - 1, zeros at t = 0), at
//            test time free-running (its input at step t is its own prediction at t - 1,
//            made a 0/1 vector again: see LSTMFeedback).
//
// Free-running feeds back 0/1 vectors, not the sigmoid probabilities, because the
// teacher-forced inputs are exactly such vectors: a decoder that predicted step t - 1 right
// then sees at step t precisely the input it was trained on (probabilities are inputs it
// never saw in training). The default, threshold (logit > 0), can reproduce every target of
// seed 003, including its all-zero steps; argmax (one-hot of the most likely symbol) suits
// data whose every valid step is one-hot (the random symbol sequences), where a step left
// all-zero by an unsure threshold is an input the decoder never saw mid-sequence.
//
// Padding: steps at or after a sequence's length never influence the code, the valid outputs
// or the loss (they are replaced by zeros first, so even NaN padding is harmless), and the
// loss is the mean over valid steps only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../nn/nn.h"

namespace encore::models {

enum class LSTMDecoderKind { repeat, seq2seq };

/// What a free-running seq2seq decoder feeds back at step t from its logits z at t - 1.
enum class LSTMFeedback {
  threshold,  ///< 1 where z > 0 (sigmoid > 0.5), else 0: any 0/1 vector, all-zero included
  argmax,     ///< one-hot of argmax(z): always exactly one symbol
};

/// "repeat" / "seq2seq".
const char* decoder_kind_name(LSTMDecoderKind kind);
/// "threshold" / "argmax".
const char* feedback_name(LSTMFeedback feedback);

struct LSTMAutoencoderOptions {
  /// Features per step (seed 003: 8, the one-hot width).
  int64_t input_dim = 8;
  /// Units of the encoder and decoder LSTMs (seed 003: 20).
  int64_t hidden = 20;
  LSTMDecoderKind decoder = LSTMDecoderKind::repeat;
  /// Free-running feedback of the seq2seq decoder (unused by repeat).
  LSTMFeedback feedback = LSTMFeedback::threshold;
  /// Keras' LSTM initialisation (glorot / orthogonal / unit forget bias), as in seed 003.
  nn::RecurrentInit init = nn::RecurrentInit::keras;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// The autoencoder. Submodules "encoder" (LSTM I -> H), "decoder" (LSTM H -> H for repeat,
/// I -> H for seq2seq) and "output" (Linear H -> I):
///   models::LSTMAutoencoder ae({.hidden = 20, .decoder = models::LSTMDecoderKind::seq2seq});
///   Tensor loss = ae.loss(x, lengths);          // x (N, T, 8), lengths (N) i64
///   Tensor codes = ae.code(ae.encode(x, lengths));
class LSTMAutoencoder : public nn::Module {
 public:
  explicit LSTMAutoencoder(const LSTMAutoencoderOptions& options = {});

  /// x: (N, T, I), lengths: (N) i64 in [0, T] or undefined (every sequence has T steps) ->
  /// the encoder's state {h, c} after each sequence's last valid step, each (N, H) (zeros
  /// for a sequence of length 0).
  nn::LSTMState encode(const Tensor& x, const Tensor& lengths = Tensor()) const;

  /// The fixed-size vector the decoder reads: state.h (N, H) for repeat, concat(h, c)
  /// (N, 2H) for seq2seq (seed 000's "final state (c, h)").
  Tensor code(const nn::LSTMState& state) const;
  /// Width of code(): H or 2H.
  int64_t code_size() const;

  /// The inverse of code(): code (N, code_size()) -> state {h, c} each (N, H) (c is zeros
  /// for repeat, whose decoder reads only h), e.g. to decode codes read back from a file.
  nn::LSTMState state_from_code(const Tensor& code) const;

  /// Inference decoding: state {h, c} each (N, H) -> logits (N, steps, I). repeat: h
  /// repeated over steps; seq2seq: free-running (options.feedback; not differentiated).
  Tensor decode(const nn::LSTMState& state, int64_t steps) const;

  /// Training decoding: state {h, c} each (N, H), targets (N, T, I) -> logits (N, T, I).
  /// seq2seq: teacher-forced (input at t = targets[:, t - 1], zeros at t = 0); repeat: the
  /// same as decode(state, T) (targets only give T). Targets at padded steps affect only
  /// outputs at later padded steps; forward() zeroes them first.
  Tensor decode_teacher_forced(const nn::LSTMState& state, const Tensor& targets) const;

  /// The training path: x (N, T, I), lengths (N) or undefined -> logits (N, T, I)
  /// (teacher-forced for seq2seq).
  Tensor forward(const Tensor& x, const Tensor& lengths = Tensor()) const;
  /// The inference path: x, lengths -> logits (N, T, I) decoded from the code alone
  /// (free-running for seq2seq; the same as forward for repeat).
  Tensor reconstruct(const Tensor& x, const Tensor& lengths = Tensor()) const;

  /// Scalar: the mean over valid steps of the per-step binary cross-entropy (mean over the I
  /// features, as Keras' binary_crossentropy) between forward(x, lengths) and x.
  Tensor loss(const Tensor& x, const Tensor& lengths = Tensor()) const;
  /// The same masked mean for given logits and targets (N, T, I), lengths (N) or undefined.
  Tensor masked_loss(const Tensor& logits, const Tensor& targets,
                     const Tensor& lengths = Tensor()) const;

  const LSTMAutoencoderOptions& options() const { return options_; }
  /// "LSTMAutoencoder(8 -> 20, seq2seq)".
  std::string describe() const override;

 private:
  /// Checks x and lengths against the options (messages name the model and the shapes) and
  /// returns x with its padded steps zeroed.
  Tensor checked_input(const char* what, const Tensor& x, const Tensor& lengths) const;
  void check_state(const char* what, const nn::LSTMState& state) const;

  LSTMAutoencoderOptions options_;
  std::shared_ptr<nn::LSTM> encoder_;
  std::shared_ptr<nn::LSTM> decoder_;
  std::shared_ptr<nn::Linear> output_;
};

}  // namespace encore::models
