// Reductions: forward values against naive loops, gradchecks of every reduction over several
// dim sets (negative, unsorted, all, keepdim), non-contiguous inputs, ties for max/min,
// second order, sum_to (the tape's unbroadcast) and argmax.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_grad;
using encore::testing::check_gradgrad;
using encore::testing::error_of;

namespace {

Generator& gen() {
  static Generator g(777);
  return g;
}
Tensor uniform(const Shape& s, double lo = -1, double hi = 1) {
  return rand(s, gen(), DType::f64, lo, hi);
}
std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
std::string dims_text(const std::vector<int64_t>& dims, bool keepdim) {
  std::ostringstream os;
  os << "{";
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? "," : "") << dims[i];
  os << (keepdim ? "} keepdim" : "}");
  return os.str();
}

using Reduction = std::function<Tensor(const Tensor&, const std::vector<int64_t>&, bool)>;
struct ReduceCase {
  const char* name;
  Reduction f;
};
std::vector<ReduceCase> reduce_cases() {
  return {
      {"sum", [](auto& x, auto& d, bool k) { return sum(x, d, k); }},
      {"mean", [](auto& x, auto& d, bool k) { return mean(x, d, k); }},
      {"max", [](auto& x, auto& d, bool k) { return max(x, d, k); }},
      {"min", [](auto& x, auto& d, bool k) { return min(x, d, k); }},
      {"var", [](auto& x, auto& d, bool k) { return var(x, d, 1, k); }},
      {"var(correction 0)", [](auto& x, auto& d, bool k) { return var(x, d, 0, k); }},
      {"logsumexp", [](auto& x, auto& d, bool k) { return logsumexp(x, d, k); }},
  };
}

// Dim sets over a (2, 3, 4) input: all (empty), one, negative, several, unsorted.
const std::vector<std::vector<int64_t>> kDimSets = {{}, {0}, {1}, {-1}, {0, 2}, {2, 0}, {0, 1, 2}};

// Naive reference over a (2, 3, 4) tensor reducing dim 1: f maps the 3 values to one.
std::vector<double> reduce_dim1(const std::vector<double>& x,
                                const std::function<double(const std::vector<double>&)>& f) {
  std::vector<double> out;
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      std::vector<double> v;
      for (int j = 0; j < 3; ++j) v.push_back(x[(i * 3 + j) * 4 + k]);
      out.push_back(f(v));
    }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Forward values

TEST_CASE("reduce: forward values over one dim match naive loops") {
  Tensor x = uniform({2, 3, 4}, -2, 2);
  std::vector<double> xv = values(x);
  auto mean_of = [](const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e;
    return s / v.size();
  };
  auto var_of = [&](const std::vector<double>& v, int correction) {
    double m = mean_of(v), s = 0;
    for (double e : v) s += (e - m) * (e - m);
    return s / (v.size() - correction);
  };
  auto check_all = [](const Tensor& y, const std::vector<double>& ref) {
    std::vector<double> yv = values(y);
    REQUIRE(yv.size() == ref.size());
    for (size_t k = 0; k < ref.size(); ++k) CHECK(yv[k] == doctest::Approx(ref[k]).epsilon(1e-13));
  };
  check_all(sum(x, {1}), reduce_dim1(xv, [&](auto& v) { return mean_of(v) * 3; }));
  check_all(mean(x, {1}), reduce_dim1(xv, mean_of));
  check_all(max(x, {1}), reduce_dim1(xv, [](auto& v) { return std::max({v[0], v[1], v[2]}); }));
  check_all(min(x, {-2}), reduce_dim1(xv, [](auto& v) { return std::min({v[0], v[1], v[2]}); }));
  check_all(var(x, {1}), reduce_dim1(xv, [&](auto& v) { return var_of(v, 1); }));
  check_all(var(x, {1}, 0), reduce_dim1(xv, [&](auto& v) { return var_of(v, 0); }));
  check_all(logsumexp(x, {1}), reduce_dim1(xv, [](auto& v) {
              return std::log(std::exp(v[0]) + std::exp(v[1]) + std::exp(v[2]));
            }));
  CHECK(sum(x, {1}).shape() == Shape{2, 4});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x).shape() == Shape{});
  CHECK(sum(x).item() == doctest::Approx(mean_of(xv) * 24));
  CHECK(mean(x, {0, 2}, true).shape() == Shape{1, 3, 1});
}

TEST_CASE("reduce: softmax and log_softmax forward values, stable for large inputs") {
  Tensor x = uniform({2, 3, 4}, -3, 3);
  std::vector<double> xv = values(x);
  // Along dim 1 of (2, 3, 4).
  std::vector<double> y = values(softmax(x, 1)), ly = values(log_softmax(x, -2));
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      double z = 0;
      for (int j = 0; j < 3; ++j) z += std::exp(xv[(i * 3 + j) * 4 + k]);
      for (int j = 0; j < 3; ++j) {
        int at = (i * 3 + j) * 4 + k;
        CHECK(y[at] == doctest::Approx(std::exp(xv[at]) / z).epsilon(1e-13));
        CHECK(ly[at] == doctest::Approx(xv[at] - std::log(z)).epsilon(1e-13));
      }
    }
  Tensor big = tensor({1000, 1000, -1000}, DType::f64);
  std::vector<double> sb = values(softmax(big));
  CHECK(sb[0] == doctest::Approx(0.5));
  CHECK(sb[2] == 0.0);
  CHECK(values(log_softmax(big))[0] == doctest::Approx(-std::log(2.0)));
  CHECK(logsumexp(big).item() == doctest::Approx(1000 + std::log(2.0)));
}

TEST_CASE("reduce: sum_to and argmax values") {
  Tensor x = reshape(arange(0, 24, 1, DType::f64), {2, 3, 4});
  CHECK(sum_to(x, {4}).shape() == Shape{4});
  CHECK(values(sum_to(x, {4})) == std::vector<double>{60, 66, 72, 78});
  CHECK(values(sum_to(x, {3, 1})) == std::vector<double>{60, 92, 124});
  CHECK(values(sum_to(x, {})) == std::vector<double>{276});
  CHECK(sum_to(x, {2, 3, 4}).same(x));  // nothing to sum: the same handle, no copy
  Tensor a = tensor({1, 5, 5, 2, 7, 0}, DType::f64);
  Tensor m = raw::reshape(a, {2, 3});
  GradientTape tape;
  tape.watch(m);
  size_t before = tape.size();
  Tensor am = argmax(m, 1);
  CHECK(am.dtype() == DType::i64);
  CHECK(values(am) == std::vector<double>{1, 1});  // the first of tied maxima
  CHECK(values(argmax(m, 0, true)) == std::vector<double>{1, 1, 0});
  CHECK(argmax(m, 0, true).shape() == Shape{1, 3});
  CHECK(tape.size() == before);
}

// ---------------------------------------------------------------------------------------------
// First order

TEST_CASE("reduce: gradcheck of sum, mean, max, min, var, logsumexp over dim sets") {
  for (const ReduceCase& c : reduce_cases())
    for (const auto& dims : kDimSets)
      for (bool keepdim : {false, true}) {
        GradcheckFn fn = [&](const Tensors& x) { return c.f(x[0], dims, keepdim); };
        check_grad(std::string(c.name) + " (2,3,4) " + dims_text(dims, keepdim), fn,
                   {uniform({2, 3, 4})});
      }
}

TEST_CASE("reduce: gradcheck of reductions on 1-d, 0-d and non-contiguous inputs") {
  for (const ReduceCase& c : reduce_cases()) {
    std::string name = c.name;
    check_grad(name + " (5)", [&](const Tensors& x) { return c.f(x[0], {}, false); },
               {uniform({5})});
    check_grad(name + " (5) dim 0 keepdim", [&](const Tensors& x) { return c.f(x[0], {0}, true); },
               {uniform({5})});
    if (name.rfind("var", 0) != 0)  // the variance of one element divides by n - 1 = 0
      check_grad(name + " 0-d", [&](const Tensors& x) { return c.f(x[0], {}, false); },
                 {uniform({})});
    check_grad(name + " transposed, dim 0",
               [&](const Tensors& x) { return c.f(transpose(x[0], 0, 1), {0}, false); },
               {uniform({3, 4})});
    check_grad(name + " expanded, dim -1",
               [&](const Tensors& x) {
                 return c.f(expand(x[0], {2, 3, 4}), {-1}, false);
               },
               {uniform({3, 1})});
    check_grad(name + " composed with a broadcast op",
               [&](const Tensors& x) { return c.f(x[0] * x[1], {0}, false) * x[1]; },
               {uniform({3, 4}), uniform({4})});
  }
}

TEST_CASE("reduce: max and min share the gradient equally among ties") {
  Tensor x = tensor({1, 3, 3, 2, 5, 5, 5, 0}, DType::f64);
  Tensor m = raw::reshape(x, {2, 4});
  GradientTape tape(true);
  tape.watch(m);
  // Two tied maxima in row 0, three in row 1.
  std::vector<double> g = values(tape.gradient(sum(max(m, {1})), m));
  CHECK(g[0] == 0);
  CHECK(g[1] == 0.5);
  CHECK(g[2] == 0.5);
  CHECK(g[3] == 0);
  for (int k = 4; k < 7; ++k) CHECK(g[k] == doctest::Approx(1.0 / 3));
  CHECK(g[7] == 0);
  // Over everything: the three 5s share.
  std::vector<double> ga = values(tape.gradient(max(m), m));
  CHECK(ga == std::vector<double>{0, 0, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
  std::vector<double> gmin = values(tape.gradient(sum(min(m, {0})), m));
  CHECK(gmin == std::vector<double>{1, 1, 1, 0, 0, 0, 0, 1});
  // A two-way tie is where central differences also give 1/2: gradcheck agrees.
  check_grad("max with a two-way tie", [](const Tensors& x) { return max(x[0], {1}); },
             {raw::reshape(tensor({1, 3, 3, 2, 0, 4, 1, 4}, DType::f64), {2, 4})});
}

TEST_CASE("reduce: gradcheck of softmax and log_softmax along each dim") {
  for (int64_t dim : {0, 1, 2, -1}) {
    check_grad("softmax dim " + std::to_string(dim),
               [&](const Tensors& x) { return softmax(x[0], dim); }, {uniform({2, 3, 4}, -2, 2)});
    check_grad("log_softmax dim " + std::to_string(dim),
               [&](const Tensors& x) { return log_softmax(x[0], dim); },
               {uniform({2, 3, 4}, -2, 2)});
  }
  check_grad("softmax transposed", [](const Tensors& x) { return softmax(transpose(x[0], 0, 1)); },
             {uniform({4, 3})});
  check_grad("log_softmax transposed",
             [](const Tensors& x) { return log_softmax(transpose(x[0], 0, 1), 0); },
             {uniform({4, 3})});
  check_grad("softmax of a vector", [](const Tensors& x) { return softmax(x[0]); }, {uniform({5})});
}

TEST_CASE("reduce: gradcheck of sum_to") {
  const std::vector<std::pair<Shape, Shape>> cases = {{{2, 3, 4}, {4}},       {{2, 3, 4}, {3, 1}},
                                                      {{2, 3, 4}, {1, 1, 4}}, {{2, 3, 4}, {}},
                                                      {{2, 3, 4}, {2, 1, 4}}, {{3, 4}, {3, 4}}};
  for (const auto& [from, to_binding] : cases) {
    const Shape& to = to_binding;  // clang 14 cannot capture a structured binding
    check_grad("sum_to " + to_string(from) + " -> " + to_string(to),
               [&](const Tensors& x) { return sum_to(x[0], to); }, {uniform(from)});
  }
  check_grad("sum_to of a transposed view",
             [](const Tensors& x) {
               return sum_to(transpose(x[0], 0, 1), {1, 3});
             },
             {uniform({3, 4})});
}

TEST_CASE("reduce: vjps return the input's shape for every keepdim setting") {
  Tensor x = uniform({2, 3, 4});
  GradientTape tape(true);
  tape.watch(x);
  for (const ReduceCase& c : reduce_cases())
    for (bool keepdim : {false, true}) {
      INFO(c.name);
      Tensor y = c.f(x, {2, 0}, keepdim);
      Tensor g = tape.gradient(y, x, {.output_gradient = ones(y.shape(), DType::f64)});
      CHECK(g.shape() == x.shape());
    }
  // sum's gradient is the output gradient broadcast back.
  Tensor y = sum(x, {1});
  Tensor v = uniform({2, 4});
  std::vector<double> g = values(tape.gradient(y, x, {.output_gradient = v})), vv = values(v);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(g[(i * 3 + j) * 4 + k] == vv[i * 4 + k]);
}

// ---------------------------------------------------------------------------------------------
// Second order

TEST_CASE("reduce: gradgradcheck of reductions and softmax") {
  for (const ReduceCase& c : reduce_cases()) {
    check_gradgrad(std::string(c.name) + " dim 1",
                   [&](const Tensors& x) { return c.f(x[0], {1}, false) * c.f(x[0], {1}, false); },
                   {uniform({2, 3, 4})});
    check_gradgrad(std::string(c.name) + " all, keepdim",
                   [&](const Tensors& x) { return exp(c.f(x[0], {}, true) * x[0]); },
                   {uniform({3, 2})});
  }
  for (int64_t dim : {0, -1}) {
    check_gradgrad("softmax dim " + std::to_string(dim),
                   [&](const Tensors& x) { return softmax(x[0], dim); }, {uniform({3, 4})});
    check_gradgrad("log_softmax dim " + std::to_string(dim),
                   [&](const Tensors& x) { return log_softmax(x[0], dim); }, {uniform({3, 4})});
  }
  check_gradgrad("sum_to",
                 [](const Tensors& x) {
                   return square(sum_to(x[0] * x[0], {3, 1}));
                 },
                 {uniform({2, 3, 4})});
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("reduce: errors name the op and the shape") {
  Tensor x = zeros({2, 3});
  std::string msg = error_of([&] { sum(x, {2}); });
  CHECK(msg.rfind("sum", 0) == 0);
  msg = error_of([&] { mean(x, {0, 0}); });
  CHECK(msg.rfind("mean", 0) == 0);
  CHECK(error_of([&] { softmax(x, 3); }).rfind("softmax", 0) == 0);
  msg = error_of([&] { sum_to(x, {4}); });
  CHECK(msg.rfind("sum_to", 0) == 0);
  CHECK(msg.find("[2, 3]") != std::string::npos);
}
