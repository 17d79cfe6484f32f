// DenseAutoencoder (seed 004): output shapes and input checks, the parameter names and counts
// worked out by hand, He-normal initialisation, each loss against its formula evaluated here,
// tied weights (shared storage, the saving in parameters, gradients reaching the shared weight
// from both sides), the loss falling on the committed MNIST subset in a few Adam steps, and a
// state written by PyTorch (tests/golden/make_init_fixture.py) loading by name and computing
// PyTorch's outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/models.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::expect_error;
using encore::testing::golden;
using encore::testing::json_tensor;
using encore::testing::source_path;

namespace {

nn::Mnist small_mnist(bool train) {
  return nn::load_mnist(source_path("tests/data/mnist-small").string(), train, /*flatten=*/true);
}

}  // namespace

TEST_CASE("dense: encode, decode and forward give the seed's shapes; bad inputs throw") {
  Generator gen(1);
  models::DenseAutoencoder ae({.gen = &gen});
  Tensor x = rand({6, 784}, gen);
  Tensor z = ae.encode(x);
  CHECK(z.shape() == Shape{6, 20});
  CHECK(ae.decode(z).shape() == Shape{6, 784});
  Tensor y = ae.forward(x);
  CHECK(y.shape() == Shape{6, 784});
  std::vector<float> v = y.to_vector<float>();
  bool in_range = true;
  for (float p : v) in_range = in_range && p >= 0 && p <= 1;
  CHECK(in_range);
  // MNIST's (N, 1, 28, 28) is flattened.
  CHECK(ae.encode(rand({3, 1, 28, 28}, gen)).shape() == Shape{3, 20});
  // The seed's code passes through a ReLU; linear_code lets it go negative.
  CHECK(raw::reduce(raw::ReduceOp::min, z).item() >= 0);

  std::string e = expect_error([&] { ae.encode(rand({4, 100}, gen)); });
  CHECK(e.find("DenseAutoencoder.encode") != std::string::npos);
  CHECK(e.find("[4, 100]") != std::string::npos);
  e = expect_error([&] { ae.decode(rand({4, 19}, gen)); });
  CHECK(e.find("DenseAutoencoder.decode") != std::string::npos);
  CHECK(e.find("[4, 19]") != std::string::npos);
  e = expect_error([&] { ae.loss(x, rand({5, 784}, gen)); });
  CHECK(e.find("[6, 784]") != std::string::npos);
  CHECK(e.find("[5, 784]") != std::string::npos);
  CHECK(expect_error([&] {
          models::DenseAutoencoder bad({.hidden = {400, 0}});
        }).find("hidden sizes must be positive, got 0") != std::string::npos);
  CHECK(expect_error([&] { models::parse_loss("l1"); }).find("l1") != std::string::npos);
  CHECK(ae.describe() == "DenseAutoencoder(784-400-300-200-20, l2, batch norm)");
}

TEST_CASE("dense: parameter names follow nn.Sequential and the count matches the hand sum") {
  models::DenseAutoencoder ae;
  // Linear weights 784*400 + 400*300 + 300*200 + 200*20 = 497600, twice (encoder, decoder);
  // biases 920 (encoder) + 1684 (decoder); BN gamma and beta 2*920 + 2*900.
  CHECK(ae.num_parameters() == 2 * 497600 + 920 + 1684 + 2 * 920 + 2 * 900);
  auto state = ae.state_dict();
  CHECK(state.at("encoder.0.weight").shape() == Shape{400, 784});
  CHECK(state.at("encoder.1.running_var").shape() == Shape{400});
  CHECK(state.at("encoder.9.weight").shape() == Shape{20, 200});
  CHECK(state.at("encoder.10.weight").shape() == Shape{20});  // the code layer's BN
  CHECK(state.at("decoder.0.weight").shape() == Shape{200, 20});
  CHECK(state.at("decoder.9.weight").shape() == Shape{784, 400});  // output: Linear, no BN
  CHECK(state.count("decoder.10.weight") == 0);

  models::DenseAutoencoder plain({.batch_norm = false});
  CHECK(plain.num_parameters() == 2 * 497600 + 920 + 1684);
  CHECK(plain.state_dict().at("encoder.2.weight").shape() == Shape{300, 400});
}

TEST_CASE("dense: He-normal weights (std sqrt(2 / fan_in)) and zero biases") {
  Generator gen(7);
  models::DenseAutoencoder ae({.gen = &gen});
  auto state = ae.state_dict();
  for (const char* name : {"encoder.0.weight", "decoder.9.weight"}) {
    Tensor w = state.at(name);
    double fan_in = double(w.size(1));
    double m = raw::reduce(raw::ReduceOp::mean, w).item();
    double sd = std::sqrt(raw::var(w).item());
    CAPTURE(name);
    CHECK(std::abs(m) < 0.01);
    // 313600 draws: the sample std is within 1% of sqrt(2 / fan_in) with overwhelming odds.
    CHECK(sd == doctest::Approx(std::sqrt(2.0 / fan_in)).epsilon(0.01));
  }
  CHECK(raw::reduce(raw::ReduceOp::max, raw::unary(raw::UnaryOp::abs, state.at("encoder.0.bias")))
            .item() == 0);
}

TEST_CASE("dense: the l2, mse and bce losses agree with their formulas") {
  Generator gen(3);
  Tensor x = rand({4, 784}, gen);
  for (const char* name : {"l2", "mse", "bce"}) {
    Generator init(11);
    models::DenseAutoencoder ae({.loss = models::parse_loss(name), .gen = &init});
    std::vector<float> y = ae.forward(x).to_vector<float>();  // training mode, as loss()
    std::vector<float> t = x.to_vector<float>();
    double want = 0;
    for (int64_t i = 0; i < 4; ++i) {
      double sq = 0, bce = 0;
      for (int64_t j = 0; j < 784; ++j) {
        double p = y[size_t(i * 784 + j)], q = t[size_t(i * 784 + j)];
        sq += (p - q) * (p - q);
        bce += -(q * std::log(p) + (1 - q) * std::log(1 - p));
      }
      if (std::string(name) == "l2") want += std::sqrt(sq) / 4;
      if (std::string(name) == "mse") want += sq / (4 * 784);
      if (std::string(name) == "bce") want += bce / (4 * 784);
    }
    CAPTURE(name);
    CHECK(ae.loss(x).item() == doctest::Approx(want).epsilon(1e-5));
  }
  // squared_error_per_image sums over the pixels of each image.
  Tensor a = tensor({0.0, 1.0, 0.5, 0.5}).to(DType::f32);
  Tensor sq = models::squared_error_per_image(raw::reshape(a, {2, 2}), zeros({2, 2}));
  CHECK(sq.to_vector<double>() == std::vector<double>{1.0, 0.5});
}

TEST_CASE("dense: the activation option puts ELU or LeakyReLU after every hidden layer") {
  // 5-4-3 without batch norm, linear code: encoder Linear, act, Linear; decoder Linear, act,
  // Linear, sigmoid. The chain is evaluated here in double from the state's weights.
  for (const char* name : {"relu", "leaky_relu", "elu"}) {
    Generator init(2), gen(9);
    models::DenseAutoencoder ae({.input = 5,
                                 .hidden = {4},
                                 .code = 3,
                                 .batch_norm = false,
                                 .linear_code = true,
                                 .activation = models::parse_activation(name),
                                 .gen = &init});
    CHECK(std::string(models::activation_name(ae.options().activation)) == name);
    auto state = ae.state_dict();
    auto act = [&](double v) {
      if (v > 0) return v;
      if (std::string(name) == "relu") return 0.0;
      return std::string(name) == "elu" ? std::expm1(v) : 0.01 * v;
    };
    // y = f(W x + b) for one sample x, W (out, in) row-major.
    auto layer = [&](const std::string& prefix, const std::vector<double>& x, bool nonlinear) {
      std::vector<double> w = state.at(prefix + ".weight").to(DType::f64).to_vector<double>();
      std::vector<double> b = state.at(prefix + ".bias").to(DType::f64).to_vector<double>();
      std::vector<double> y(b.size());
      for (size_t o = 0; o < y.size(); ++o) {
        double acc = b[o];
        for (size_t i = 0; i < x.size(); ++i) acc += w[o * x.size() + i] * x[i];
        y[o] = nonlinear ? act(acc) : acc;
      }
      return y;
    };
    Tensor x = randn({3, 5}, gen);  // normal inputs: every unit sees negative values too
    std::vector<double> xs = x.to(DType::f64).to_vector<double>();
    std::vector<float> got = ae.forward(x).to_vector<float>();
    for (size_t n = 0; n < 3; ++n) {
      std::vector<double> h(xs.begin() + long(5 * n), xs.begin() + long(5 * n + 5));
      h = layer("encoder.2", layer("encoder.0", h, true), false);
      h = layer("decoder.2", layer("decoder.0", h, true), false);
      for (size_t j = 0; j < 5; ++j) {
        CAPTURE(name);
        CAPTURE(n);
        CHECK(got[5 * n + j] == doctest::Approx(1 / (1 + std::exp(-h[j]))).epsilon(1e-5));
      }
    }
  }
  models::DenseAutoencoder elu({.activation = models::HiddenActivation::elu});
  CHECK(elu.describe() == "DenseAutoencoder(784-400-300-200-20, l2, batch norm, elu)");
  CHECK(expect_error([&] { models::parse_activation("gelu"); }).find("gelu") != std::string::npos);
}

TEST_CASE("dense: tied decoder weights share the encoder's storage and save 497600 values") {
  Generator g1(5), g2(5);
  models::DenseAutoencoder untied({.gen = &g1});
  models::DenseAutoencoder tied({.tied = true, .gen = &g2});
  CHECK(tied.tied_parameter_saving() == 497600);
  CHECK(untied.num_parameters() - tied.num_parameters() == 497600);
  auto state = tied.state_dict();
  CHECK(state.count("decoder.0.weight") == 0);
  CHECK(state.at("decoder.0.bias").shape() == Shape{200});
  CHECK(state.at("decoder.9.bias").shape() == Shape{784});

  auto dec0 = std::dynamic_pointer_cast<models::TiedLinear>(tied.decoder()->at(0));
  auto out = std::dynamic_pointer_cast<models::TiedLinear>(tied.decoder()->at(9));
  REQUIRE(dec0 != nullptr);
  REQUIRE(out != nullptr);
  Tensor enc_w = tied.encoder_linears()[3]->weight();  // (20, 200)
  CHECK(dec0->weight().shape() == Shape{200, 20});
  CHECK(dec0->weight().storage() == enc_w.storage());  // a view, not a copy
  CHECK(out->weight().storage() == tied.encoder_linears()[0]->weight().storage());

  // y = z W_enc + b, computed here with the raw gemm; then changing the encoder weight in
  // place changes the decoder layer's output the same way.
  Generator gz(9);
  Tensor z = rand({3, 20}, gz);
  dec0->bias().copy_(full({200}, 0.25));
  check_close("tied forward", dec0->forward(z), raw::matmul(z, enc_w) + 0.25, 1e-5, 1e-5);
  {
    NoGrad no_grad;
    enc_w.copy_(enc_w * 2.0);
  }
  check_close("after scaling", dec0->forward(z), raw::matmul(z, enc_w) + 0.25, 1e-5, 1e-5);

  // The gradient reaches the encoder's weight through the tied layer: d/dW of
  // sum(z W + b) is z^T 1, i.e. dw[i][j] = sum_n z[n][i].
  GradientTape tape;
  Tensor loss = sum(dec0->forward(z));
  Tensor dw = tape.gradient(loss, Tensors{enc_w})[0];  // (20, 200)
  Tensor want = raw::matmul(raw::transpose(z, 0, 1), ones({3, 200}));
  check_close("tied gradient", dw, want, 1e-5, 1e-5);
}

TEST_CASE("dense: the loss falls within 30 Adam steps on the committed MNIST subset") {
  nn::Mnist train = small_mnist(true);
  REQUIRE(train.images.shape() == Shape{1000, 784});
  for (bool tied : {false, true}) {
    Generator gen(4);
    auto ae = std::make_shared<models::DenseAutoencoder>(
        models::DenseAutoencoderOptions{.tied = tied, .gen = &gen});
    optim::Adam opt(ae->parameters(), {.lr = 1e-3});
    nn::Batches batches({train.images}, {.batch_size = 100}, gen);
    Tensor probe = raw::narrow(train.images, 0, 0, 200);
    double before = ae->loss(probe).item();
    for (int epoch = 0; epoch < 3; ++epoch)
      for (const Tensors& b : batches) {
        GradientTape tape;
        Tensor loss = ae->loss(b[0]);
        opt.step(tape.gradient(loss, ae->parameters()));
      }
    double after = ae->loss(probe).item();
    CAPTURE(tied);
    CAPTURE(before);
    CAPTURE(after);
    // The per-image L2 distance starts near 11-12 (outputs ~0.5 everywhere); 30 steps about
    // halve it (5.9 untied, 5.8 tied when written).
    CHECK(after < 0.6 * before);
  }
}

TEST_CASE("dense: a state written by PyTorch loads by name and computes PyTorch's outputs") {
  const nlohmann::json& fx = golden("dense_init_fixture.json");
  models::DenseAutoencoder ae({.input = 12, .hidden = {8}, .code = 3, .bn_eps = 1e-3});
  nn::LoadReport r = ae.load(source_path("tests/golden/dense_init.safetensors").string());
  CHECK(r.missing.empty());
  CHECK(r.unexpected.empty());
  std::vector<std::string> names;
  for (const auto& [name, t] : ae.state_dict()) names.push_back(name);
  CHECK(names == fx["names"].get<std::vector<std::string>>());
  check_close("encoder.0.weight", ae.state_dict().at("encoder.0.weight"),
              json_tensor(fx["encoder.0.weight"], DType::f32), 0, 0);
  CHECK(ae.state_dict().at("encoder.1.num_batches_tracked").item<int64_t>() == 7);

  Tensor x = json_tensor(fx["input"], DType::f32);
  ae.eval();
  check_close("eval output", ae.forward(x), json_tensor(fx["eval_output"], DType::f32), 1e-6, 1e-5);
  ae.train();
  check_close("train output", ae.forward(x), json_tensor(fx["train_output"], DType::f32), 1e-6,
              1e-5);
  CHECK(ae.loss(x).item() == doctest::Approx(fx["train_l2_loss"].get<double>()).epsilon(1e-5));

  // A file of another architecture is refused, naming the mismatching key.
  models::DenseAutoencoder other({.input = 12, .hidden = {9}, .code = 3});
  std::string e = expect_error(
      [&] { other.load(source_path("tests/golden/dense_init.safetensors").string()); });
  CHECK(e.find("encoder.0.weight") != std::string::npos);
}
