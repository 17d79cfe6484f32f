// The nn/ layers: golden forward/backward values from PyTorch (Linear, Conv2d, ConvTranspose2d
// with explicit and Keras padding, BatchNorm1d/2d over three training steps and an eval step),
// Keras output shapes of seed 002's conv autoencoder, initialiser statistics, the random layers
// in train and eval mode, Sequential / Flatten / Reshape, describe() and error messages.
// tests/golden/make_layer_fixtures.py (run once with torch) wrote tests/golden/
// layer_fixtures.json; this test needs only the JSON.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "nn/nn.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::golden;
using encore::testing::json_tensor;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

const json& fixtures() { return golden("layer_fixtures.json"); }

nn::Size2 size2(const json& c, const char* key) {
  return {c.at(key).at(0).get<int64_t>(), c.at(key).at(1).get<int64_t>()};
}

nn::PaddingMode padding_mode(const json& c) {
  const std::string m = c.at("padding_mode");
  return m == "same"    ? nn::PaddingMode::same
         : m == "valid" ? nn::PaddingMode::valid
                        : nn::PaddingMode::explicit_padding;
}

/// A layer built from a fixture case, with a type-erased forward.
struct Built {
  std::shared_ptr<nn::Module> module;
  std::function<Tensor(const Tensor&)> forward;
};

template <class M>
Built wrap(std::shared_ptr<M> m) {
  return {m, [m](const Tensor& x) { return m->forward(x); }};
}

Built build(const json& c, DType dt) {
  const std::string kind = c.at("module");
  if (kind == "Linear")
    return wrap(std::make_shared<nn::Linear>(
        c.at("in").get<int64_t>(), c.at("out").get<int64_t>(),
        nn::LinearOptions{.bias = c.at("bias").get<bool>(), .dtype = dt}));
  if (kind == "Conv2d")
    return wrap(std::make_shared<nn::Conv2d>(c.at("in").get<int64_t>(), c.at("out").get<int64_t>(),
                                             size2(c, "kernel"),
                                             nn::ConvOptions{.stride = size2(c, "stride"),
                                                             .padding = size2(c, "padding"),
                                                             .dilation = size2(c, "dilation"),
                                                             .padding_mode = padding_mode(c),
                                                             .bias = c.at("bias").get<bool>(),
                                                             .dtype = dt}));
  if (kind == "ConvTranspose2d")
    return wrap(std::make_shared<nn::ConvTranspose2d>(
        c.at("in").get<int64_t>(), c.at("out").get<int64_t>(), size2(c, "kernel"),
        nn::ConvTransposeOptions{.stride = size2(c, "stride"),
                                 .padding = size2(c, "padding"),
                                 .output_padding = size2(c, "output_padding"),
                                 .dilation = size2(c, "dilation"),
                                 .padding_mode = padding_mode(c),
                                 .bias = c.at("bias").get<bool>(),
                                 .dtype = dt}));
  if (kind == "BatchNorm1d" || kind == "BatchNorm2d") {
    nn::BatchNormOptions o{
        .eps = c.at("eps").get<double>(), .affine = c.at("affine").get<bool>(), .dtype = dt};
    o.momentum = c.at("momentum").is_null() ? std::nullopt
                                            : std::optional<double>(c.at("momentum").get<double>());
    const int64_t n = c.at("num_features");
    if (kind == "BatchNorm1d") return wrap(std::make_shared<nn::BatchNorm1d>(n, o));
    return wrap(std::make_shared<nn::BatchNorm2d>(n, o));
  }
  FAIL("unknown module in fixture: " << kind);
  return {};
}

/// Loads the case into a fresh encore layer and replays its steps: forward, the gradients of
/// sum(out * R) w.r.t. x and every parameter, and the buffers after the step.
void check_case(const std::string& name, const json& c, DType dt, double atol, double rtol) {
  Built layer = build(c, dt);
  {
    NoGrad no_grad;
    for (auto& named : layer.module->named_parameters()) {
      const std::string& pname = named.first;
      INFO(name << ": parameter " << pname);
      REQUIRE(c.at("params").contains(pname));
      named.second.copy_(json_tensor(c.at("params").at(pname), dt));
    }
  }
  REQUIRE(layer.module->named_parameters().size() == c.at("params").size());
  int index = 0;
  for (const json& step : c.at("steps")) {
    const std::string where = name + " step " + std::to_string(index++);
    layer.module->train(step.at("mode") == "train");
    Tensor x = json_tensor(step.at("x"), dt);
    Tensor r = json_tensor(step.at("R"), dt);
    GradientTape tape;
    tape.watch(x);
    Tensor out = layer.forward(x);
    Tensor loss = sum(out * r);
    Tensors sources = {x};
    std::vector<std::string> names = {"x"};
    for (auto& [pname, p] : layer.module->named_parameters()) {
      sources.push_back(p);
      names.push_back(pname);
    }
    Tensors grads = tape.gradient(loss, sources);
    check_close(where + ": forward", out, json_tensor(step.at("out"), dt), atol, rtol);
    for (size_t i = 0; i < grads.size(); ++i)
      check_close(where + ": d loss / d " + names[i], grads[i],
                  json_tensor(step.at("grads").at(names[i]), dt), atol, rtol);
    if (step.contains("buffers")) {
      auto buffers = layer.module->named_buffers();
      CHECK(buffers.size() == step.at("buffers").size());
      for (auto& [bname, b] : buffers)
        check_close(where + ": buffer " + bname, b.to(DType::f64),
                    json_tensor(step.at("buffers").at(bname), DType::f64), atol, rtol);
    }
  }
}

double dot(const Tensor& a, const Tensor& b) { return sum(a * b).item(); }

/// A call that throws nothing gives "(no error)", which reads well in a failed CHECK.
std::string error_of(auto&& f) { return encore::testing::error_of(f, "(no error)"); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Golden values

TEST_CASE("layers match PyTorch in f64 (forward, backward, running statistics)") {
  for (const auto& [name, c] : fixtures().at("cases").items()) {
    SUBCASE(name.c_str()) { check_case(name, c, DType::f64, 1e-10, 1e-10); }
  }
}

TEST_CASE("layers match PyTorch in f32") {
  for (const auto& [name, c] : fixtures().at("cases").items()) {
    SUBCASE(name.c_str()) { check_case(name, c, DType::f32, 2e-5, 2e-5); }
  }
}

// ---------------------------------------------------------------------------------------------
// Keras padding modes

TEST_CASE("seed 002 conv autoencoder shapes follow Keras 'valid' and 'same'") {
  using nn::PaddingMode;
  Generator gen(1);
  // Encoder: 28 -> Conv(3, s2, valid) -> 13 -> Conv(3, s2, valid) -> 6.
  auto enc = std::make_shared<nn::Sequential>();
  enc->add(std::make_shared<nn::Conv2d>(
      1, 32, 3, nn::ConvOptions{.stride = 2, .padding_mode = PaddingMode::valid, .gen = &gen}));
  enc->add(std::make_shared<nn::ReLU>());
  auto conv2 = enc->add(std::make_shared<nn::Conv2d>(
      32, 32, 3, nn::ConvOptions{.stride = 2, .padding_mode = PaddingMode::valid, .gen = &gen}));
  enc->add(std::make_shared<nn::ReLU>());
  enc->add(std::make_shared<nn::Flatten>());
  enc->add(std::make_shared<nn::Linear>(32 * 6 * 6, 100, nn::LinearOptions{.gen = &gen}));
  Tensor x = rand({2, 1, 28, 28}, gen);
  CHECK(conv2->output_shape({2, 32, 13, 13}) == Shape{2, 32, 6, 6});
  Tensor z = enc->forward(x);
  CHECK(z.shape() == Shape{2, 100});

  // Decoder: Dense(7*7*32) -> Reshape -> ConvT(64, 3, s2, same) 7 -> 14 -> ConvT(32, 3, s2,
  // same) -> 28 -> ConvT(1, 3, s1, same) -> 28 -> ConvT(1, 3, s1, same) -> 28.
  auto same = [&](int64_t s) {
    return nn::ConvTransposeOptions{.stride = s, .padding_mode = PaddingMode::same, .gen = &gen};
  };
  auto dec = std::make_shared<nn::Sequential>();
  dec->add(std::make_shared<nn::Linear>(100, 7 * 7 * 32, nn::LinearOptions{.gen = &gen}));
  dec->add(std::make_shared<nn::ReLU>());
  dec->add(std::make_shared<nn::Reshape>(Shape{32, 7, 7}));
  auto t1 = dec->add(std::make_shared<nn::ConvTranspose2d>(32, 64, 3, same(2)));
  dec->add(std::make_shared<nn::ReLU>());
  auto t2 = dec->add(std::make_shared<nn::ConvTranspose2d>(64, 32, 3, same(2)));
  dec->add(std::make_shared<nn::ReLU>());
  dec->add(std::make_shared<nn::ConvTranspose2d>(32, 1, 3, same(1)));
  dec->add(std::make_shared<nn::ConvTranspose2d>(1, 1, 3, same(1)));
  dec->add(std::make_shared<nn::Sigmoid>());
  CHECK(t1->output_shape({2, 32, 7, 7}) == Shape{2, 64, 14, 14});
  CHECK(t2->output_shape({2, 64, 14, 14}) == Shape{2, 32, 28, 28});
  Tensor y = dec->forward(z);
  CHECK(y.shape() == Shape{2, 1, 28, 28});

  // 'valid' transpose: (in - 1) s + k.
  nn::ConvTranspose2d valid(2, 3, 3, {.stride = 2, .padding_mode = PaddingMode::valid});
  CHECK(valid.output_shape({1, 2, 7, 7}) == Shape{1, 3, 15, 15});
  // 'same' conv: ceil(in / s), whatever the kernel.
  nn::Conv2d same5(2, 3, 5, {.stride = 3, .padding_mode = PaddingMode::same});
  CHECK(same5.output_shape({1, 2, 10, 9}) == Shape{1, 3, 4, 3});
  CHECK(same5.forward(zeros({1, 2, 10, 9})).shape() == Shape{1, 3, 4, 3});
}

TEST_CASE("Keras 'same' ConvTranspose2d is the adjoint of Keras 'same' Conv2d") {
  // <conv(x), y> = <conv_t(y), x> with the same weight (F, C, k, k) read as (C_in, C_out, k, k)
  // by the transposed layer, for strides 1..3, kernels 1..5, dilations 1..2, even and odd sizes.
  Generator gen(7);
  for (int64_t s = 1; s <= 3; ++s)
    for (int64_t k = 1; k <= 5; ++k)
      for (int64_t d = 1; d <= 2; ++d)
        for (int64_t in : {3, 4}) {
          CAPTURE(s);
          CAPTURE(k);
          CAPTURE(d);
          CAPTURE(in);
          nn::Conv2d conv(2, 3, k,
                          {.stride = s,
                           .dilation = d,
                           .padding_mode = nn::PaddingMode::same,
                           .bias = false,
                           .dtype = DType::f64});
          nn::ConvTranspose2d convt(3, 2, k,
                                    {.stride = s,
                                     .dilation = d,
                                     .padding_mode = nn::PaddingMode::same,
                                     .bias = false,
                                     .dtype = DType::f64});
          convt.weight().copy_(conv.weight());
          Tensor x = randn({2, 2, in * s, (in + 1) * s}, gen, DType::f64);
          Tensor y = randn(conv.output_shape(x.shape()), gen, DType::f64);
          REQUIRE(y.shape() == Shape{2, 3, in, in + 1});
          Tensor ct = convt.forward(y);
          REQUIRE(ct.shape() == x.shape());
          CHECK(dot(conv.forward(x), y) == doctest::Approx(dot(ct, x)).epsilon(1e-12));
        }
}

// ---------------------------------------------------------------------------------------------
// Initialisers

TEST_CASE("fans of linear and conv weights") {
  CHECK(nn::init::compute_fans({400, 784}).fan_in == 784);
  CHECK(nn::init::compute_fans({400, 784}).fan_out == 400);
  CHECK(nn::init::compute_fans({32, 16, 3, 3}).fan_in == 16 * 9);  // Conv2d (F, C, kh, kw)
  CHECK(nn::init::compute_fans({32, 16, 3, 3}).fan_out == 32 * 9);
  CHECK(nn::init::compute_fans({32, 64, 3, 3}).fan_in == 64 * 9);  // ConvT (C_in, C_out, ...)
  CHECK(nn::init::compute_fans({7}).fan_in == 7);
  CHECK_THROWS_AS(nn::init::compute_fans(Shape{}), Error);
}

TEST_CASE("initialiser statistics") {
  Generator gen(123);
  const int64_t out = 300, in = 500;
  auto stats = [](const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    double m = 0, lo = 1e300, hi = -1e300;
    for (double x : v) m += x, lo = std::min(lo, x), hi = std::max(hi, x);
    m /= double(v.size());
    double s2 = 0;
    for (double x : v) s2 += (x - m) * (x - m);
    return std::array<double, 4>{m, std::sqrt(s2 / double(v.size())), lo, hi};
  };

  SUBCASE("glorot_uniform: U(-a, a), a = sqrt(6 / (in + out))") {
    Tensor w = nn::init::glorot_uniform(empty({out, in}), gen);
    const double a = std::sqrt(6.0 / (in + out));
    auto [m, sd, lo, hi] = stats(w);
    CHECK(lo >= -a);
    CHECK(hi <= a);
    CHECK(hi > 0.99 * a);
    CHECK(lo < -0.99 * a);
    CHECK(std::abs(m) < 0.01 * a);
    CHECK(sd == doctest::Approx(a / std::sqrt(3.0)).epsilon(0.02));
  }
  SUBCASE("glorot_normal: std sqrt(2 / (in + out))") {
    Tensor w = nn::init::glorot_normal(empty({out, in}, DType::f64), gen);
    auto [m, sd, lo, hi] = stats(w);
    CHECK(sd == doctest::Approx(std::sqrt(2.0 / (in + out))).epsilon(0.02));
  }
  SUBCASE("he_normal: std sqrt(2 / fan_in), conv fan_in = C kh kw") {
    Tensor w = nn::init::he_normal(empty({64, 32, 3, 3}), gen);
    auto [m, sd, lo, hi] = stats(w);
    CHECK(std::abs(m) < 0.01);
    CHECK(sd == doctest::Approx(std::sqrt(2.0 / (32 * 9))).epsilon(0.03));
  }
  SUBCASE("he_uniform: U(-b, b), b = sqrt(6 / fan_in)") {
    Tensor w = nn::init::he_uniform(empty({out, in}), gen);
    auto [m, sd, lo, hi] = stats(w);
    const double b = std::sqrt(6.0 / in);
    CHECK(lo >= -b);
    CHECK(hi <= b);
    CHECK(hi > 0.99 * b);
  }
  SUBCASE("torch_default: weight and bias U(-1/sqrt(in), 1/sqrt(in))") {
    nn::Linear fc(in, out, {.init = nn::Init::torch_default, .gen = &gen});
    const double b = 1 / std::sqrt(double(in));
    auto [m, sd, lo, hi] = stats(fc.weight());
    CHECK(lo >= -b);
    CHECK(hi <= b);
    CHECK(hi > 0.99 * b);
    auto [bm, bsd, blo, bhi] = stats(fc.bias());
    CHECK(blo >= -b);
    CHECK(bhi <= b);
    CHECK(bsd > 0.3 * b);
  }
  SUBCASE("Keras defaults: glorot_uniform kernels, zero biases") {
    nn::Linear fc(in, out, {.gen = &gen});
    auto [m, sd, lo, hi] = stats(fc.weight());
    CHECK(hi <= std::sqrt(6.0 / (in + out)));
    CHECK(hi > 0.99 * std::sqrt(6.0 / (in + out)));
    CHECK(stats(fc.bias())[3] == 0);
    CHECK(stats(fc.bias())[2] == 0);
    nn::Conv2d conv(16, 32, 3, {.gen = &gen});
    CHECK(stats(conv.weight())[3] <= std::sqrt(6.0 / (16 * 9 + 32 * 9)));
    CHECK(stats(conv.bias())[3] == 0);
  }
  SUBCASE("normal, uniform, constants") {
    auto [m, sd, lo, hi] = stats(nn::init::normal(empty({200, 200}), 3.0, 0.5, gen));
    CHECK(m == doctest::Approx(3.0).epsilon(0.01));
    CHECK(sd == doctest::Approx(0.5).epsilon(0.02));
    auto u = stats(nn::init::uniform(empty({200, 200}), -2, 5, gen));
    CHECK(u[2] >= -2);
    CHECK(u[3] < 5);
    CHECK(u[0] == doctest::Approx(1.5).epsilon(0.02));
    CHECK(stats(nn::init::ones(empty({3, 2})))[0] == 1);
    CHECK(stats(nn::init::constant(empty({3}), 2.5))[3] == 2.5);
  }
  SUBCASE("same seed, same values") {
    Generator a(5), b(5);
    CHECK(nn::init::glorot_uniform(empty({4, 6}), a).to_vector<float>() ==
          nn::init::glorot_uniform(empty({4, 6}), b).to_vector<float>());
    nn::Linear l1(6, 4, {.gen = &a}), l2(6, 4, {.gen = &b});
    CHECK(l1.weight().to_vector<float>() == l2.weight().to_vector<float>());
  }
  SUBCASE("errors") {
    CHECK(error_of([&] {
            nn::init::glorot_uniform(zeros({3, 3}, DType::i64), gen);
          }).find("init::glorot_uniform: tensor has dtype i64") == 0);
    CHECK(error_of([&] {
            nn::init::orthogonal(empty({5}), gen);
          }).find("init::orthogonal: needs at least 2 dims, got shape [5]") == 0);
    CHECK_THROWS_AS(nn::init::uniform(empty({2}), 1, 0, gen), Error);
    CHECK_THROWS_AS(nn::init::normal(empty({2}), 0, -1, gen), Error);
  }
}

TEST_CASE("orthogonal gives orthonormal rows or columns") {
  Generator gen(3);
  auto check_identity = [](const Tensor& m, double scale) {
    const int64_t n = m.size(0);
    check_close("W W^T", m, eye(n, n, DType::f64) * scale, 1e-12, 0);
  };
  SUBCASE("wide (5, 8): W W^T = I") {
    Tensor w = nn::init::orthogonal(empty({5, 8}, DType::f64), gen);
    check_identity(matmul(w, transpose(w, 0, 1)), 1);
  }
  SUBCASE("tall (8, 5): W^T W = I") {
    Tensor w = nn::init::orthogonal(empty({8, 5}, DType::f64), gen);
    check_identity(matmul(transpose(w, 0, 1), w), 1);
  }
  SUBCASE("square with gain 2: W W^T = 4 I, and f32") {
    Tensor w = nn::init::orthogonal(empty({6, 6}, DType::f64), gen, 2.0);
    check_identity(matmul(w, transpose(w, 0, 1)), 4);
    Tensor w32 = nn::init::orthogonal(empty({6, 6}), gen).to(DType::f64);
    check_close("f32 W W^T", matmul(w32, transpose(w32, 0, 1)), eye(6, 6, DType::f64), 1e-6, 0);
  }
  SUBCASE("conv weight (4, 2, 3, 3) flattened to (4, 18)") {
    Tensor w = reshape(nn::init::orthogonal(empty({4, 2, 3, 3}, DType::f64), gen), {4, 18});
    check_identity(matmul(w, transpose(w, 0, 1)), 1);
  }
  SUBCASE("as a layer option") {
    nn::Linear fc(8, 8, {.init = nn::Init::orthogonal, .dtype = DType::f64, .gen = &gen});
    check_identity(matmul(fc.weight(), transpose(fc.weight(), 0, 1)), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Random layers

TEST_CASE("Dropout: inverted in training, identity in eval, seedable") {
  auto drop = std::make_shared<nn::Dropout>(0.25);
  drop->manual_seed(11);
  Tensor x = ones({100, 100});
  Tensor y = drop->forward(x);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros_n = 0;
  for (float e : v) {
    if (e == 0)
      ++zeros_n;
    else
      CHECK(e == doctest::Approx(1 / 0.75));
  }
  CHECK(double(zeros_n) / double(v.size()) == doctest::Approx(0.25).epsilon(0.08));
  drop->manual_seed(11);
  CHECK(drop->forward(x).to_vector<float>() == v);  // reseeding replays the mask
  drop->eval();
  CHECK(drop->forward(x).same(x));
  CHECK(drop->describe() == "Dropout(p=0.25)");
  CHECK(error_of([] { nn::Dropout d(1.0); }) == "Dropout: p must be in [0, 1), got 1");
}

TEST_CASE("GaussianNoise and MaskingNoise corrupt only in training (unless always)") {
  Generator gen(9);
  Tensor x = full({200, 100}, 2.0);
  SUBCASE("GaussianNoise") {
    nn::GaussianNoise noise(0.5, {.gen = &gen});
    Tensor d = noise.forward(x) - x;
    std::vector<float> v = d.to_vector<float>();
    double s2 = 0, m = 0;
    for (float e : v) m += e, s2 += double(e) * e;
    m /= double(v.size());
    CHECK(std::abs(m) < 0.02);
    CHECK(std::sqrt(s2 / double(v.size())) == doctest::Approx(0.5).epsilon(0.03));
    noise.eval();
    CHECK(noise.forward(x).same(x));
    nn::GaussianNoise always(0.5, {.always = true, .gen = &gen});
    always.eval();
    CHECK(sum(abs(always.forward(x) - x)).item() > 0);
    // The noise is a constant: d out / d x = 1.
    Tensor xv = x.clone();
    GradientTape tape;
    tape.watch(xv);
    Tensor g = tape.gradient(sum(always.forward(xv)), xv);
    CHECK(sum(g).item() == doctest::Approx(double(x.numel())));
  }
  SUBCASE("MaskingNoise zeroes a fraction p without rescaling") {
    nn::MaskingNoise mask(0.3, {.gen = &gen});
    std::vector<float> v = mask.forward(x).to_vector<float>();
    int64_t zeros_n = 0;
    for (float e : v) {
      if (e == 0)
        ++zeros_n;
      else
        CHECK(e == 2.0f);
    }
    CHECK(double(zeros_n) / double(v.size()) == doctest::Approx(0.3).epsilon(0.05));
    mask.eval();
    CHECK(mask.forward(x).same(x));
    mask.manual_seed(4);
    nn::MaskingNoise always(0.3, {.always = true});
    always.manual_seed(4);
    always.eval();
    CHECK(sum(eq(always.forward(x), zeros_like(x))).item() > 0);
    CHECK(mask.describe() == "MaskingNoise(p=0.3)");
    CHECK_THROWS_AS(nn::MaskingNoise(1.5), Error);
    CHECK_THROWS_AS(nn::GaussianNoise(-1), Error);
  }
}

// ---------------------------------------------------------------------------------------------
// Embedding, activations, containers

TEST_CASE("Embedding picks rows and accumulates their gradients") {
  Generator gen(2);
  nn::Embedding emb(5, 3, {.dtype = DType::f64, .gen = &gen});
  Tensor ids = from_vector<int64_t>({4, 0, 4}, {3});
  GradientTape tape;
  Tensor y = emb.forward(ids);
  REQUIRE(y.shape() == Shape{3, 3});
  check_close("row 4", select(y, 0, 0), select(emb.weight(), 0, 4), 0, 0);
  check_close("row 0", select(y, 0, 1), select(emb.weight(), 0, 0), 0, 0);
  Tensor g = tape.gradient(sum(y), emb.weight());
  check_close("grad", g, from_vector<double>({1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2}, {5, 3}),
              0, 0);
  CHECK(emb.forward(from_vector<int64_t>({1, 2, 3, 4}, {2, 2})).shape() == Shape{2, 2, 3});
  CHECK(error_of([&] {
          emb.forward(from_vector<int64_t>({1, 5}, {2}));
        }) == "Embedding: index 5 (at flat position 1 of indices [2]) is outside [0, 5)");
  CHECK(error_of([&] { emb.forward(zeros({2})); }) ==
        "Embedding: indices [2] must be i64, got f32");
  CHECK(emb.describe() == "Embedding(5, 3)");
}

TEST_CASE("activation modules forward to their ops") {
  Tensor x = tensor({-2, -0.5, 0.5, 3});
  check_close("ReLU", nn::ReLU().forward(x), relu(x), 0, 0);
  check_close("LeakyReLU", nn::LeakyReLU(0.2).forward(x), leaky_relu(x, 0.2), 0, 0);
  check_close("ELU", nn::ELU(0.7).forward(x), elu(x, 0.7), 0, 0);
  check_close("Sigmoid", nn::Sigmoid().forward(x), sigmoid(x), 0, 0);
  check_close("Tanh", nn::Tanh().forward(x), tanh(x), 0, 0);
  check_close("Softplus", nn::Softplus().forward(x), softplus(x), 0, 0);
  check_close("Softmax", nn::Softmax(0).forward(x), softmax(x, 0), 0, 0);
  CHECK(nn::Identity().forward(x).same(x));
  CHECK(nn::LeakyReLU(0.2).describe() == "LeakyReLU(0.2)");
  CHECK(nn::Softmax().describe() == "Softmax(dim=-1)");
  CHECK(error_of([&] { nn::Softmax(2).forward(x); }) ==
        "Softmax: dim 2 is out of range for input [4]");
}

TEST_CASE("Sequential names, chains and reports errors by step") {
  Generator gen(4);
  auto seq = std::make_shared<nn::Sequential>();
  auto fc = seq->add(std::make_shared<nn::Linear>(6, 5, nn::LinearOptions{.gen = &gen}));
  seq->add(std::make_shared<nn::ReLU>());
  seq->add("code", std::make_shared<nn::Linear>(5, 2, nn::LinearOptions{.gen = &gen}));
  std::vector<std::string> names;
  for (auto& [n, p] : seq->named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "code.weight", "code.bias"});
  CHECK(seq->size() == 3);
  CHECK(seq->at(0).get() == fc.get());
  CHECK(seq->describe() == "Sequential(3 modules)");

  Tensor x = randn({4, 6}, gen);
  auto code = std::dynamic_pointer_cast<nn::Linear>(seq->at(2));
  REQUIRE(code);
  check_close("chain", seq->forward(x), code->forward(relu(fc->forward(x))), 0, 0);

  CHECK(error_of([&] {
          seq->forward(randn({4, 7}, gen));
        }) == "Sequential: step '0' (Linear(6 -> 5)): Linear: expected input (..., 6), got [4, 7]");
  CHECK_THROWS_AS(seq->add("code", std::make_shared<nn::ReLU>()), Error);  // name taken

  // All at once, nested: names are dotted paths.
  auto outer = std::make_shared<nn::Sequential>(std::make_shared<nn::Flatten>(), seq,
                                                std::make_shared<nn::Sigmoid>());
  CHECK(outer->named_parameters().front().first == "1.0.weight");
  CHECK(outer->forward(randn({4, 2, 3}, gen)).shape() == Shape{4, 2});
}

TEST_CASE("Flatten and Reshape") {
  Tensor x = zeros({8, 32, 7, 7});
  CHECK(nn::Flatten().forward(x).shape() == Shape{8, 32 * 49});
  CHECK(nn::Flatten(2).forward(x).shape() == Shape{8, 32, 49});
  CHECK(nn::Flatten(0, 1).forward(x).shape() == Shape{256, 7, 7});
  CHECK(nn::Reshape({32, 7, 7}).forward(zeros({8, 1568})).shape() == Shape{8, 32, 7, 7});
  CHECK(nn::Reshape({-1, 7}).forward(zeros({8, 1568})).shape() == Shape{8, 224, 7});
  CHECK(nn::Reshape({32, 7, 7}).describe() == "Reshape(N, 32, 7, 7)");
  CHECK(error_of([] {
          nn::Reshape({32, 7, 7}).forward(zeros({8, 1000}));
        }) == "Reshape: cannot reshape input [8, 1000] (1000 values per sample) to (N, 32, 7, 7)");
  CHECK(error_of([] { nn::Reshape({-1, -1}); }) == "Reshape: target [-1, -1] has more than one -1");
  CHECK(error_of([] {
          nn::Flatten(3).forward(zeros({2, 3}));
        }) == "Flatten: dims 3..-1 are out of range (or reversed) for input [2, 3]");
}

// ---------------------------------------------------------------------------------------------
// describe() and errors

TEST_CASE("describe() strings") {
  CHECK(nn::Linear(784, 400).describe() == "Linear(784 -> 400)");
  CHECK(nn::Linear(4, 2, {.bias = false}).describe() == "Linear(4 -> 2, no bias)");
  CHECK(nn::Conv2d(1, 32, 3, {.stride = 2, .padding_mode = nn::PaddingMode::valid}).describe() ==
        "Conv2d(1 -> 32, kernel 3, stride 2, valid)");
  CHECK(nn::Conv2d(3, 8, {3, 5}, {.padding = {1, 2}, .dilation = 2, .bias = false}).describe() ==
        "Conv2d(3 -> 8, kernel 3x5, padding 1x2, dilation 2, no bias)");
  CHECK(nn::ConvTranspose2d(32, 64, 3, {.stride = 2, .padding_mode = nn::PaddingMode::same})
            .describe() == "ConvTranspose2d(32 -> 64, kernel 3, stride 2, same)");
  CHECK(nn::ConvTranspose2d(2, 3, 3, {.stride = 2, .padding = 1, .output_padding = 1}).describe() ==
        "ConvTranspose2d(2 -> 3, kernel 3, stride 2, padding 1, output_padding 1)");
  CHECK(nn::BatchNorm1d(400).describe() == "BatchNorm1d(400)");
  CHECK(nn::BatchNorm2d(32, {.eps = 1e-3, .momentum = 0.01}).describe() ==
        "BatchNorm2d(32, eps 0.001, momentum 0.01)");
}

TEST_CASE("conv layers: huge geometry throws naming the layer, never overflows") {
  const int64_t big = int64_t(1) << 62;
  auto named = [](const std::string& m, const char* layer) {
    return m.rfind(layer, 0) == 0 && m.find("[1, 1, 4, 4]") != std::string::npos;
  };
  const Tensor x = zeros({1, 1, 4, 4});
  std::string m = error_of([&] { nn::Conv2d(1, 1, 3, {.padding = big}).forward(x); });
  CHECK_MESSAGE(named(m, "Conv2d: "), m);
  m = error_of([&] { nn::Conv2d(1, 1, 3, {.dilation = INT64_MAX}).forward(x); });
  CHECK_MESSAGE(named(m, "Conv2d: "), m);
  m = error_of([&] {
    nn::Conv2d(1, 1, 3, {.dilation = big, .padding_mode = nn::PaddingMode::same}).forward(x);
  });
  CHECK_MESSAGE(named(m, "Conv2d: "), m);
  CHECK(nn::Conv2d(1, 1, 3, {.stride = INT64_MAX, .padding_mode = nn::PaddingMode::same})
            .output_shape({1, 1, 4, 4}) == Shape{1, 1, 1, 1});
  m = error_of([&] { nn::ConvTranspose2d(1, 1, 3, {.stride = big}).forward(x); });
  CHECK_MESSAGE(named(m, "ConvTranspose2d: "), m);
  m = error_of([&] { nn::ConvTranspose2d(1, 1, 3, {.padding = INT64_MAX}).forward(x); });
  CHECK_MESSAGE(named(m, "ConvTranspose2d: "), m);
  // The constructor resolves 'same' / 'valid' with the dilated kernel: checked there too.
  m = error_of([&] {
    nn::ConvTranspose2d(1, 1, 3, {.dilation = INT64_MAX, .padding_mode = nn::PaddingMode::valid});
  });
  CHECK_MESSAGE(m.rfind("ConvTranspose2d: the output size overflows", 0) == 0, m);
}

TEST_CASE("layer errors name the layer and the bad value or shape") {
  CHECK(error_of([] {
          nn::Conv2d(3, 8, 3).forward(zeros({8, 1, 28, 28}));
        }) == "Conv2d: expected input (N, 3, H, W), got [8, 1, 28, 28]");
  CHECK(error_of([] {
          nn::Conv2d(1, 8, 5).forward(zeros({1, 1, 3, 3}));
        }) ==
        "Conv2d: input [1, 1, 3, 3]: the height 3 with padding 0 on each side is smaller "
        "than the kernel 5 (height: kernel 5, stride 1, padding 0, dilation 1)");
  CHECK(error_of([] {
          nn::Conv2d(1, 8, 3, {.padding = 1, .dilation = 3}).forward(zeros({1, 1, 4, 9}));
        }) ==
        "Conv2d: input [1, 1, 4, 9]: the height 4 with padding 1 on each side is smaller than the "
        "kernel 3 dilated to 7 (height: kernel 3, stride 1, padding 1, dilation 3)");
  CHECK(error_of([] {
          nn::ConvTranspose2d(4, 2, 3).forward(zeros({2, 3, 5, 5}));
        }) == "ConvTranspose2d: expected input (N, 4, H, W), got [2, 3, 5, 5]");
  CHECK(error_of([] {
          nn::Linear(784, 400).forward(zeros({8, 28, 28}));
        }) == "Linear: expected input (..., 784), got [8, 28, 28]");
  CHECK(error_of([] { nn::Linear(0, 3); }) ==
        "Linear: in_features and out_features must be positive, got 0 -> 3");
  CHECK(error_of([] { nn::Conv2d(1, 8, 3, {.stride = 0}); }) ==
        "Conv2d: stride must be positive, got 0");
  CHECK(error_of(
            [] { nn::Conv2d(1, 8, 3, {.padding = 1, .padding_mode = nn::PaddingMode::same}); }) ==
        "Conv2d: padding 1 cannot be combined with padding_mode 'same' (it computes its own)");
  CHECK(error_of([] { nn::ConvTranspose2d(1, 8, 3, {.stride = 2, .output_padding = 2}); }) ==
        "ConvTranspose2d: output padding 2 must be non-negative and smaller than either the "
        "stride 2 or the dilation 1 (height: kernel 3, stride 2, padding 0, dilation 1)");
  CHECK(error_of([] { nn::BatchNorm1d(4, {.momentum = 1.5}); }) ==
        "BatchNorm1d: momentum must be in [0, 1], got 1.5");
  CHECK(error_of([] {
          nn::BatchNorm2d(3).forward(zeros({2, 3, 4}));
        }) == "BatchNorm2d: expected input (N, C, H, W) with C = 3, got [2, 3, 4]");
  CHECK(error_of([] {
          nn::BatchNorm1d(3).forward(zeros({1, 3}));
        }) ==
        "BatchNorm1d: expected more than 1 value per channel when training, got input [1, 3]");
  nn::BatchNorm1d bn(3);
  bn.eval();
  CHECK(bn.forward(zeros({1, 3})).shape() == Shape{1, 3});  // fine with running statistics
  CHECK(error_of([] { nn::Embedding(0, 3); }) ==
        "Embedding: num_embeddings and embedding_dim must be positive, got 0, 3");
}

TEST_CASE("BatchNorm without running statistics uses batch statistics in eval too") {
  nn::BatchNorm1d bn(2, {.track_running_stats = false, .dtype = DType::f64});
  CHECK(bn.named_buffers().empty());
  bn.eval();
  Tensor x = from_vector<double>({1, 10, 3, 20, 5, 30}, {3, 2});
  Tensor y = bn.forward(x);
  check_close("column means", mean(y, {0}), zeros({2}, DType::f64), 1e-12, 0);
  check_close("column variances", var(y, {0}, 0), ones({2}, DType::f64), 1e-4, 0);
  // Buffers and parameters keep PyTorch's names.
  nn::BatchNorm2d bn2(4);
  std::vector<std::string> names;
  for (auto& [n, t] : bn2.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"bias", "num_batches_tracked", "running_mean",
                                          "running_var", "weight"});
  CHECK(bn2.num_batches_tracked().dtype() == DType::i64);
}

TEST_CASE("conv options: one naming, Conv2dOptions and ConvTranspose2dOptions") {
  static_assert(std::is_same_v<nn::ConvOptions, nn::Conv2dOptions>);
  static_assert(std::is_same_v<nn::ConvTransposeOptions, nn::ConvTranspose2dOptions>);
  nn::Conv2d conv(1, 2, 3, nn::Conv2dOptions{.stride = 2, .padding_mode = nn::PaddingMode::valid});
  CHECK(conv.output_shape({1, 1, 9, 9}) == Shape{1, 2, 4, 4});
  nn::ConvTranspose2d up(
      2, 1, 3, nn::ConvTranspose2dOptions{.stride = 2, .padding_mode = nn::PaddingMode::same});
  CHECK(up.output_shape({1, 2, 4, 4}) == Shape{1, 1, 8, 8});
}

namespace {
// Restores the process-wide convention when a test ends, even on failure.
struct ConventionGuard {
  nn::InitConvention saved = nn::init_convention();
  ~ConventionGuard() { nn::set_init_convention(saved); }
};
}  // namespace

TEST_CASE("init convention: one switch for every layer's default initialisation") {
  ConventionGuard guard;
  auto values = [](const Tensor& t) { return t.to_vector<float>(); };
  // The default (mixed): Linear as Keras (glorot_uniform, zero bias), LSTM as PyTorch.
  CHECK(nn::init_convention() == nn::InitConvention::mixed);
  {
    Generator a(11), b(11);
    nn::Linear dflt(6, 4, {.gen = &a});
    nn::Linear keras(6, 4, {.init = nn::Init::glorot_uniform, .gen = &b});
    CHECK(values(dflt.weight()) == values(keras.weight()));
    CHECK(values(dflt.bias()) == std::vector<float>(4, 0.0f));
    Generator c(12), d(12);
    nn::LSTM lstm(3, 5, {.gen = &c});
    nn::LSTM torch_lstm(3, 5, {.init = nn::RecurrentInit::torch_default, .gen = &d});
    CHECK(values(lstm.parameters()[0]) == values(torch_lstm.parameters()[0]));
  }
  // torch: Linear and Conv take PyTorch's default, unless their options say otherwise.
  nn::set_init_convention(nn::InitConvention::torch);
  {
    Generator a(11), b(11), c(11);
    nn::Linear dflt(6, 4, {.gen = &a});
    nn::Linear torch_fc(6, 4, {.init = nn::Init::torch_default, .gen = &b});
    nn::Linear explicit_glorot(6, 4, {.init = nn::Init::glorot_uniform, .gen = &c});
    CHECK(values(dflt.weight()) == values(torch_fc.weight()));
    CHECK(values(dflt.bias()) == values(torch_fc.bias()));
    CHECK(values(explicit_glorot.bias()) == std::vector<float>(4, 0.0f));
    Generator e(13), f(13);
    nn::Conv2d conv(2, 3, 3, {.gen = &e});
    nn::Conv2d torch_conv(2, 3, 3, {.init = nn::Init::torch_default, .gen = &f});
    CHECK(values(conv.weight()) == values(torch_conv.weight()));
  }
  // keras: recurrent layers take Keras' initialisation too.
  nn::set_init_convention(nn::InitConvention::keras);
  {
    Generator c(12), d(12);
    nn::LSTM lstm(3, 5, {.gen = &c});
    nn::LSTM keras_lstm(3, 5, {.init = nn::RecurrentInit::keras, .gen = &d});
    for (size_t i = 0; i < lstm.parameters().size(); ++i)
      CHECK(values(lstm.parameters()[i]) == values(keras_lstm.parameters()[i]));
  }
}

TEST_CASE("Linear with a weight too large to exist throws naming Linear and the bytes") {
  const int64_t half = int64_t{1} << 31;
  // 2^62 weights of 4 bytes: 2^64 bytes, which wrapped to a 64-byte storage before.
  CHECK_THROWS_WITH_AS(nn::Linear(half, half),
                       "Linear: a tensor of shape [2147483648, 2147483648] and dtype f32 needs "
                       "18446744073709551616 bytes, more than the limit of 4611686018427387904 "
                       "(2^62)",
                       Error);
  // Large but representable: the allocation fails, and says so naming the layer.
  CHECK_THROWS_WITH_AS(nn::Linear(half, half / 4, {.bias = false}),
                       doctest::Contains("Linear: out of memory: cannot allocate"), Error);
}
