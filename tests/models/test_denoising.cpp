// models/denoising: the corruption's statistics (noise standard deviation near sigma, masked
// fraction near p, values clipped to [0, 1]), its determinism under a Generator seed, that no
// gradient flows into it, its errors; denoising_loss for the conv and dense models;
// reconstruction_error against hand-computed values; and a short denoising training run on
// the committed MNIST subset in which the error against the clean test images falls.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/dense_autoencoder.h"
#include "models/models.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::expect_error;
using encore::testing::source_path;

namespace {

std::string mnist_small() { return source_path("tests/data/mnist-small").string(); }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Mean and (population) standard deviation of a tensor's elements, in f64.
struct Stats {
  double mean = 0, std = 0;
};
Stats stats(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double s = 0, s2 = 0;
  for (double x : v) s += x;
  const double m = s / double(v.size());
  for (double x : v) s2 += (x - m) * (x - m);
  return {m, std::sqrt(s2 / double(v.size()))};
}

/// The fraction of elements equal to value.
double fraction_equal(const Tensor& t, double value) {
  std::vector<double> v = t.to_vector<double>();
  int64_t n = 0;
  for (double x : v) n += x == value;
  return double(n) / double(v.size());
}

}  // namespace

// The statistical tolerances below are about 5 standard errors of the estimate for n = 156800
// elements: a correct corruption fails them with negligible probability, and the seeds are fixed.

TEST_CASE("denoising: Gaussian noise has standard deviation sigma and mean 0 before clipping") {
  Generator gen(11);
  Tensor x = full({200, 1, 28, 28}, 0.5);
  // sigma 0.1 around 0.5: clipping at 0 or 1 is 5 sigma away, so it leaves the statistics be.
  Tensor y = models::Corruption({.noise_sigma = 0.1}).apply(x, gen);
  REQUIRE(y.shape() == x.shape());
  CHECK(y.dtype() == DType::f32);
  const Stats s = stats(y - x);
  CHECK(std::abs(s.mean) < 0.0015);       // standard error 0.1 / sqrt(n) = 0.00025
  CHECK(std::abs(s.std - 0.1) < 0.001);   // standard error 0.1 / sqrt(2n) = 0.00018
  CHECK(fraction_equal(y, 0.5) < 0.001);  // every element moved
}

TEST_CASE("denoising: masking zeroes a fraction p and leaves the rest unchanged") {
  Generator gen(12);
  Tensor x = full({200, 1, 28, 28}, 0.5);
  Tensor y = models::Corruption({.noise_sigma = 0, .mask_prob = 0.3}).apply(x, gen);
  const double zeros_frac = fraction_equal(y, 0.0), kept = fraction_equal(y, 0.5);
  CHECK(std::abs(zeros_frac - 0.3) < 0.006);         // standard error sqrt(0.21 / n) = 0.0012
  CHECK(zeros_frac + kept == doctest::Approx(1.0));  // nothing else: no rescaling
  // p = 1 masks everything, p = 0 and sigma = 0 is the identity (a copy).
  CHECK(fraction_equal(models::Corruption({.noise_sigma = 0, .mask_prob = 1}).apply(x, gen), 0) ==
        1.0);
  Tensor same = models::Corruption({.noise_sigma = 0, .mask_prob = 0}).apply(x, gen);
  CHECK(fraction_equal(same, 0.5) == 1.0);
  CHECK(same.storage() != x.storage());
}

TEST_CASE("denoising: corrupted values are clipped to [0, 1]") {
  Generator gen(13);
  // Half the images black, half white: sigma 0.5 pushes about half of every pixel out of range.
  Tensor x = concat({zeros({100, 1, 28, 28}), ones({100, 1, 28, 28})}, 0);
  Tensor y = models::Corruption({.noise_sigma = 0.5, .mask_prob = 0.2}).apply(x, gen);
  CHECK(min(y).item() >= 0.0);
  CHECK(max(y).item() <= 1.0);
  // Noise first, then the mask (p 0.2), then the clip; q = P(N(0, 0.5^2) > 1) = P(Z > 2) =
  // 0.02275. A black pixel ends at 0 when masked (0.2) or unmasked with negative noise (0.4),
  // at 1 when unmasked with noise above 1 (0.8 q); a white pixel at 0 when masked (0.2) or
  // unmasked with noise below -1 (0.8 q), at 1 when unmasked with positive noise (0.4).
  const double q = 0.02275;
  CHECK(std::abs(fraction_equal(y, 0.0) - (0.6 + 0.2 + 0.8 * q) / 2) < 0.006);
  CHECK(std::abs(fraction_equal(y, 1.0) - (0.8 * q + 0.4) / 2) < 0.006);
  // Unclipped, values leave the range.
  Tensor u = models::Corruption({.noise_sigma = 0.5, .clip = false}).apply(x, gen);
  CHECK(min(u).item() < -1.0);
  CHECK(max(u).item() > 2.0);
}

TEST_CASE("denoising: the same Generator seed gives the same corruption") {
  const models::Corruption c({.noise_sigma = 0.3, .mask_prob = 0.25});
  Generator init(1);
  Tensor x = rand({8, 1, 28, 28}, init);
  Generator a(42), b(42), d(43);
  Tensor ya = c.apply(x, a), yb = c.apply(x, b), yd = c.apply(x, d);
  CHECK(ya.to_vector<float>() == yb.to_vector<float>());
  CHECK(ya.to_vector<float>() != yd.to_vector<float>());
  // The generator advances: a second draw differs from the first.
  CHECK(c.apply(x, a).to_vector<float>() != ya.to_vector<float>());
  // f64 inputs stay f64.
  CHECK(c.apply(x.to(DType::f64), b).dtype() == DType::f64);
}

TEST_CASE("denoising: the corruption is a constant for the tape and leaves its input alone") {
  Generator gen(14);
  Tensor x = rand({4, 10}, gen);
  const std::vector<float> before = x.to_vector<float>();
  GradientTape tape;
  tape.watch(x);
  Tensor y = models::Corruption({.noise_sigma = 0.2, .mask_prob = 0.1}).apply(x, gen);
  // d/dx sum(x * y) = y when y is not a function of x on the tape.
  Tensor g = tape.gradient(sum(x * y), x);
  CHECK(g.to_vector<float>() == y.to_vector<float>());
  CHECK(x.to_vector<float>() == before);
}

TEST_CASE("denoising: bad options and inputs throw naming Corruption") {
  std::string e = expect_error([] { models::Corruption c({.noise_sigma = -0.1}); });
  CHECK(contains(e, "Corruption: noise_sigma must be finite and >= 0, got -0.1"));
  e = expect_error([] { models::Corruption c({.noise_sigma = NAN}); });
  CHECK(contains(e, "noise_sigma"));
  e = expect_error([] { models::Corruption c({.mask_prob = 1.5}); });
  CHECK(contains(e, "mask_prob must be in [0, 1], got 1.5"));
  e = expect_error([] { models::Corruption c({.lo = 1, .hi = 0}); });
  CHECK(contains(e, "clip range"));
  Generator gen;
  e = expect_error([&] { models::Corruption().apply(zeros({2, 3}, DType::i64), gen); });
  CHECK(contains(e, "Corruption.apply"));
  CHECK(contains(e, "[2, 3]"));
  e = expect_error([&] { models::Corruption().apply(Tensor(), gen); });
  CHECK(contains(e, "undefined"));
  CHECK(models::Corruption({.noise_sigma = 0.5, .mask_prob = 0.1}).describe() ==
        "Corruption(gaussian sigma 0.5, mask p 0.1, clipped to [0, 1])");
}

TEST_CASE("denoising: reconstruction_error against hand-computed BCE and squared error") {
  // Targets: 7 images of 784 pixels, half 0 and half 1; the "model" answers 0.5 everywhere:
  // BCE ln 2 per pixel, squared error 784 * 0.25 = 196 per image. Batches of 3 (3 + 3 + 1).
  Tensor target = concat({zeros({7, 1, 28, 14}), ones({7, 1, 28, 14})}, 3);
  auto half = [](const Tensor& in) { return full({in.size(0), 784}, 0.5); };
  models::ReconstructionError e = models::reconstruction_error(half, target, target, 3);
  CHECK(e.images == 7);
  CHECK(e.bce == doctest::Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(e.squared_error == doctest::Approx(196.0).epsilon(1e-9));
  // A perfect reconstruction of a 0/1 target: no squared error, BCE 0.
  auto identity = [](const Tensor& in) { return in; };
  e = models::reconstruction_error(identity, target, target, 4);
  CHECK(e.squared_error == 0.0);
  CHECK(e.bce == doctest::Approx(0.0));
  // The rows of input and target stay paired across batches: the identity on a shifted target.
  Tensor input = concat({narrow(target, 0, 0, 3), ones({4, 1, 28, 28})}, 0);
  e = models::reconstruction_error(identity, input, target, 2);
  CHECK(e.squared_error == doctest::Approx(4.0 * 392.0 / 7.0));
  std::string m = expect_error([&] {
    models::reconstruction_error([](const Tensor&) { return zeros({1, 5}); }, target, target);
  });
  CHECK(contains(m, "reconstruction_error"));
  CHECK(contains(m, "[1, 5]"));
  m = expect_error([&] {
    models::reconstruction_error(identity, zeros({3, 784}), zeros({4, 784}));
  });
  CHECK(contains(m, "[3, 784]"));
  CHECK(contains(m, "[4, 784]"));
}

TEST_CASE("denoising: denoising_loss is the model's loss on the corrupted input") {
  Generator init(21);
  Tensor clean = rand({3, 1, 28, 28}, init);
  const models::Corruption c({.noise_sigma = 0.4, .mask_prob = 0.1});
  models::ConvAutoencoder conv({.gen = &init});
  models::DenseAutoencoder dense({.loss = models::ReconstructionLoss::bce, .gen = &init});
  dense.eval();  // batch statistics of 3 images would differ between two calls in train mode
  NoGrad no_grad;
  Generator g1(7), g2(7);
  const double got_conv = models::denoising_loss(conv, clean, c, g1).item();
  const double want_conv = conv.loss(c.apply(clean, g2), clean).item();
  CHECK(got_conv == want_conv);
  const double got_dense = models::denoising_loss(dense, clean, c, g1).item();
  const double want_dense = dense.loss(c.apply(clean, g2), clean).item();
  CHECK(got_dense == want_dense);
  // Another draw of the corruption gives another loss (an untrained model's output is near 0.5
  // everywhere, so the difference is small but not zero).
  Generator g3(8);
  CHECK(got_conv != models::denoising_loss(conv, clean, c, g3).item());
}

TEST_CASE("denoising: training on noisy MNIST lowers the error against the clean test images") {
  // 12 Adam steps (lr 3e-3, batches of 32) on the committed subset, each batch corrupted afresh
  // with sigma 0.5; the 200 test images corrupted once with their own seed.
  Generator gen(4), test_gen(5);
  nn::Mnist train = nn::load_mnist(mnist_small(), true, false, 384);
  nn::Mnist test = nn::load_mnist(mnist_small(), false);
  const models::Corruption noise({.noise_sigma = 0.5});
  Tensor noisy_test = noise.apply(test.images, test_gen);
  models::ConvAutoencoder model({.gen = &gen});
  optim::Adam opt(model.parameters(), {.lr = 3e-3});
  nn::Batches batches({train.images}, {.batch_size = 32, .drop_last = true}, gen);
  auto error = [&] {
    model.eval();
    models::ReconstructionError e = models::reconstruction_error(
        [&](const Tensor& in) { return model.forward(in); }, noisy_test, test.images);
    model.train();
    return e;
  };
  const models::ReconstructionError before = error();
  for (const Tensors& b : batches) {
    GradientTape tape;
    Tensor loss = models::denoising_loss(model, b[0], noise, gen);
    opt.step(tape.gradient(loss, model.parameters()));
  }
  const models::ReconstructionError after = error();
  CAPTURE(before.bce);
  CAPTURE(after.bce);
  CAPTURE(before.squared_error);
  CAPTURE(after.squared_error);
  CHECK(after.images == 200);
  CHECK(after.bce < before.bce - 0.15);
  CHECK(after.squared_error < 0.7 * before.squared_error);
}
