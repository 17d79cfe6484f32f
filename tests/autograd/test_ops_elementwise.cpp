// Elementwise ops: forward values against naive loops, first-order gradchecks of every op
// (broadcast, scalar and non-contiguous operands), second-order gradgradchecks, the
// conventions at kinks and ties, dtypes, saved-tensor version checks and error messages.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
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
  static Generator g(20240611);
  return g;
}
Tensor uniform(const Shape& s, double lo = -1, double hi = 1) {
  return rand(s, gen(), DType::f64, lo, hi);
}
// Values with |x| in [lo, hi] and random signs: kept away from the kink at 0.
Tensor away_from_zero(const Shape& s, double lo = 0.2, double hi = 1.0) {
  NoGrad no_grad;
  return uniform(s, lo, hi) * (bernoulli(s, 0.5, gen(), DType::f64) * 2.0 - 1.0);
}
std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;
struct BinaryCase {
  const char* name;
  Binary f;
  double (*ref)(double, double);
  // Operand generators: for div the divisor avoids 0, for pow the base is positive.
  std::function<Tensor(const Shape&)> make_a, make_b;
};

std::vector<BinaryCase> binary_cases() {
  auto any = [](const Shape& s) { return uniform(s); };
  auto nonzero = [](const Shape& s) { return away_from_zero(s, 0.5, 1.5); };
  auto positive = [](const Shape& s) { return uniform(s, 0.5, 2.0); };
  return {
      {"add", [](auto& a, auto& b) { return add(a, b); }, [](double a, double b) { return a + b; },
       any, any},
      {"sub", [](auto& a, auto& b) { return sub(a, b); }, [](double a, double b) { return a - b; },
       any, any},
      {"mul", [](auto& a, auto& b) { return mul(a, b); }, [](double a, double b) { return a * b; },
       any, any},
      {"div", [](auto& a, auto& b) { return div(a, b); }, [](double a, double b) { return a / b; },
       any, nonzero},
      {"pow", [](auto& a, auto& b) { return pow(a, b); },
       [](double a, double b) { return std::pow(a, b); }, positive, any},
      {"maximum", [](auto& a, auto& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }, any, any},
      {"minimum", [](auto& a, auto& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }, any, any},
      {"operator+", [](auto& a, auto& b) { return a + b; },
       [](double a, double b) { return a + b; }, any, any},
      {"operator-", [](auto& a, auto& b) { return a - b; },
       [](double a, double b) { return a - b; }, any, any},
      {"operator*", [](auto& a, auto& b) { return a * b; },
       [](double a, double b) { return a * b; }, any, any},
      {"operator/", [](auto& a, auto& b) { return a / b; },
       [](double a, double b) { return a / b; }, any, nonzero},
  };
}

// Shape pairs that exercise broadcasting: equal, outer (3,1)+(1,4), trailing (2,3,4)*(4),
// a 0-d operand, and a missing leading dim with size-1 dims on both sides.
const std::vector<std::pair<Shape, Shape>> kBinaryShapes = {
    {{3, 4}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {4}}, {{}, {2, 3}}, {{2, 1, 3}, {4, 1}}};

using Unary = std::function<Tensor(const Tensor&)>;
struct UnaryCase {
  const char* name;
  Unary f;
  std::function<double(double)> ref;
  std::function<Tensor(const Shape&)> make;  // inputs inside the op's smooth domain
};

std::vector<UnaryCase> unary_cases() {
  auto any = [](const Shape& s) { return uniform(s, -2, 2); };
  auto away = [](const Shape& s) { return away_from_zero(s); };
  auto positive = [](const Shape& s) { return uniform(s, 0.3, 2.0); };
  auto sigm = [](double v) { return 1 / (1 + std::exp(-v)); };
  return {
      {"neg", [](auto& x) { return neg(x); }, [](double v) { return -v; }, any},
      {"operator-", [](auto& x) { return -x; }, [](double v) { return -v; }, any},
      {"abs", [](auto& x) { return abs(x); }, [](double v) { return std::abs(v); }, away},
      {"exp", [](auto& x) { return exp(x); }, [](double v) { return std::exp(v); }, any},
      {"log", [](auto& x) { return log(x); }, [](double v) { return std::log(v); }, positive},
      {"log1p", [](auto& x) { return log1p(x); }, [](double v) { return std::log1p(v); },
       [](const Shape& s) { return uniform(s, -0.7, 2.0); }},
      {"sqrt", [](auto& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, positive},
      {"rsqrt", [](auto& x) { return rsqrt(x); }, [](double v) { return 1 / std::sqrt(v); },
       positive},
      {"square", [](auto& x) { return square(x); }, [](double v) { return v * v; }, any},
      {"tanh", [](auto& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, any},
      {"sigmoid", [](auto& x) { return sigmoid(x); }, sigm, any},
      {"relu", [](auto& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }, away},
      {"leaky_relu", [](auto& x) { return leaky_relu(x); },
       [](double v) { return v > 0 ? v : 0.01 * v; }, away},
      {"leaky_relu(0.2)", [](auto& x) { return leaky_relu(x, 0.2); },
       [](double v) { return v > 0 ? v : 0.2 * v; }, away},
      {"elu", [](auto& x) { return elu(x); }, [](double v) { return v > 0 ? v : std::exp(v) - 1; },
       away},
      {"elu(0.5)", [](auto& x) { return elu(x, 0.5); },
       [](double v) { return v > 0 ? v : 0.5 * (std::exp(v) - 1); }, away},
      {"softplus", [](auto& x) { return softplus(x); },
       [](double v) { return std::log1p(std::exp(v)); },
       [](const Shape& s) { return uniform(s, -5, 5); }},
      {"pow(x, 2)", [](auto& x) { return pow(x, 2.0); }, [](double v) { return v * v; }, any},
      {"pow(x, 3)", [](auto& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, any},
      {"pow(x, 0.5)", [](auto& x) { return pow(x, 0.5); }, [](double v) { return std::sqrt(v); },
       positive},
      {"pow(x, -1.5)", [](auto& x) { return pow(x, -1.5); },
       [](double v) { return std::pow(v, -1.5); }, positive},
      {"pow(x, 0)", [](auto& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, any},
      {"x + 2.5", [](auto& x) { return x + 2.5; }, [](double v) { return v + 2.5; }, any},
      {"2.5 + x", [](auto& x) { return 2.5 + x; }, [](double v) { return 2.5 + v; }, any},
      {"x - 1.5", [](auto& x) { return x - 1.5; }, [](double v) { return v - 1.5; }, any},
      {"1.5 - x", [](auto& x) { return 1.5 - x; }, [](double v) { return 1.5 - v; }, any},
      {"x * 3", [](auto& x) { return x * 3.0; }, [](double v) { return v * 3; }, any},
      {"3 * x", [](auto& x) { return 3.0 * x; }, [](double v) { return 3 * v; }, any},
      {"x / 4", [](auto& x) { return x / 4.0; }, [](double v) { return v / 4; }, any},
      {"4 / x", [](auto& x) { return 4.0 / x; }, [](double v) { return 4 / v; }, away},
      {"1 / x", [](auto& x) { return 1.0 / x; }, [](double v) { return 1 / v; }, away},
      {"clamp", [](auto& x) { return clamp(x, -0.5, 0.5); },
       [](double v) { return std::min(std::max(v, -0.5), 0.5); },
       // |x| in [0.05, 0.45] or [0.55, 1]: away from both bounds
       [](const Shape& s) {
         NoGrad no_grad;
         Tensor m = away_from_zero(s, 0.05, 0.45);
         return m + where(gt(m, 0.0), scalar(0.5, DType::f64), scalar(-0.5, DType::f64)) *
                        bernoulli(s, 0.5, gen(), DType::f64);
       }},
      {"clone", [](auto& x) { return clone(x); }, [](double v) { return v; }, any},
      {"contiguous", [](auto& x) { return contiguous(x); }, [](double v) { return v; }, any},
  };
}

const std::vector<Shape> kUnaryShapes = {{}, {5}, {2, 3}, {2, 3, 2}};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Forward values

TEST_CASE("elementwise: binary forward values broadcast like naive loops") {
  for (const BinaryCase& c : binary_cases()) {
    INFO(c.name);
    Tensor a = c.make_a({3, 1}), b = c.make_b({1, 4});
    std::vector<double> av = values(a), bv = values(b), y = values(c.f(a, b));
    REQUIRE(c.f(a, b).shape() == Shape{3, 4});
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        CHECK(y[i * 4 + j] == doctest::Approx(c.ref(av[i], bv[j])).epsilon(1e-14));
    // (2, 3, 4) op (4): the second operand repeats along the leading dims.
    Tensor a3 = c.make_a({2, 3, 4}), b1 = c.make_b({4});
    std::vector<double> a3v = values(a3), b1v = values(b1), y3 = values(c.f(a3, b1));
    for (int k = 0; k < 24; ++k)
      CHECK(y3[k] == doctest::Approx(c.ref(a3v[k], b1v[k % 4])).epsilon(1e-14));
  }
}

TEST_CASE("elementwise: unary forward values match std:: on contiguous and strided inputs") {
  for (const UnaryCase& c : unary_cases()) {
    INFO(c.name);
    Tensor x = c.make({3, 4});
    std::vector<double> xv = values(x), y = values(c.f(x));
    for (size_t k = 0; k < xv.size(); ++k)
      CHECK(y[k] == doctest::Approx(c.ref(xv[k])).epsilon(1e-14));
    // A transposed view: element (j, i) of the result is f(x[i][j]).
    Tensor yt = c.f(raw::transpose(x, 0, 1));
    REQUIRE(yt.shape() == Shape{4, 3});
    std::vector<double> ytv = values(yt);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        CHECK(ytv[j * 3 + i] == doctest::Approx(c.ref(xv[i * 4 + j])).epsilon(1e-14));
  }
}

TEST_CASE("elementwise: softplus is stable for large |x|, clamp and where give exact values") {
  Tensor x = tensor({-800, -30, 0, 30, 800}, DType::f64);
  std::vector<double> sp = values(softplus(x));
  CHECK(sp[0] == doctest::Approx(0.0));
  CHECK(sp[1] == doctest::Approx(std::exp(-30.0)).epsilon(1e-10));
  CHECK(sp[2] == doctest::Approx(std::log(2.0)));
  CHECK(sp[3] == doctest::Approx(30.0));
  CHECK(sp[4] == doctest::Approx(800.0));
  CHECK(values(clamp(tensor({-2, -1, 0, 1, 2}, DType::f64), -1, 1)) ==
        std::vector<double>{-1, -1, 0, 1, 1});
  Tensor cond = tensor({1, 0, 1}, DType::i64);
  CHECK(values(where(cond, tensor({1, 2, 3}), scalar(-1.0))) == std::vector<double>{1, -1, 3});
}

TEST_CASE("elementwise: comparisons give 1/0 and record nothing") {
  Tensor a = tensor({1, 2, 3}, DType::f64), b = tensor({3, 2, 1}, DType::f64);
  GradientTape tape;
  tape.watch(a);
  tape.watch(b);
  size_t before = tape.size();
  CHECK(values(eq(a, b)) == std::vector<double>{0, 1, 0});
  CHECK(values(ne(a, b)) == std::vector<double>{1, 0, 1});
  CHECK(values(lt(a, b)) == std::vector<double>{1, 0, 0});
  CHECK(values(le(a, b)) == std::vector<double>{1, 1, 0});
  CHECK(values(gt(a, b)) == std::vector<double>{0, 0, 1});
  CHECK(values(ge(a, b)) == std::vector<double>{0, 1, 1});
  CHECK(values(gt(a, 1.5)) == std::vector<double>{0, 1, 1});
  CHECK(values(lt(a, 1.5)) == std::vector<double>{1, 0, 0});
  CHECK(eq(a, b).dtype() == DType::f64);
  Tensor s = stop_gradient(a);
  CHECK(values(s) == values(a));
  CHECK(tape.size() == before);
  CHECK_FALSE(tape.is_watched(gt(a, b)));
  CHECK_FALSE(tape.is_watched(s));
}

// ---------------------------------------------------------------------------------------------
// First-order gradchecks

TEST_CASE("elementwise: gradcheck of binary ops, with broadcasting") {
  for (const BinaryCase& c : binary_cases())
    for (const auto& [sa, sb] : kBinaryShapes) {
      std::string what = std::string(c.name) + " " + to_string(sa) + ", " + to_string(sb);
      GradcheckFn fn = [&](const Tensors& x) { return c.f(x[0], x[1]); };
      check_grad(what, fn, {c.make_a(sa), c.make_b(sb)});
      // Only one operand differentiated (the other constant): NeedsGrad skips its gradient.
      check_grad(what + " (b constant)", fn, {c.make_a(sa), c.make_b(sb)},
                 {.constant_inputs = {1}});
    }
}

TEST_CASE("elementwise: gradcheck of binary ops on non-contiguous operands") {
  for (const BinaryCase& c : binary_cases()) {
    // a^T: (4, 3) viewed from (3, 4); b expanded from (4, 1) to (4, 3) (stride 0).
    GradcheckFn fn = [&](const Tensors& x) {
      return c.f(transpose(x[0], 0, 1), expand(x[1], {4, 3}));
    };
    check_grad(std::string(c.name) + " transposed/expanded", fn,
               {c.make_a({3, 4}), c.make_b({4, 1})});
  }
}

TEST_CASE("elementwise: gradcheck of a tensor used as both operands") {
  check_grad("x * x", [](const Tensors& x) { return x[0] * x[0]; }, {uniform({2, 3})});
  check_grad("x / x", [](const Tensors& x) { return x[0] / x[0]; }, {away_from_zero({4})});
  check_grad("pow(x, x)", [](const Tensors& x) { return pow(x[0], x[0]); }, {uniform({4}, 0.5, 2)});
}

TEST_CASE("elementwise: gradcheck of unary ops, activations and scalar operators") {
  for (const UnaryCase& c : unary_cases()) {
    GradcheckFn fn = [&](const Tensors& x) { return c.f(x[0]); };
    for (const Shape& s : kUnaryShapes)
      check_grad(std::string(c.name) + " " + to_string(s), fn, {c.make(s)});
    // Non-contiguous inputs: a transposed view and an expanded (stride 0) one.
    check_grad(std::string(c.name) + " transposed",
               [&](const Tensors& x) { return c.f(transpose(x[0], 0, 1)); }, {c.make({3, 4})});
    check_grad(std::string(c.name) + " expanded",
               [&](const Tensors& x) {
                 return c.f(expand(x[0], {2, 3, 4}));
               },
               {c.make({3, 1})});
  }
}

TEST_CASE("elementwise: gradcheck of where, with broadcasting over cond, a and b") {
  Tensor cond = bernoulli({3, 4}, 0.5, gen(), DType::f64);
  GradcheckFn fn = [](const Tensors& x) { return where(x[0], x[1], x[2]); };
  check_grad("where (3,4) (3,1) (4)", fn, {cond, uniform({3, 1}), uniform({4})},
             {.constant_inputs = {0}});
  check_grad("where (3,4) (3,4) 0-d", fn, {cond, uniform({3, 4}), uniform({})},
             {.constant_inputs = {0}});
  Tensor cond_i64 = tensor({1, 0, 0, 1}, DType::i64);
  check_grad("where i64 cond", fn, {cond_i64, uniform({4}), uniform({2, 4})});
  check_grad("where transposed",
             [&](const Tensors& x) { return where(cond, transpose(x[0], 0, 1), x[1]); },
             {uniform({4, 3}), uniform({3, 4})});
}

TEST_CASE("elementwise: gradcheck of cast through f32 and back") {
  GradcheckFn fn = [](const Tensors& x) {
    return cast(square(cast(x[0], DType::f32)), DType::f64);
  };
  // f32 rounding (~1e-7) over a 1e-3 step: a looser tolerance.
  check_grad("cast f64->f32->f64", fn, {uniform({2, 3})},
             {.eps = 1e-3, .atol = 2e-3, .rtol = 1e-2});
  check_grad("cast to the same dtype", [](const Tensors& x) { return cast(x[0], DType::f64); },
             {uniform({3})});
}

// ---------------------------------------------------------------------------------------------
// Second order

TEST_CASE("elementwise: gradgradcheck of arithmetic and smooth unary ops") {
  for (const BinaryCase& c : binary_cases()) {
    if (std::string(c.name) == "maximum" || std::string(c.name) == "minimum") continue;
    for (const auto& [sa, sb] : {std::pair<Shape, Shape>{{2, 3}, {2, 3}}, {{3, 1}, {1, 2}}})
      check_gradgrad(std::string(c.name) + " " + to_string(sa) + ", " + to_string(sb),
                     [&](const Tensors& x) { return c.f(x[0], x[1]); },
                     {c.make_a(sa), c.make_b(sb)});
  }
  // maximum/minimum: the mask is constant, the second derivative zero (still checked).
  check_gradgrad("maximum", [](const Tensors& x) { return maximum(x[0], x[1]) * x[0]; },
                 {uniform({4}), uniform({4})});
  const std::vector<std::string> smooth = {
      "exp",          "log",     "log1p",    "sqrt",       "rsqrt",     "square",
      "tanh",         "sigmoid", "softplus", "elu",        "pow(x, 3)", "pow(x, 0.5)",
      "pow(x, -1.5)", "x + 2.5", "1.5 - x",  "x * 3",      "x / 4",     "4 / x",
      "neg",          "abs",     "relu",     "leaky_relu", "clamp",     "clone"};
  for (const UnaryCase& c : unary_cases()) {
    if (std::find(smooth.begin(), smooth.end(), c.name) == smooth.end()) continue;
    check_gradgrad(c.name, [&](const Tensors& x) { return c.f(x[0]); }, {c.make({2, 3})});
  }
  check_gradgrad("where", [](const Tensors& x) { return where(gt(x[0], 0.0), x[0] * x[1], x[1]); },
                 {away_from_zero({5}), uniform({5})});
  check_gradgrad("cast",
                 [](const Tensors& x) { return cast(cast(x[0], DType::f32), DType::f64) * x[0]; },
                 {uniform({3})}, {.eps = 1e-3, .atol = 2e-3, .rtol = 1e-2});
}

// ---------------------------------------------------------------------------------------------
// Conventions at kinks and ties

TEST_CASE("elementwise: gradients at kinks and ties") {
  Tensor z = tensor({-1, 0, 2}, DType::f64);
  auto grad_of = [](const Tensor& x, auto&& f) {
    GradientTape tape;
    tape.watch(x);
    return values(tape.gradient(sum(f(x)), x));
  };
  CHECK(grad_of(z, [](auto& x) { return relu(x); }) == std::vector<double>{0, 0, 1});
  CHECK(grad_of(z, [](auto& x) { return abs(x); }) == std::vector<double>{-1, 0, 1});
  CHECK(grad_of(z, [](auto& x) { return leaky_relu(x, 0.1); }) == std::vector<double>{0.1, 0.1, 1});
  // clamp: 1 strictly inside, 0 on the bounds and outside.
  CHECK(grad_of(tensor({-2, -1, 0, 1, 2}, DType::f64), [](auto& x) { return clamp(x, -1, 1); }) ==
        std::vector<double>{0, 0, 1, 0, 0});
  // maximum/minimum split ties equally; maximum(x, x) therefore has gradient 1.
  CHECK(grad_of(z, [](auto& x) { return maximum(x, x); }) == std::vector<double>{1, 1, 1});
  Tensor a = tensor({1, 2, 3}, DType::f64), b = tensor({3, 2, 1}, DType::f64);
  GradientTape tape(true);
  tape.watch(a);
  tape.watch(b);
  Tensors gmax = tape.gradient(sum(maximum(a, b)), {a, b});
  CHECK(values(gmax[0]) == std::vector<double>{0, 0.5, 1});
  CHECK(values(gmax[1]) == std::vector<double>{1, 0.5, 0});
  Tensors gmin = tape.gradient(sum(minimum(a, b)), {a, b});
  CHECK(values(gmin[0]) == std::vector<double>{1, 0.5, 0});
  CHECK(values(gmin[1]) == std::vector<double>{0, 0.5, 1});
}

TEST_CASE("elementwise: stop_gradient blocks, clone and contiguous pass gradients through") {
  Tensor x = tensor({1, 2, 3}, DType::f64);
  GradientTape tape(true);
  tape.watch(x);
  // d/dx (x * stop(x)) = stop(x) = x, not 2x.
  CHECK(values(tape.gradient(sum(x * stop_gradient(x)), x)) == std::vector<double>{1, 2, 3});
  Tensor c = clone(x);
  CHECK_FALSE(c.storage() == x.storage());
  CHECK(values(tape.gradient(sum(c * 2.0), x)) == std::vector<double>{2, 2, 2});
  CHECK(contiguous(x).same(x));
  Tensor m = reshape(arange(0, 6, 1, DType::f64), {2, 3});
  tape.watch(m);
  Tensor mt = transpose(m, 0, 1);
  Tensor mc = contiguous(mt);
  CHECK(mc.is_contiguous());
  CHECK(values(mc) == std::vector<double>{0, 3, 1, 4, 2, 5});
  // mc[j][i] = m[i][j], weighted by w[j][i] = 2j + i.
  Tensor w = raw::reshape(arange(0, 6, 1, DType::f64), {3, 2});
  CHECK(values(tape.gradient(sum(mc * w), m)) == std::vector<double>{0, 2, 4, 1, 3, 5});
}

// ---------------------------------------------------------------------------------------------
// dtypes, saved tensors, errors

TEST_CASE("elementwise: gradients come back in each input's dtype") {
  Tensor a = tensor({1, 2}, DType::f32), b = tensor({3, 4}, DType::f64);
  GradientTape tape(true);
  tape.watch(a);
  tape.watch(b);
  Tensor y = sum(a * b);
  CHECK(y.dtype() == DType::f64);
  Tensors g = tape.gradient(y, {a, b});
  CHECK(g[0].dtype() == DType::f32);
  CHECK(g[1].dtype() == DType::f64);
  CHECK(values(g[0]) == std::vector<double>{3, 4});
  CHECK(values(g[1]) == std::vector<double>{1, 2});
  Tensor c = cast(a, DType::f64);
  CHECK(c.dtype() == DType::f64);
  Tensor gc = tape.gradient(sum(c * c), a);
  CHECK(gc.dtype() == DType::f32);
  CHECK(values(gc) == std::vector<double>{2, 4});
  // Integer conversions are values only.
  CHECK(cast(tensor({1.7, -2.2}), DType::i64).dtype() == DType::i64);
}

TEST_CASE("elementwise: f32 ops give f32 values and gradients close to the f64 ones") {
  for (const UnaryCase& c : unary_cases()) {
    INFO(c.name);
    Tensor x64 = c.make({2, 3}), x32 = x64.to(DType::f32);
    GradientTape tape(true);
    tape.watch(x64);
    tape.watch(x32);
    Tensor y32 = c.f(x32);
    CHECK(y32.dtype() == DType::f32);
    Tensor g32 = tape.gradient(sum(y32), x32), g64 = tape.gradient(sum(c.f(x64)), x64);
    CHECK(g32.dtype() == DType::f32);
    std::vector<double> a = values(g32), b = values(g64);
    for (size_t k = 0; k < a.size(); ++k) CHECK(a[k] == doctest::Approx(b[k]).epsilon(1e-4));
  }
}

TEST_CASE("elementwise: an operand that needs no gradient is not differentiated") {
  // pow's gradient w.r.t. the exponent needs log(base): with a negative base and a constant
  // exponent it must not be computed (anomaly mode would catch its NaN).
  DetectAnomaly anomaly;
  Tensor a = tensor({-2, -1, 3}, DType::f64), e = tensor({2, 3, 2}, DType::f64);
  GradientTape tape;
  tape.watch(a);
  Tensor g = tape.gradient(sum(pow(a, e)), a);
  CHECK(values(g) == std::vector<double>{-4, 3, 6});
}

TEST_CASE("elementwise: modifying a saved tensor in place makes gradient() throw") {
  Tensor x = tensor({1, 2}, DType::f64);
  {
    GradientTape tape;
    tape.watch(x);
    Tensor y = exp(x);  // saves its output
    Tensor loss = sum(y);
    y.fill_(0);
    CHECK(contains(error_of([&] { tape.gradient(loss, x); }), "saved by 'exp'"));
  }
  {
    Tensor w = tensor({3, 4}, DType::f64);
    GradientTape tape;
    tape.watch(x);
    Tensor loss = sum(x * w);  // saves both operands
    w.fill_(1);
    CHECK(contains(error_of([&] { tape.gradient(loss, x); }), "saved by 'mul'"));
  }
}

TEST_CASE("elementwise: errors name the op and the shapes") {
  Tensor a = zeros({2, 3}), b = zeros({4});
  std::string msg = error_of([&] { add(a, b); });
  CHECK(msg.rfind("add", 0) == 0);
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[4]"));
  CHECK(error_of([&] { a* b; }).rfind("mul", 0) == 0);
  msg = error_of([&] { clamp(a, 1, -1); });
  CHECK(msg.rfind("clamp", 0) == 0);
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(error_of([&] { where(zeros({3}), a, b); }), "where"));
}

TEST_CASE("pow: the gradient at base 0 is PyTorch's 0, not NaN") {
  // a^b at a = 0: da = b a^(b-1) is 0 for b = 0 (PyTorch masks it) and for b = 2; db =
  // a^b log(a) is 0 where a = 0 and b >= 0. Expected values by hand; 8 log 2 at (2, 3).
  Tensor a = tensor({0, 0, 2}, DType::f64), b = tensor({2, 0, 3}, DType::f64);
  GradientTape tape;
  tape.watch(a);
  tape.watch(b);
  Tensors g = tape.gradient(sum(pow(a, b)), {a, b});
  CHECK(g[0].to_vector<double>() == std::vector<double>{0, 0, 12});
  std::vector<double> db = g[1].to_vector<double>();
  CHECK(db[0] == 0.0);
  CHECK(db[1] == 0.0);
  CHECK(db[2] == doctest::Approx(8 * std::log(2.0)).epsilon(1e-14));
}

TEST_CASE("pow: exponent 2 is square bitwise, forward and gradient; 0, 1, 0.5 are exact") {
  // pow(x, 2) takes square's loop, and its vjp is square's: the same bits, not just close ones.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(std::string(dtype_name(dt)));
    Tensor x = cast(rand({257}, gen(), DType::f64, -3, 3), dt);
    Tensor gx_pow, gx_square;
    Tensor y_pow, y_square;
    {
      GradientTape tape;
      tape.watch(x);
      y_pow = pow(x, 2.0);
      gx_pow = tape.gradient(sum(y_pow * x), x);  // a non-constant upstream gradient
    }
    {
      GradientTape tape;
      tape.watch(x);
      y_square = square(x);
      gx_square = tape.gradient(sum(y_square * x), x);
    }
    CHECK(y_pow.dtype() == dt);
    CHECK(gx_pow.dtype() == dt);
    CHECK(values(y_pow) == values(y_square));
    CHECK(values(gx_pow) == values(gx_square));

    // The fast exponents give what std::pow gives, special values included.
    Tensor special = tensor({nan, inf, -inf, 0.0, -0.0, 2.25, -4.0, 0.0625}, dt);
    for (double e : {0.0, 1.0, 2.0, 0.5}) {
      CAPTURE(e);
      std::vector<double> got = values(pow(special, e)), in = values(special);
      for (size_t i = 0; i < in.size(); ++i) {
        CAPTURE(in[i]);
        const double want =
            dt == DType::f32 ? double(std::pow(float(in[i]), float(e))) : std::pow(in[i], e);
        if (std::isnan(want)) {
          CHECK(std::isnan(got[i]));
        } else {
          CHECK(got[i] == want);
          CHECK(std::signbit(got[i]) == std::signbit(want));
        }
      }
    }
  }
}
