// models::ConvAutoencoder (seed 002): the output shapes, every layer's shape against the seed's
// Keras model, the parameter names and counts, the loss against BCE of the reconstruction, the
// options, the errors a user can cause, and a short training run on the committed MNIST subset
// (tests/data/mnist-small) in which the test loss must fall.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

}  // namespace

TEST_CASE("conv_ae: code is (N, 100) and the reconstruction (N, 1, 28, 28) in (0, 1)") {
  Generator gen(1);
  models::ConvAutoencoder model({.gen = &gen});
  Tensor x = rand({3, 1, 28, 28}, gen);
  Tensor z = model.encode(x);
  CHECK(z.shape() == Shape{3, 100});
  Tensor y = model.forward(x);
  REQUIRE(y.shape() == Shape{3, 1, 28, 28});
  CHECK(min(y).item() > 0.0);
  CHECK(max(y).item() < 1.0);
  CHECK(model.decode(randn({2, 100}, gen)).shape() == Shape{2, 1, 28, 28});
  // forward is decode after encode.
  Tensor y2 = model.decode(z);
  CHECK(max(abs(y - y2)).item() == 0.0);
}

TEST_CASE("conv_ae: every layer's output shape is the one seed 002's Keras model has") {
  // Keras' summary of the seed's encoder and decoder, NHWC there, written here as NCHW.
  const models::LayerShapes want = {
      {"encoder.conv1", {2, 32, 13, 13}},   {"encoder.conv2", {2, 32, 6, 6}},
      {"encoder.flatten", {2, 1152}},       {"encoder.code", {2, 100}},
      {"decoder.dense", {2, 1568}},         {"decoder.reshape", {2, 32, 7, 7}},
      {"decoder.deconv1", {2, 64, 14, 14}}, {"decoder.deconv2", {2, 32, 28, 28}},
      {"decoder.deconv3", {2, 1, 28, 28}},  {"decoder.deconv4", {2, 1, 28, 28}},
      {"decoder.sigmoid", {2, 1, 28, 28}},
  };
  models::ConvAutoencoder model;
  const models::LayerShapes got = model.layer_shapes(zeros({2, 1, 28, 28}));
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].first == want[i].first);
    CHECK(to_string(got[i].second) == to_string(want[i].second));
  }
}

TEST_CASE("conv_ae: parameter names, shapes and the seed model's parameter count") {
  models::ConvAutoencoder model;
  const std::vector<std::pair<std::string, Shape>> want = {
      {"encoder.conv1.weight", {32, 1, 3, 3}},    {"encoder.conv1.bias", {32}},
      {"encoder.conv2.weight", {32, 32, 3, 3}},   {"encoder.conv2.bias", {32}},
      {"encoder.code.weight", {100, 1152}},       {"encoder.code.bias", {100}},
      {"decoder.dense.weight", {1568, 100}},      {"decoder.dense.bias", {1568}},
      {"decoder.deconv1.weight", {32, 64, 3, 3}}, {"decoder.deconv1.bias", {64}},
      {"decoder.deconv2.weight", {64, 32, 3, 3}}, {"decoder.deconv2.bias", {32}},
      {"decoder.deconv3.weight", {32, 1, 3, 3}},  {"decoder.deconv3.bias", {1}},
      {"decoder.deconv4.weight", {1, 1, 3, 3}},   {"decoder.deconv4.bias", {1}},
  };
  const nn::NamedTensors got = model.named_parameters();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(got[i].first == want[i].first);
    CHECK(to_string(got[i].second.shape()) == to_string(want[i].second));
  }
  // 320 + 9248 + 115300 (encoder) + 158368 + 18496 + 18464 + 289 + 10 (decoder), as Keras'
  // model.summary() counts the seed's model.
  CHECK(model.num_parameters() == 320495);
  CHECK(model.describe() == "ConvAutoencoder(1x28x28 -> 100 -> 1x28x28, channels 32)");
}

TEST_CASE("conv_ae: the options scale the latent size, the width and the image channels") {
  models::ConvAutoencoder model({.latent = 16, .channels = 8, .image_channels = 3});
  const models::LayerShapes s = model.layer_shapes(zeros({1, 3, 28, 28}));
  REQUIRE(s.size() == 11);
  CHECK(to_string(s[0].second) == "[1, 8, 13, 13]");
  CHECK(to_string(s[3].second) == "[1, 16]");
  CHECK(to_string(s[4].second) == "[1, 392]");
  CHECK(to_string(s[6].second) == "[1, 16, 14, 14]");
  CHECK(to_string(s[10].second) == "[1, 3, 28, 28]");
  CHECK(model.encode(zeros({2, 3, 28, 28})).shape() == Shape{2, 16});
}

TEST_CASE("conv_ae: loss is the mean BCE of the reconstruction against the target") {
  Generator gen(2);
  models::ConvAutoencoder model({.gen = &gen});
  // Move the output away from 0.5 (where BCE is ln 2 whatever the target): last bias 1.
  for (auto& [name, p] : model.named_parameters())
    if (name == "decoder.deconv4.bias") p.fill_(1.0);
  Tensor x = rand({4, 1, 28, 28}, gen);
  Tensor t = zeros({4, 1, 28, 28});
  NoGrad no_grad;
  // Through the probabilities (clamped logs) against the fused logits form the loss uses.
  const double want_self = nn::binary_cross_entropy(model.forward(x), x).item();
  const double want_pair = nn::binary_cross_entropy(model.forward(x), t).item();
  CHECK(model.loss(x).item() == doctest::Approx(want_self).epsilon(1e-5));
  CHECK(model.loss(x, t).item() == doctest::Approx(want_pair).epsilon(1e-5));
  // -log(1 - sigmoid(1 + small)) = 1.31 against zeros, about 0.81 against uniform targets.
  CHECK(want_pair > want_self + 0.3);
}

TEST_CASE("conv_ae: the same Generator seed gives the same initial weights") {
  Generator a(5), b(5), c(6);
  models::ConvAutoencoder ma({.gen = &a}), mb({.gen = &b}), mc({.gen = &c});
  const Tensors pa = ma.parameters(), pb = mb.parameters(), pc = mc.parameters();
  REQUIRE(pa.size() == pb.size());
  bool all_same = true, any_differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    all_same = all_same && pa[i].to_vector<float>() == pb[i].to_vector<float>();
    if (pa[i].numel() > 1)
      any_differs = any_differs || pa[i].to_vector<float>() != pc[i].to_vector<float>();
  }
  CHECK(all_same);
  CHECK(any_differs);
}

TEST_CASE("conv_ae: wrong inputs throw naming the model and the shapes") {
  models::ConvAutoencoder model;
  std::string e = expect_error([&] { model.encode(zeros({2, 1, 27, 28})); });
  CHECK(contains(e, "ConvAutoencoder.encode"));
  CHECK(contains(e, "[2, 1, 27, 28]"));
  e = expect_error([&] { model.forward(zeros({2, 784})); });
  CHECK(contains(e, "[2, 784]"));
  e = expect_error([&] { model.encode(zeros({2, 3, 28, 28})); });
  CHECK(contains(e, "(N, 1, 28, 28)"));
  e = expect_error([&] { model.encode(zeros({0, 1, 28, 28})); });
  CHECK(contains(e, "[0, 1, 28, 28]"));
  e = expect_error([&] { model.encode(zeros({1, 1, 28, 28}, DType::f64)); });
  CHECK(contains(e, "f64"));
  e = expect_error([&] { model.decode(zeros({2, 50})); });
  CHECK(contains(e, "ConvAutoencoder.decode"));
  CHECK(contains(e, "[2, 50]"));
  e = expect_error([&] { model.loss(zeros({2, 1, 28, 28}), zeros({3, 1, 28, 28})); });
  CHECK(contains(e, "ConvAutoencoder.loss"));
  CHECK(contains(e, "[3, 1, 28, 28]"));
  CHECK(contains(e, "[2, 1, 28, 28]"));
  e = expect_error([&] { model.loss(zeros({2, 1, 28, 28}), Tensor()); });
  CHECK(contains(e, "undefined"));
  e = expect_error([] { models::ConvAutoencoder bad({.latent = 0}); });
  CHECK(contains(e, "latent must be >= 1"));
  e = expect_error([] { models::ConvAutoencoder bad({.channels = -2}); });
  CHECK(contains(e, "channels must be >= 1, got -2"));
}

TEST_CASE("conv_ae: training on the MNIST subset lowers the test BCE within a few steps") {
  // 12 Adam steps at lr 3e-3 on batches of 32 of the committed subset, the test loss measured
  // on its 200 test images: it starts at ln 2 = 0.693 (a sigmoid near 0.5 everywhere) and must
  // fall by more than 0.15 (seeds 3 to 6 reach 0.28 - 0.40).
  Generator gen(3);
  nn::Mnist train = nn::load_mnist(mnist_small(), true, false, 384);
  nn::Mnist test = nn::load_mnist(mnist_small(), false);
  REQUIRE(train.images.shape() == Shape{384, 1, 28, 28});
  REQUIRE(test.images.shape() == Shape{200, 1, 28, 28});
  models::ConvAutoencoder model({.gen = &gen});
  optim::Adam opt(model.parameters(), {.lr = 3e-3});
  nn::Batches batches({train.images}, {.batch_size = 32, .drop_last = true}, gen);
  auto test_loss = [&] {
    NoGrad no_grad;
    return model.loss(test.images).item();
  };
  const double before = test_loss();
  std::vector<double> train_losses;
  for (const Tensors& b : batches) {
    GradientTape tape;
    Tensor loss = model.loss(b[0]);
    opt.step(tape.gradient(loss, model.parameters()));
    train_losses.push_back(loss.item());
  }
  const double after = test_loss();
  CAPTURE(before);
  CAPTURE(after);
  REQUIRE(train_losses.size() == 12);
  CHECK(before == doctest::Approx(std::log(2.0)).epsilon(0.01));
  CHECK(after < before - 0.15);
  CHECK(train_losses.back() < train_losses.front() - 0.1);
}
