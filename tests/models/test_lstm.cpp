// Tests of models/lstm_autoencoder and models/sequence_data:
//   - output shapes of both decoders (training path, free-running path, codes);
//   - masking: padded steps (even NaN) change neither the code nor the loss nor its
//     gradients, a padded sequence has the code of the same sequence unpadded, and the loss
//     is the mean over valid steps computed here by hand;
//   - teacher forcing shifts the targets by one step, and free-running decoding feeds back
//     the thresholded predictions (teacher-forcing with those gives the same logits);
//   - a short run learns seed 003's task (both decoders);
//   - the random sequence generator (lengths, one-hot, zero padding, held-out disjoint and
//     distinct), sequence text, accuracy and the length probe on hand-made cases;
//   - the errors a user can provoke name the model and the shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "models/lstm_autoencoder.h"
#include "models/sequence_data.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::expect_error;
using models::LSTMAutoencoder;
using models::LSTMDecoderKind;

namespace {

const LSTMDecoderKind kKinds[] = {LSTMDecoderKind::repeat, LSTMDecoderKind::seq2seq};

// A batch of 3 one-hot sequences of lengths 4, 1, 6 over 5 symbols, padded to T = 6.
nn::Sequences small_batch() {
  std::vector<std::vector<int>> seqs = {{0, 3, 2, 4}, {1}, {4, 4, 0, 1, 2, 3}};
  Tensor x = zeros({3, 6, 5});
  std::vector<int64_t> len;
  for (size_t i = 0; i < seqs.size(); ++i) {
    len.push_back(int64_t(seqs[i].size()));
    for (size_t t = 0; t < seqs[i].size(); ++t)
      x.data<float>()[(i * 6 + t) * 5 + size_t(seqs[i][t])] = 1.0f;
  }
  return {x, from_vector<int64_t>(len, {3})};
}

// x with every padded step overwritten by `value`.
Tensor fill_padding(const Tensor& x, const Tensor& lengths, float value) {
  Tensor y = x.clone();
  std::vector<int64_t> len = lengths.to_vector<int64_t>();
  const int64_t steps = x.size(1), dim = x.size(2);
  for (int64_t i = 0; i < x.size(0); ++i)
    for (int64_t t = len[i]; t < steps; ++t)
      for (int64_t k = 0; k < dim; ++k) y.data<float>()[(i * steps + t) * dim + k] = value;
  return y;
}

std::shared_ptr<LSTMAutoencoder> make_model(LSTMDecoderKind kind, Generator& gen, int64_t dim = 5,
                                            int64_t hidden = 7) {
  return std::make_shared<LSTMAutoencoder>(models::LSTMAutoencoderOptions{
      .input_dim = dim, .hidden = hidden, .decoder = kind, .gen = &gen});
}

}  // namespace

TEST_CASE("LSTMAutoencoder: output shapes of both decoders") {
  for (LSTMDecoderKind kind : kKinds) {
    CAPTURE(models::decoder_kind_name(kind));
    Generator gen(1);
    auto ae = make_model(kind, gen);
    nn::Sequences b = small_batch();
    nn::LSTMState s = ae->encode(b.x, b.lengths);
    CHECK(s.h.shape() == Shape{3, 7});
    CHECK(s.c.shape() == Shape{3, 7});
    Tensor code = ae->code(s);
    const int64_t width = kind == LSTMDecoderKind::repeat ? 7 : 14;
    CHECK(ae->code_size() == width);
    CHECK(code.shape() == Shape{3, width});
    CHECK(ae->forward(b.x, b.lengths).shape() == Shape{3, 6, 5});
    CHECK(ae->reconstruct(b.x, b.lengths).shape() == Shape{3, 6, 5});
    CHECK(ae->forward(b.x).shape() == Shape{3, 6, 5});  // no lengths: all T steps valid
    // Free-running for any number of steps, from a code read back as a state.
    CHECK(ae->decode(ae->state_from_code(code), 13).shape() == Shape{3, 13, 5});
    CHECK(ae->loss(b.x, b.lengths).dim() == 0);
    // Parameter names: encoder / decoder LSTMs (PyTorch's names) and the output layer.
    std::set<std::string> names;
    for (const auto& [name, t] : ae->named_parameters()) names.insert(name);
    CHECK(names.count("encoder.weight_ih_l0") == 1);
    CHECK(names.count("decoder.weight_hh_l0") == 1);
    CHECK(names.count("output.weight") == 1);
    CHECK(ae->describe() ==
          std::string("LSTMAutoencoder(5 -> 7, ") + models::decoder_kind_name(kind) + ")");
  }
  // The repeat decoder reads the code (H), the seq2seq decoder the sequence's symbols (I).
  Generator gen(1);
  auto rep = make_model(LSTMDecoderKind::repeat, gen);
  auto s2s = make_model(LSTMDecoderKind::seq2seq, gen);
  CHECK(rep->state_dict().at("decoder.weight_ih_l0").shape() == Shape{28, 7});
  CHECK(s2s->state_dict().at("decoder.weight_ih_l0").shape() == Shape{28, 5});
}

TEST_CASE("LSTMAutoencoder: padded steps change neither the code nor the loss nor the gradients") {
  for (LSTMDecoderKind kind : kKinds) {
    CAPTURE(models::decoder_kind_name(kind));
    Generator gen(2);
    auto ae = make_model(kind, gen);
    nn::Sequences b = small_batch();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor code0 = ae->code(ae->encode(b.x, b.lengths));
    Tensor loss0, rec0;
    Tensors g0;
    {
      GradientTape tape;
      loss0 = ae->loss(b.x, b.lengths);
      g0 = tape.gradient(loss0, ae->parameters());
    }
    rec0 = ae->reconstruct(b.x, b.lengths);
    for (float value : {0.7f, -3.0f, nan}) {
      CAPTURE(value);
      Tensor x = fill_padding(b.x, b.lengths, value);
      check_close("code", ae->code(ae->encode(x, b.lengths)), code0, 0, 0);
      GradientTape tape;
      Tensor loss = ae->loss(x, b.lengths);
      check_close("loss", loss, loss0, 0, 0);
      Tensors g = tape.gradient(loss, ae->parameters());
      REQUIRE(g.size() == g0.size());
      for (size_t i = 0; i < g.size(); ++i) check_close("gradient", g[i], g0[i], 0, 0);
      check_close("reconstruction", ae->reconstruct(x, b.lengths), rec0, 0, 0);
    }
    // A padded sequence has the code the same sequence has on its own, unpadded. (Different
    // batch shapes may sum in another order inside the gemms: a float tolerance.)
    for (int64_t i = 0; i < 3; ++i) {
      int64_t len = b.lengths.to_vector<int64_t>()[size_t(i)];
      Tensor alone = raw::narrow(raw::narrow(b.x, 0, i, 1), 1, 0, len).contiguous();
      Tensor got = raw::narrow(code0, 0, i, 1);
      check_close("code alone", ae->code(ae->encode(alone)), got, 1e-6, 1e-5);
    }
  }
}

TEST_CASE("LSTMAutoencoder: the loss is the mean BCE over valid steps only") {
  for (LSTMDecoderKind kind : kKinds) {
    CAPTURE(models::decoder_kind_name(kind));
    Generator gen(3);
    auto ae = make_model(kind, gen);
    nn::Sequences b = small_batch();
    std::vector<double> z = ae->forward(b.x, b.lengths).to_vector<double>();
    std::vector<double> y = b.x.to_vector<double>();
    std::vector<int64_t> len = b.lengths.to_vector<int64_t>();
    // By hand: per element max(z, 0) - z y + log(1 + exp(-|z|)), mean over the 5 features of
    // a step, mean over the 4 + 1 + 6 = 11 valid steps.
    double total = 0;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t t = 0; t < len[size_t(i)]; ++t)
        for (int64_t k = 0; k < 5; ++k) {
          double zi = z[size_t((i * 6 + t) * 5 + k)], yi = y[size_t((i * 6 + t) * 5 + k)];
          total += (std::max(zi, 0.0) - zi * yi + std::log1p(std::exp(-std::abs(zi)))) / 5.0;
        }
    CHECK(ae->loss(b.x, b.lengths).item() == doctest::Approx(total / 11.0).epsilon(1e-6));
    // An all-empty batch has loss 0 (no valid step), not NaN.
    Tensor empty_lengths = zeros({3}, DType::i64);
    CHECK(ae->loss(b.x, empty_lengths).item() == 0.0);
  }
}

TEST_CASE("LSTMAutoencoder: teacher forcing shifts the targets; free-running feeds back 0/1") {
  Generator gen(4);
  auto ae = make_model(LSTMDecoderKind::seq2seq, gen);
  nn::Sequences b = small_batch();
  nn::LSTMState s = ae->encode(b.x, b.lengths);
  // Targets differing only at step 2 change the teacher-forced logits from step 3 on.
  Tensor other = b.x.clone();
  for (int64_t k = 0; k < 5; ++k) other.data<float>()[2 * 5 + k] = k == 1 ? 1.0f : 0.0f;
  Tensor za = ae->decode_teacher_forced(s, b.x), zb = ae->decode_teacher_forced(s, other);
  check_close("steps 0..2", raw::narrow(za, 1, 0, 3), raw::narrow(zb, 1, 0, 3), 0, 0);
  Tensor d = raw::narrow(za, 1, 3, 1).to(DType::f64);
  Tensor e = raw::narrow(zb, 1, 3, 1).to(DType::f64);
  double diff = 0;
  std::vector<double> dv = d.to_vector<double>(), ev = e.to_vector<double>();
  for (size_t i = 0; i < dv.size(); ++i) diff = std::max(diff, std::abs(dv[i] - ev[i]));
  CHECK(diff > 1e-6);
  // Free-running = teacher-forced on its own thresholded predictions.
  Tensor free = ae->decode(s, 6);
  Tensor fed = gt(free, 0.0);
  check_close("free-running vs teacher-forced on its predictions",
              ae->decode_teacher_forced(s, fed), free, 1e-6, 1e-5);
  // With argmax feedback: teacher-forced on the one-hot of each step's argmax, built here.
  Generator gen2(4);
  auto arg = std::make_shared<LSTMAutoencoder>(
      models::LSTMAutoencoderOptions{.input_dim = 5,
                                     .hidden = 7,
                                     .decoder = LSTMDecoderKind::seq2seq,
                                     .feedback = models::LSTMFeedback::argmax,
                                     .gen = &gen2});
  CHECK(arg->describe() == "LSTMAutoencoder(5 -> 7, seq2seq, argmax feedback)");
  Tensor free2 = arg->decode(s, 6);
  std::vector<float> zv = free2.to_vector<float>();
  Tensor onehot = zeros({3, 6, 5});
  for (int64_t r = 0; r < 18; ++r) {
    int64_t best = 0;
    for (int64_t k = 1; k < 5; ++k)
      if (zv[size_t(r * 5 + k)] > zv[size_t(r * 5 + best)]) best = k;
    onehot.data<float>()[r * 5 + best] = 1.0f;
  }
  check_close("argmax feedback vs teacher-forced on its one-hot predictions",
              arg->decode_teacher_forced(s, onehot), free2, 1e-6, 1e-5);
  // The repeat decoder has no feedback: both paths agree.
  auto rep = make_model(LSTMDecoderKind::repeat, gen);
  check_close("repeat", rep->reconstruct(b.x, b.lengths), rep->forward(b.x, b.lengths), 0, 0);
}

TEST_CASE("LSTMAutoencoder: a short run learns seed 003's sequences (both decoders)") {
  // 9 distinct sequences (memorisation). Adam at lr 1e-2, 10x the program's default, so a
  // run of 600 steps (12 epochs of 1000 sequences at batch 20) takes seconds; held-out
  // accuracy is measured on a fresh draw, free-running.
  for (LSTMDecoderKind kind : kKinds) {
    CAPTURE(models::decoder_kind_name(kind));
    Generator gen(5);
    nn::Sequences train = nn::padded_onehot_sequences(1000, 10, 8, gen);
    nn::Sequences test = nn::padded_onehot_sequences(200, 10, 8, gen);
    auto ae = make_model(kind, gen, 8, 20);
    optim::Adam opt(ae->parameters(), {.lr = 1e-2});
    nn::Batches batches({train.x, train.lengths}, {.batch_size = 20}, gen);
    double first = 0, last = 0;
    for (int epoch = 0; epoch < 12; ++epoch) {
      double total = 0;
      for (const Tensors& batch : batches) {
        GradientTape tape;
        Tensor loss = ae->loss(batch[0], batch[1]);
        opt.step(tape.gradient(loss, ae->parameters()));
        total += loss.item();
      }
      (epoch == 0 ? first : last) = total / double(batches.size());
    }
    CHECK(last < 0.1 * first);
    NoGrad no_grad;
    models::SequenceAccuracy acc = models::reconstruction_accuracy(
        ae->reconstruct(test.x, test.lengths), test.x, test.lengths);
    // Short runs of both decoders reach 1.0; 0.98 leaves room for other seeds.
    INFO("loss ", first, " -> ", last, ", per-step ", acc.per_step, ", exact ", acc.exact);
    CHECK(acc.per_step >= 0.98);
    CHECK(acc.exact >= 0.95);
  }
}

TEST_CASE("random_sequences: lengths, one-hot steps, zero padding, held-out never in training") {
  Generator gen(6);
  models::SequenceSplit d =
      models::random_sequences({.train = 3000, .test = 400, .symbols = 8, .max_length = 10}, gen);
  for (const nn::Sequences* s : {&d.train, &d.test}) {
    const int64_t n = s->x.size(0);
    REQUIRE(s->x.shape() == Shape{n, 10, 8});
    std::vector<float> x = s->x.to_vector<float>();
    std::vector<int64_t> len = s->lengths.to_vector<int64_t>();
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) {
      ok &= len[size_t(i)] >= 1 && len[size_t(i)] <= 10;
      for (int64_t t = 0; t < 10; ++t) {
        float row_sum = 0;
        bool binary = true;
        for (int64_t k = 0; k < 8; ++k) {
          float v = x[size_t((i * 10 + t) * 8 + k)];
          row_sum += v;
          binary &= v == 0.0f || v == 1.0f;
        }
        ok &= binary && row_sum == (t < len[size_t(i)] ? 1.0f : 0.0f);
      }
    }
    CHECK(ok);
  }
  CHECK(d.train.x.size(0) == 3000);
  CHECK(d.test.x.size(0) == 400);
  // Every length occurs in training; symbols are all used.
  std::set<int64_t> lengths;
  for (int64_t l : d.train.lengths.to_vector<int64_t>()) lengths.insert(l);
  CHECK(lengths.size() == 10);
  // Disjoint and distinct, compared here through the symbol strings.
  std::vector<std::string> tr = models::sequence_texts(d.train.x, d.train.lengths);
  std::vector<std::string> te = models::sequence_texts(d.test.x, d.test.lengths);
  std::set<std::string> train_set(tr.begin(), tr.end()), test_set(te.begin(), te.end());
  CHECK(test_set.size() == te.size());
  int64_t shared = 0;
  for (const std::string& s : te) shared += train_set.count(s) ? 1 : 0;
  CHECK(shared == 0);
  CHECK(models::count_shared_sequences(d.test, d.train) == 0);
  CHECK(models::count_shared_sequences(d.train, d.train) == 3000);
  // Too small a space to hold out: 2 symbols of length 1 are both in training.
  CHECK(expect_error([] {
          Generator g(0);
          models::random_sequences({.train = 100, .test = 5, .symbols = 2, .max_length = 1}, g);
        }).find("random_sequences") == 0);
}

TEST_CASE("sequence_texts, count_shared_sequences and reconstruction_accuracy on small cases") {
  nn::Sequences b = small_batch();
  std::vector<std::string> text = models::sequence_texts(b.x, b.lengths);
  CHECK(text == std::vector<std::string>{"0324", "1", "440123"});
  // A step with no 1 prints '.', with several '*'.
  Tensor odd = zeros({1, 3, 4});
  odd.data<float>()[1 * 4 + 0] = odd.data<float>()[1 * 4 + 2] = 1.0f;
  CHECK(models::sequence_texts(odd, tensor({3}, DType::i64))[0] == ".*.");
  // Only the valid steps matter: the same sequence with different padding is shared.
  nn::Sequences c{fill_padding(b.x, b.lengths, 1.0f), b.lengths.clone()};
  CHECK(models::count_shared_sequences(b, c) == 3);
  nn::Sequences first{raw::narrow(b.x, 0, 0, 1), raw::narrow(b.lengths, 0, 0, 1)};
  CHECK(models::count_shared_sequences(first, b) == 1);
  CHECK(models::count_shared_sequences(b, first) == 1);

  // Logits: +/-5 agreeing with the targets, then one wrong element in sequence 2, step 5.
  Tensor logits = (b.x * 10.0 - 5.0).clone();
  logits.data<float>()[(2 * 6 + 5) * 5 + 0] = 5.0f;
  // And garbage at a padded step of sequence 1 (ignored).
  logits.data<float>()[(1 * 6 + 3) * 5 + 2] = 5.0f;
  models::SequenceAccuracy acc = models::reconstruction_accuracy(logits, b.x, b.lengths);
  CHECK(acc.steps == 11);
  CHECK(acc.sequences == 3);
  CHECK(acc.per_step == doctest::Approx(10.0 / 11.0));
  CHECK(acc.exact == doctest::Approx(2.0 / 3.0));
  // Argmax at sequence 2's step 5: symbol 0 and the target 3 tie at logit 5, the first
  // wins: 10 of the 11 one-hot steps right.
  CHECK(acc.symbol == doctest::Approx(10.0 / 11.0));
  REQUIRE(acc.exact_by_length.size() == 7);
  CHECK(acc.exact_by_length[1] == 1.0);
  CHECK(acc.exact_by_length[4] == 1.0);
  CHECK(acc.exact_by_length[6] == 0.0);
  CHECK(acc.exact_by_length[2] == -1.0);
  // Positions 0..5: every valid step right except sequence 2's step 5.
  REQUIRE(acc.per_position.size() == 6);
  CHECK(acc.per_position[0] == 1.0);
  CHECK(acc.per_position[4] == 1.0);
  CHECK(acc.per_position[5] == 0.0);
}

TEST_CASE("length_probe: exact on a linear code, chance on noise") {
  Generator gen(7);
  // Codes (N, 3): column 1 is 0.5 * length - 1, the others noise: R^2 = 1 and all rounded
  // predictions right.
  auto make = [&](int64_t n, Tensor* lengths) {
    Tensor len = randint(1, 11, {n}, gen);
    Tensor noise = randn({n, 3}, gen);
    std::vector<int64_t> l = len.to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i) noise.data<float>()[i * 3 + 1] = 0.5f * float(l[i]) - 1.0f;
    *lengths = len;
    return noise;
  };
  Tensor ltr, lte;
  Tensor ctr = make(500, &ltr), cte = make(200, &lte);
  models::LengthProbe p = models::length_probe(ctr, ltr, cte, lte);
  CHECK(p.train_r2 == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(p.test_r2 == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(p.test_accuracy == 1.0);
  // The best constant guess: the most frequent held-out length, counted here.
  std::vector<int64_t> counts(11, 0);
  for (int64_t l : lte.to_vector<int64_t>()) ++counts[size_t(l)];
  int64_t most = 0;
  for (int64_t c : counts) most = std::max(most, c);
  CHECK(p.baseline_accuracy == doctest::Approx(double(most) / 200.0));
  // Pure-noise codes carry no length: held-out R^2 near 0 (or below).
  models::LengthProbe q =
      models::length_probe(randn({500, 3}, gen), ltr, randn({200, 3}, gen), lte);
  CHECK(q.test_r2 < 0.05);
}

TEST_CASE("LSTMAutoencoder: user errors name the model and the shapes") {
  Generator gen(8);
  auto ae = make_model(LSTMDecoderKind::seq2seq, gen);
  nn::Sequences b = small_batch();
  std::string e = expect_error([&] { ae->forward(zeros({3, 6, 4})); });
  CHECK(e.find("LSTMAutoencoder") == 0);
  CHECK(e.find("[3, 6, 4]") != std::string::npos);
  e = expect_error([&] { ae->loss(b.x, tensor({4, 1, 7}, DType::i64)); });
  CHECK(e.find("lengths[2] = 7") != std::string::npos);
  e = expect_error([&] { ae->encode(b.x, tensor({4, 1}, DType::i64)); });
  CHECK(e.find("(3)") != std::string::npos);
  e = expect_error([&] { ae->encode(b.x, tensor({4, 1, 6})); });  // f32 lengths
  CHECK(e.find("i64") != std::string::npos);
  e = expect_error([&] { ae->forward(b.x.to(DType::f64)); });
  CHECK(e.find("f32") != std::string::npos);
  e = expect_error([&] { ae->decode(ae->encode(b.x), 0); });
  CHECK(e.find("steps") != std::string::npos);
  e = expect_error([&] { ae->state_from_code(zeros({3, 7})); });
  CHECK(e.find("(N, 14)") != std::string::npos);
  e = expect_error([&] { ae->masked_loss(zeros({3, 6, 5}), zeros({3, 5, 5})); });
  CHECK(e.find("[3, 6, 5]") != std::string::npos);
  e = expect_error([&] { ae->decode(nn::LSTMState{zeros({3, 7}), Tensor()}, 4); });
  CHECK(e.find("LSTMAutoencoder") == 0);
  CHECK(expect_error([] { LSTMAutoencoder bad({.hidden = 0}); }).find("hidden") !=
        std::string::npos);
}
