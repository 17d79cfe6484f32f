// Golden values from PyTorch: conv2d, conv_transpose2d, max_pool2d, avg_pool2d, softmax and
// log_softmax, forward and backward. tests/golden/make_autograd_fixtures.py (run once with
// torch) wrote tests/golden/autograd_fixtures.json: inputs, output y, a random R and the
// gradients of sum(y * R); tests/golden/make_pool_fixtures.py wrote pool_fixtures.json, the
// same for pooling with ceil_mode. This test needs only the JSON.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "autograd/autograd.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::golden;
using encore::testing::json_tensor;
using nlohmann::json;

namespace {

const json& fixtures() { return golden("autograd_fixtures.json"); }

/// PyTorch's [h, w] attribute pair.
std::pair<int64_t, int64_t> pair_of(const json& case_, const char* key) {
  const json& a = case_.at("attrs").at(key);
  return {a.at(0).get<int64_t>(), a.at(1).get<int64_t>()};
}

/// Runs the case's op on its inputs (by name).
Tensor run(const json& c, const std::map<std::string, Tensor>& in) {
  const std::string op = c.at("op");
  auto get = [&](const char* name) {
    auto it = in.find(name);
    return it == in.end() ? Tensor() : it->second;
  };
  if (op == "conv2d") {
    auto [sh, sw] = pair_of(c, "stride");
    auto [ph, pw] = pair_of(c, "padding");
    auto [dh, dw] = pair_of(c, "dilation");
    return conv2d(get("x"), get("weight"), get("bias"), {sh, sw, ph, pw, dh, dw});
  }
  if (op == "conv_transpose2d") {
    auto [sh, sw] = pair_of(c, "stride");
    auto [ph, pw] = pair_of(c, "padding");
    auto [oh, ow] = pair_of(c, "output_padding");
    auto [dh, dw] = pair_of(c, "dilation");
    return conv_transpose2d(get("x"), get("weight"), get("bias"), {sh, sw, ph, pw, oh, ow, dh, dw});
  }
  if (op == "max_pool2d" || op == "avg_pool2d") {
    auto [kh, kw] = pair_of(c, "kernel");
    auto [sh, sw] = pair_of(c, "stride");
    auto [ph, pw] = pair_of(c, "padding");
    const json& attrs = c.at("attrs");
    if (!attrs.contains("ceil_mode"))  // the positional form
      return op == "max_pool2d" ? max_pool2d(get("x"), kh, kw, sh, sw, ph, pw)
                                : avg_pool2d(get("x"), kh, kw, sh, sw, ph, pw);
    Pool2dOptions o{.kernel_h = kh,
                    .kernel_w = kw,
                    .stride_h = sh,
                    .stride_w = sw,
                    .pad_h = ph,
                    .pad_w = pw,
                    .ceil_mode = attrs.at("ceil_mode").get<bool>()};
    return op == "max_pool2d" ? max_pool2d(get("x"), o) : avg_pool2d(get("x"), o);
  }
  int64_t dim = c.at("attrs").at("dim");
  if (op == "softmax") return softmax(get("x"), dim);
  if (op == "log_softmax") return log_softmax(get("x"), dim);
  FAIL("unknown op in fixtures: ", op);
  return Tensor();
}

/// Checks got against PyTorch's want elementwise: |got - want| <= rtol |want| + atol max|want|
/// (relative, with a floor scaled to the tensor for entries that cancel to near zero).
void check_close(const std::string& what, const Tensor& got, const json& want, double rtol,
                 double atol) {
  Tensor w = json_tensor(want, DType::f64);
  REQUIRE_MESSAGE(got.shape() == w.shape(), what, ": shape ", got.shape(), " vs ", w.shape());
  std::vector<double> g = got.to_vector<double>(), e = w.to_vector<double>();
  double scale = 0;
  for (double v : e) scale = std::max(scale, std::abs(v));
  double worst = 0;  // largest |got - want| / allowed
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double ratio = std::abs(g[i] - e[i]) / (rtol * std::abs(e[i]) + atol * scale + 1e-300);
    if (ratio > worst) {
      worst = ratio;
      at = i;
    }
  }
  CHECK_MESSAGE(worst <= 1, what, ": element ", at, " is ", (g.empty() ? 0 : g[at]),
                " vs PyTorch's ", (e.empty() ? 0 : e[at]), " (", worst, " times the tolerance)");
}

void check_case(const json& c, DType dt, double rtol, double atol) {
  std::string label = c.at("op").get<std::string>() + "/" + c.at("name").get<std::string>() +
                      (dt == DType::f32 ? " (f32)" : " (f64)");
  std::map<std::string, Tensor> in;
  Tensors sources;
  std::vector<std::string> names;
  GradientTape tape;
  for (auto& [name, value] : c.at("inputs").items()) {
    Tensor t = json_tensor(value, dt);
    tape.watch(t);
    in[name] = t;
    sources.push_back(t);
    names.push_back(name);
  }
  Tensor y = run(c, in);
  check_close(label + " output", y, c.at("output"), rtol, atol);
  // d sum(y * R) / d input = the vjp of R
  Tensors grads = tape.gradient(y, sources, {.output_gradient = json_tensor(c.at("R"), dt)});
  for (size_t k = 0; k < names.size(); ++k)
    check_close(label + " d/d" + names[k], grads[k], c.at("grads").at(names[k]), rtol, atol);
}

}  // namespace

TEST_CASE("golden: PyTorch forward and backward (f64)") {
  // PyTorch computed in f64 too: only summation order differs, so agreement is to ~1e-15 of
  // the tensor's scale.
  const json& doc = fixtures();
  REQUIRE(doc.at("cases").size() >= 19);
  for (const json& c : doc.at("cases")) check_case(c, DType::f64, 1e-10, 1e-12);
}

TEST_CASE("golden: PyTorch forward and backward (f32)") {
  // NOTE: here encore computes in f32 from the same inputs while the reference is f64: each
  // value is a sum of up to ~50 products, each rounded at 2^-24 (~6e-8), so agreement is to
  // ~1e-6 of the tensor's scale, not 1e-10; entries that cancel are only good to that scale.
  for (const json& c : fixtures().at("cases")) check_case(c, DType::f32, 1e-4, 1e-5);
}

TEST_CASE("golden: pooling with ceil_mode, PyTorch forward and backward (f64 and f32)") {
  const json& doc = golden("pool_fixtures.json");
  REQUIRE(doc.at("cases").size() >= 8);
  for (const json& c : doc.at("cases")) {
    REQUIRE(c.at("attrs").at("ceil_mode").get<bool>());
    check_case(c, DType::f64, 1e-10, 1e-12);
    check_case(c, DType::f32, 1e-4, 1e-5);
  }
}

TEST_CASE("golden: the fixtures exercise what they claim") {
  // Guards against a regenerated file silently dropping a variant.
  std::map<std::string, int> count;
  bool output_padding_past_stride = false;
  for (const json& c : fixtures().at("cases")) {
    ++count[c.at("op").get<std::string>()];
    if (c.at("op") == "conv_transpose2d" &&
        c.at("attrs").at("output_padding").at(0) >= c.at("attrs").at("stride").at(0))
      output_padding_past_stride = true;
  }
  CHECK(count["conv2d"] >= 4);
  CHECK(count["conv_transpose2d"] >= 3);
  CHECK(count["max_pool2d"] >= 2);
  CHECK(count["avg_pool2d"] >= 2);
  CHECK(count["softmax"] >= 1);
  CHECK(count["log_softmax"] >= 1);
  CHECK(output_padding_past_stride);
}
