// nn/loss: forward values and gradients against PyTorch (every loss, every reduction, with the
// edge cases p = 0 / 1 and |logits| up to 100, whose references are exact), closed forms for
// l2_loss and gaussian_kl, gradcheck of every loss at interior points, and error messages.
// tests/golden/make_loss_fixtures.py (run once with torch) wrote tests/golden/
// loss_fixtures.json; this test needs only the JSON.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
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

const json& fixtures() { return golden("loss_fixtures.json"); }

Shape shape_of(const json& j) {
  Shape s;
  for (int64_t v : j.at("shape")) s.push_back(v);
  return s;
}

Tensor to_labels(const json& j) {
  return from_vector<int64_t>(j.at("data").get<std::vector<int64_t>>(), shape_of(j));
}

nn::Reduction reduction_of(const std::string& r) {
  if (r == "mean") return nn::Reduction::mean;
  if (r == "sum") return nn::Reduction::sum;
  REQUIRE(r == "none");
  return nn::Reduction::none;
}

using LossFn = std::function<Tensor(const Tensor&, const Tensor&, nn::Reduction)>;

LossFn loss_of(const std::string& name) {
  if (name == "mse_loss") return nn::mse_loss;
  if (name == "binary_cross_entropy") return nn::binary_cross_entropy;
  if (name == "bce_with_logits") return nn::bce_with_logits;
  if (name == "cross_entropy") return nn::cross_entropy;
  if (name == "gaussian_kl") return nn::gaussian_kl;
  FAIL("unknown loss ", name);
  return {};
}

constexpr nn::Reduction kReductions[] = {nn::Reduction::mean, nn::Reduction::sum,
                                         nn::Reduction::none};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Golden values

TEST_CASE("loss: forward and gradients match PyTorch (f64)") {
  const json& cases = fixtures().at("cases");
  REQUIRE(cases.size() == 24);
  for (const auto& [name, c] : cases.items()) {
    const std::string loss = c.at("loss");
    const bool labels = loss == "cross_entropy";
    Tensor pred = json_tensor(c.at("pred"));
    Tensor target = labels ? to_labels(c.at("target")) : json_tensor(c.at("target"));
    GradientTape tape;
    tape.watch(pred);
    if (!labels) tape.watch(target);
    Tensor out = loss_of(loss)(pred, target, reduction_of(c.at("reduction")));
    // Forward: the large-logit and p = 0/1 references are exact, so no absolute slack.
    check_close(name + ": loss", out, json_tensor(c.at("out")), 0, 1e-13);
    Tensor r = json_tensor(c.at("R"));
    Tensors grads = tape.gradient(sum(out * r), labels ? Tensors{pred} : Tensors{pred, target});
    // Gradients: 1e-15 absolute for elements PyTorch's own f64 cannot resolve (sigmoid(50) - 1
    // is -2e-22; softmax of logits 1000 apart underflows).
    check_close(name + ": d/d pred", grads[0], json_tensor(c.at("dpred")), 1e-15, 1e-12);
    if (c.contains("dtarget"))
      check_close(name + ": d/d target", grads[1], json_tensor(c.at("dtarget")), 1e-15, 1e-12);
  }
}

TEST_CASE("loss: f32 forward and gradients match PyTorch") {
  for (const char* name : {"mse_mean", "bce_sum", "bce_logits_none", "cross_entropy_mean",
                           "gaussian_kl_none", "bce_logits_large_sum"}) {
    const json& c = fixtures().at("cases").at(name);
    const std::string loss = c.at("loss");
    const bool labels = loss == "cross_entropy";
    Tensor pred = json_tensor(c.at("pred"), DType::f32);
    Tensor target = labels ? to_labels(c.at("target")) : json_tensor(c.at("target"), DType::f32);
    GradientTape tape;
    tape.watch(pred);
    Tensor out = loss_of(loss)(pred, target, reduction_of(c.at("reduction")));
    CHECK(out.dtype() == DType::f32);
    check_close(std::string(name) + " f32: loss", out, json_tensor(c.at("out")), 1e-6, 1e-5);
    Tensor g = tape.gradient(sum(out * json_tensor(c.at("R"), DType::f32)), pred);
    check_close(std::string(name) + " f32: d/d pred", g, json_tensor(c.at("dpred")), 1e-6, 1e-5);
  }
}

// ---------------------------------------------------------------------------------------------
// Edge cases and closed forms

TEST_CASE("loss: bce_with_logits gradient at x = 0 is exactly sigmoid(0) - t") {
  Tensor x = zeros({5}, DType::f64);
  Tensor t = from_vector<double>({0, 1, 0.25, 0.5, 0.75}, {5});
  {
    GradientTape tape;
    tape.watch(x);
    Tensor loss = nn::bce_with_logits(x, t, nn::Reduction::sum);
    CHECK(loss.item() == doctest::Approx(5 * std::log(2.0)).epsilon(1e-15));
    Tensor dx = tape.gradient(loss, x);
    CHECK(dx.to_vector<double>() == std::vector<double>{0.5, -0.5, 0.25, 0, -0.25});
  }
  {
    GradientTape tape;
    tape.watch(x);
    Tensor dx = tape.gradient(nn::bce_with_logits(x, t), x);  // mean: / 5
    CHECK(dx.to_vector<double>() == std::vector<double>{0.1, -0.1, 0.05, 0, -0.05});
  }
  // f32 too: sigmoid(0) = 0.5 exactly.
  Tensor x32 = zeros({2}, DType::f32), t32 = from_vector<float>({0, 1}, {2});
  GradientTape tape;
  tape.watch(x32);
  Tensor dx = tape.gradient(nn::bce_with_logits(x32, t32, nn::Reduction::sum), x32);
  CHECK(dx.to_vector<float>() == std::vector<float>{0.5f, -0.5f});
}

TEST_CASE("loss: bce_with_logits is finite and exact for |x| = 50 and 100") {
  // By hand: max(x, 0) - x t + log(1 + exp(-|x|)); log1p(exp(-100)) = 3.7e-44 vanishes next to
  // every term but the x = 100, t = 1 one, where it is the whole loss.
  Tensor x = from_vector<double>({100, -100, 100, 50}, {4});
  Tensor t = from_vector<double>({1, 0, 0, 1}, {4});
  std::vector<double> got = nn::bce_with_logits(x, t, nn::Reduction::none).to_vector<double>();
  CHECK(got[0] == doctest::Approx(std::exp(-100.0)).epsilon(1e-14));
  CHECK(got[1] == doctest::Approx(std::exp(-100.0)).epsilon(1e-14));
  CHECK(got[2] == 100);
  CHECK(got[3] == doctest::Approx(std::exp(-50.0)).epsilon(1e-14));
  for (double v : got) CHECK(std::isfinite(v));
  // Gradients stay finite too.
  GradientTape tape;
  tape.watch(x);
  std::vector<double> dx =
      tape.gradient(nn::bce_with_logits(x, t, nn::Reduction::sum), x).to_vector<double>();
  CHECK(std::abs(dx[0]) < 1e-40);
  CHECK(dx[2] == 1);
  for (double v : dx) CHECK(std::isfinite(v));
}

TEST_CASE("loss: binary_cross_entropy at p = 0 and 1 clamps each log at -100") {
  Tensor p = from_vector<double>({0, 0, 1, 1, 0, 1}, {6});
  Tensor t = from_vector<double>({0, 1, 1, 0, 0.5, 0.25}, {6});
  GradientTape tape;
  tape.watch(p);
  tape.watch(t);
  Tensor loss = nn::binary_cross_entropy(p, t, nn::Reduction::none);
  CHECK(loss.to_vector<double>() == std::vector<double>{0, 100, 0, 100, 50, 75});
  Tensors g = tape.gradient(sum(loss), Tensors{p, t});
  // d/dp = (p - t) / max(p (1 - p), 1e-12)
  std::vector<double> dp = g[0].to_vector<double>();
  CHECK(dp[0] == 0);
  CHECK(dp[1] == doctest::Approx(-1e12).epsilon(1e-15));
  CHECK(dp[3] == doctest::Approx(1e12).epsilon(1e-15));
  CHECK(dp[4] == doctest::Approx(-0.5e12).epsilon(1e-15));
  // d/dt of the clamped loss = max(log(1 - p), -100) - max(log p, -100)
  CHECK(g[1].to_vector<double>() == std::vector<double>{100, 100, -100, -100, 100, -100});
}

TEST_CASE("loss: l2_loss is sum(t^2) / 2 with gradient t") {
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor t = from_vector<double>({1, -2, 3, 0.5, -4, 0}, {2, 3}).to(dt);
    GradientTape tape;
    tape.watch(t);
    Tensor l = nn::l2_loss(t);
    CHECK(l.dim() == 0);
    CHECK(l.dtype() == dt);
    CHECK(l.item() == 15.125);  // (1 + 4 + 9 + 0.25 + 16) / 2
    Tensor g = tape.gradient(l, t);
    CHECK(g.to_vector<double>() == t.to_vector<double>());
  }
  CHECK(nn::l2_loss(scalar(3.0, DType::f64)).item() == 4.5);
}

TEST_CASE("loss: gaussian_kl against the closed form") {
  // KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2 per latent dimension.
  Tensor mu = from_vector<double>({0, 1, -2, 0.5, 0, 0}, {2, 3});
  Tensor logvar = from_vector<double>({0, 0, std::log(2.0), -1, 1, 0}, {2, 3});
  auto kl = [](double m, double lv) { return (m * m + std::exp(lv) - 1 - lv) / 2; };
  const double row0 = kl(0, 0) + kl(1, 0) + kl(-2, std::log(2.0));
  const double row1 = kl(0.5, -1) + kl(0, 1) + kl(0, 0);
  check_close("none", nn::gaussian_kl(mu, logvar, nn::Reduction::none),
              from_vector<double>({row0, row1}, {2}), 0, 1e-15);
  CHECK(nn::gaussian_kl(mu, logvar, nn::Reduction::sum).item() ==
        doctest::Approx(row0 + row1).epsilon(1e-15));
  CHECK(nn::gaussian_kl(mu, logvar).item() == doctest::Approx((row0 + row1) / 2).epsilon(1e-15));
  // The standard normal is at zero KL, with zero gradient.
  Tensor z = zeros({3, 4}, DType::f64), zl = zeros({3, 4}, DType::f64);
  GradientTape tape;
  tape.watch(z);
  tape.watch(zl);
  Tensor k = nn::gaussian_kl(z, zl);
  CHECK(k.item() == 0);
  for (const Tensor& g : tape.gradient(k, Tensors{z, zl}))
    CHECK(g.to_vector<double>() == std::vector<double>(12, 0.0));
  // d/dmu = mu, d/dlogvar = (exp(logvar) - 1) / 2 (sum reduction).
  GradientTape t2;
  t2.watch(mu);
  t2.watch(logvar);
  Tensors g = t2.gradient(nn::gaussian_kl(mu, logvar, nn::Reduction::sum), Tensors{mu, logvar});
  check_close("d/dmu", g[0], mu, 0, 0);
  check_close("d/dlogvar", g[1], (exp(logvar) - 1.0) * 0.5, 1e-16, 1e-15);
}

TEST_CASE("loss: reductions and non-contiguous inputs") {
  Tensor a = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<double>({0, 2, 5, 4, 1, 6}, {2, 3});
  CHECK(nn::mse_loss(a, b).item() == doctest::Approx((1 + 0 + 4 + 0 + 16 + 0) / 6.0));
  CHECK(nn::mse_loss(a, b, nn::Reduction::sum).item() == 21);
  CHECK(nn::mse_loss(a, b, nn::Reduction::none).to_vector<double>() ==
        std::vector<double>{1, 0, 4, 0, 16, 0});
  // Transposed (non-contiguous) views give the transposed per-element losses.
  Tensor p = from_vector<double>({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {3, 2});
  Tensor t = from_vector<double>({1, 0, 0.5, 1, 0, 0.5}, {3, 2});
  Tensor pt = transpose(p, 0, 1), tt = transpose(t, 0, 1);
  REQUIRE(!pt.is_contiguous());
  check_close("bce transposed", nn::binary_cross_entropy(pt, tt, nn::Reduction::none),
              transpose(nn::binary_cross_entropy(p, t, nn::Reduction::none), 0, 1).contiguous(), 0,
              0);
  check_close("bce_with_logits transposed", nn::bce_with_logits(pt, tt, nn::Reduction::none),
              transpose(nn::bce_with_logits(p, t, nn::Reduction::none), 0, 1).contiguous(), 0, 0);
  Tensor per = from_vector<double>({1, 2, 3, 6}, {4});
  CHECK(nn::reduce_loss(per, nn::Reduction::mean).item() == 3);
  CHECK(nn::reduce_loss(per, nn::Reduction::sum).item() == 12);
  CHECK(nn::reduce_loss(per, nn::Reduction::none).same(per));
}

// ---------------------------------------------------------------------------------------------
// gradcheck

TEST_CASE("loss: gradcheck of every loss at interior points (f64)") {
  Generator gen(7);
  auto u = [&](Shape s, double lo, double hi) { return rand(s, gen, DType::f64, lo, hi); };
  const Tensor labels = from_vector<int64_t>({2, 0, 4}, {3});
  for (nn::Reduction r : kReductions) {
    INFO("reduction " << int(r));
    auto check = [](const char* what, const GradcheckFn& fn, const Tensors& in) {
      GradcheckResult res = gradcheck(fn, in);
      CHECK_MESSAGE(res.ok, what, ": ", res.message);
    };
    check("mse_loss", [r](const Tensors& in) { return nn::mse_loss(in[0], in[1], r); },
          {u({3, 4}, -2, 2), u({3, 4}, -2, 2)});
    check("binary_cross_entropy",
          [r](const Tensors& in) { return nn::binary_cross_entropy(in[0], in[1], r); },
          {u({3, 4}, 0.05, 0.95), u({3, 4}, 0, 1)});
    check("bce_with_logits",
          [r](const Tensors& in) { return nn::bce_with_logits(in[0], in[1], r); },
          {u({3, 4}, -4, 4), u({3, 4}, 0, 1)});
    check("cross_entropy",
          [r, labels](const Tensors& in) { return nn::cross_entropy(in[0], labels, r); },
          {u({3, 5}, -3, 3)});
    check("gaussian_kl", [r](const Tensors& in) { return nn::gaussian_kl(in[0], in[1], r); },
          {u({3, 4}, -1.5, 1.5), u({3, 4}, -2, 1)});
  }
  GradcheckResult l2 =
      gradcheck([](const Tensors& in) { return nn::l2_loss(in[0]); }, {u({2, 3}, -2, 2)});
  CHECK_MESSAGE(l2.ok, l2.message);
}

TEST_CASE("loss: gradgradcheck of the losses with hand-written vjps") {
  Generator gen(11);
  auto u = [&](Shape s, double lo, double hi) { return rand(s, gen, DType::f64, lo, hi); };
  GradcheckResult a = gradgradcheck(
      [](const Tensors& in) { return nn::bce_with_logits(in[0], in[1], nn::Reduction::sum); },
      {u({2, 3}, -3, 3), u({2, 3}, 0, 1)});
  CHECK_MESSAGE(a.ok, a.message);
  GradcheckResult b =
      gradgradcheck([](const Tensors& in) { return nn::binary_cross_entropy(in[0], in[1]); },
                    {u({2, 3}, 0.1, 0.9), u({2, 3}, 0, 1)});
  CHECK_MESSAGE(b.ok, b.message);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("loss: shape mismatches name both shapes") {
  Tensor a = zeros({2, 3}, DType::f64), b = zeros({3, 2}, DType::f64);
  CHECK_THROWS_WITH_AS(nn::mse_loss(a, b),
                       "mse_loss: prediction [2, 3] and target [3, 2] differ in shape", Error);
  CHECK_THROWS_WITH_AS(nn::binary_cross_entropy(a, b),
                       "binary_cross_entropy: prediction [2, 3] and target [3, 2] differ in shape",
                       Error);
  CHECK_THROWS_WITH_AS(nn::bce_with_logits(a, zeros({6}, DType::f64)),
                       "bce_with_logits: prediction [2, 3] and target [6] differ in shape", Error);
  // Broadcastable shapes are still a mistake for a loss.
  CHECK_THROWS_WITH_AS(nn::mse_loss(a, zeros({1, 3}, DType::f64)),
                       "mse_loss: prediction [2, 3] and target [1, 3] differ in shape", Error);
  CHECK_THROWS_WITH_AS(nn::gaussian_kl(a, b),
                       "gaussian_kl: mu [2, 3] and logvar [3, 2] must have the same shape (N, D)",
                       Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(zeros({2, 3, 4}), zeros({2}, DType::i64)),
                       "cross_entropy: logits must be (N, C), got [2, 3, 4]", Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(zeros({2, 3}), zeros({2})),
                       "cross_entropy: labels must be i64, got f32 of shape [2]", Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(zeros({2, 3}), zeros({3}, DType::i64)),
                       "cross_entropy: labels of shape [3] do not match logits [2, 3]", Error);
  CHECK_THROWS_AS(nn::cross_entropy(zeros({2, 3}), from_vector<int64_t>({0, 3}, {2})), Error);
  CHECK_THROWS_AS(nn::cross_entropy(zeros({2, 3}), from_vector<int64_t>({-1, 0}, {2})), Error);
}

TEST_CASE("loss: binary_cross_entropy rejects p outside [0, 1]") {
  CHECK_THROWS_WITH_AS(
      nn::binary_cross_entropy(from_vector<double>({0.5, 0, 1.5, 1}, {2, 2}),
                               zeros({2, 2}, DType::f64)),
      "binary_cross_entropy: p must lie in [0, 1], got 1.5 at flat index 2 of p [2, 2]", Error);
  CHECK_THROWS_WITH_AS(
      nn::binary_cross_entropy(from_vector<float>({-0.25f}, {1}), zeros({1})),
      "binary_cross_entropy: p must lie in [0, 1], got -0.25 at flat index 0 of p [1]", Error);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(
      nn::binary_cross_entropy(from_vector<double>({0.5, nan}, {2}), zeros({2}, DType::f64)),
      "binary_cross_entropy: p must lie in [0, 1], got nan at flat index 1 of p [2]", Error);
}

TEST_CASE("loss: errors name the loss the user called, not the op inside it") {
  using doctest::Contains;
  const Tensor logits = zeros({4, 5});
  // A label out of range used to say "gather: index 5 is out of range...".
  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, tensor({0, 1, 5, 2}, DType::i64)),
                       "cross_entropy: label 5 (sample 2) is out of range for 5 classes (logits "
                       "[4, 5])",
                       Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, tensor({0, -1, 1, 2}, DType::i64)),
                       Contains("cross_entropy: label -1 (sample 1)"), Error);
  CHECK_THROWS_WITH_AS(nn::cross_entropy(zeros({2, 3}, DType::i64), tensor({0, 1}, DType::i64)),
                       Contains("cross_entropy: logits must be f32 or f64, got i64"), Error);
  // An empty batch used to say "mean: cannot reduce over an empty dim".
  const std::string empty = "the mean over an empty batch is undefined";
  CHECK_THROWS_WITH_AS(nn::cross_entropy(zeros({0, 5}), zeros({0}, DType::i64)),
                       Contains(("cross_entropy: " + empty).c_str()), Error);
  CHECK_THROWS_WITH_AS(nn::mse_loss(zeros({0, 3}), zeros({0, 3})),
                       Contains(("mse_loss: " + empty).c_str()), Error);
  CHECK_THROWS_WITH_AS(nn::binary_cross_entropy(zeros({0}), zeros({0})),
                       Contains(("binary_cross_entropy: " + empty).c_str()), Error);
  CHECK_THROWS_WITH_AS(nn::bce_with_logits(zeros({0}), zeros({0})),
                       Contains(("bce_with_logits: " + empty).c_str()), Error);
  CHECK_THROWS_WITH_AS(nn::gaussian_kl(zeros({0, 2}), zeros({0, 2})),
                       Contains(("gaussian_kl: " + empty).c_str()), Error);
  // Summed, an empty batch is a loss of 0.
  CHECK(nn::mse_loss(zeros({0, 3}), zeros({0, 3}), nn::Reduction::sum).item() == 0);
  CHECK(nn::cross_entropy(zeros({0, 5}), zeros({0}, DType::i64), nn::Reduction::sum).item() == 0);
  // i64 inputs used to say "mean: dtype i64".
  CHECK_THROWS_WITH_AS(nn::mse_loss(ones({2, 2}, DType::i64), ones({2, 2}, DType::i64)),
                       "mse_loss: prediction (i64) and target (i64) must be f32 or f64", Error);
  CHECK_THROWS_WITH_AS(nn::mse_loss(ones({2}), Tensor()), Contains("mse_loss: "), Error);
}

TEST_CASE("loss: BatchNorm1d and BatchNorm2d name themselves for an i64 input") {
  nn::BatchNorm1d bn1(3);
  CHECK_THROWS_WITH_AS(bn1.forward(ones({4, 3}, DType::i64)),
                       "BatchNorm1d: input of shape [4, 3] has dtype i64; expected f32 or f64",
                       Error);
  nn::BatchNorm2d bn2(2);
  CHECK_THROWS_WITH_AS(bn2.forward(ones({1, 2, 3, 3}, DType::i64)),
                       doctest::Contains("BatchNorm2d: input of shape [1, 2, 3, 3] has dtype i64"),
                       Error);
}
