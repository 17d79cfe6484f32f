// Tests for the elementwise kernels (tensor/kernels/elementwise.cpp, copy.cpp): every unary and
// binary op against a naive loop written here, on contiguous, transposed, strided-slice and
// expanded inputs, in f32, f64 and (where supported) i64; broadcasting and its errors; dtype
// promotion; the i64 rules (floor division, wrap-around, exact scalar comparisons); in-place
// binary_, where, copy_ and fill_.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tensor/kernels/iter.h"
#include "tensor/tensor.h"
#include "tests/support/support.h"

using namespace encore;
using raw::BinaryOp;
using raw::UnaryOp;

namespace {

// Byte offset-free read of the element at row-major position i, through the strides; the
// reference side of every test (independent of the kernels under test).
int64_t offset_of(const Shape& shape, const Strides& strides, int64_t i) {
  int64_t off = 0;
  for (int d = shape.size() - 1; d >= 0; --d) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

double elem(const Tensor& t, int64_t i) {
  int64_t off = offset_of(t.shape(), t.strides(), i);
  return dispatch(t.dtype(), [&]<class T>() {
    return static_cast<double>(static_cast<const T*>(t.raw_data())[off]);
  });
}

int64_t elem_i64(const Tensor& t, int64_t i) {
  return static_cast<const int64_t*>(t.raw_data())[offset_of(t.shape(), t.strides(), i)];
}

// The element of t that position i of `out` reads under NumPy broadcasting.
double bcast_elem(const Tensor& t, const Shape& out, int64_t i) {
  int64_t off = 0;
  int lead = out.size() - t.dim();
  for (int d = out.size() - 1; d >= 0; --d) {
    int64_t idx = i % out[d];
    i /= out[d];
    if (d >= lead && t.shape()[d - lead] != 1) off += idx * t.strides()[d - lead];
  }
  return dispatch(t.dtype(), [&]<class T>() {
    return static_cast<double>(static_cast<const T*>(t.raw_data())[off]);
  });
}

/// A call that throws nothing gives "<no error>", which reads well in a failed CHECK.
std::string error_of(auto&& f) { return encore::testing::error_of(f, "<no error>"); }

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

double tol(DType dt) { return dt == DType::f32 ? 2e-6 : 1e-13; }

void check_close(double got, double want, DType dt) {
  if (std::isnan(want)) {
    CHECK(std::isnan(got));
    return;
  }
  if (std::isinf(want)) {
    CHECK(got == want);
    return;
  }
  CHECK(got == doctest::Approx(want).epsilon(tol(dt)));
}

// Four (4, 6) tensors with values in [lo, hi) and different layouts.
struct Layout {
  std::string name;
  Tensor t;
};
std::vector<Layout> layouts(DType dt, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return {
      {"contiguous", rand({4, 6}, g, dt, lo, hi)},
      {"transposed", raw::transpose(rand({6, 4}, g, dt, lo, hi), 0, 1)},
      {"sliced", raw::slice(rand({4, 13}, g, dt, lo, hi), 1, 1, 13, 2)},
      {"expanded", raw::expand(rand({4, 1}, g, dt, lo, hi), {4, 6})},
      {"permuted3d", raw::permute(rand({3, 4, 2}, g, dt, lo, hi), {1, 0, 2})},
  };
}

double ref_unary(UnaryOp op, double x, double a, double b) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::abs:
      return std::fabs(x);
    case UnaryOp::sign:
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::log1p:
      return std::log1p(x);
    case UnaryOp::expm1:
      return std::expm1(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::rsqrt:
      return 1 / std::sqrt(x);
    case UnaryOp::square:
      return x * x;
    case UnaryOp::reciprocal:
      return 1 / x;
    case UnaryOp::sin:
      return std::sin(x);
    case UnaryOp::cos:
      return std::cos(x);
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::sigmoid:
      return 1 / (1 + std::exp(-x));
    case UnaryOp::relu:
      return x > 0 ? x : 0;
    case UnaryOp::softplus:
      return std::log(1 + std::exp(x));
    case UnaryOp::leaky_relu:
      return x > 0 ? x : a * x;
    case UnaryOp::elu:
      return x > 0 ? x : a * (std::exp(x) - 1);
    case UnaryOp::clamp:
      return std::min(std::max(x, a), b);
    case UnaryOp::add_scalar:
      return x + a;
    case UnaryOp::mul_scalar:
      return x * a;
    case UnaryOp::pow_scalar:
      return std::pow(x, a);
    case UnaryOp::rpow_scalar:
      return std::pow(a, x);
    case UnaryOp::gt_scalar:
      return x > a;
    case UnaryOp::lt_scalar:
      return x < a;
    case UnaryOp::ge_scalar:
      return x >= a;
    case UnaryOp::le_scalar:
      return x <= a;
    case UnaryOp::eq_scalar:
      return x == a;
  }
  return NAN;
}

struct UnaryCase {
  UnaryOp op;
  double a = 0, b = 0;
  bool positive = false;  // needs inputs > 0
};
const std::vector<UnaryCase> kUnaryCases = {
    {UnaryOp::neg},
    {UnaryOp::abs},
    {UnaryOp::sign},
    {UnaryOp::exp},
    {UnaryOp::log, 0, 0, true},
    {UnaryOp::log1p, 0, 0, true},
    {UnaryOp::expm1},
    {UnaryOp::sqrt, 0, 0, true},
    {UnaryOp::rsqrt, 0, 0, true},
    {UnaryOp::square},
    {UnaryOp::reciprocal},
    {UnaryOp::sin},
    {UnaryOp::cos},
    {UnaryOp::tanh},
    {UnaryOp::sigmoid},
    {UnaryOp::relu},
    {UnaryOp::softplus},
    {UnaryOp::leaky_relu, 0.1},
    {UnaryOp::elu, 1.5},
    {UnaryOp::clamp, -0.5, 0.75},
    {UnaryOp::add_scalar, 2.5},
    {UnaryOp::mul_scalar, -1.5},
    {UnaryOp::pow_scalar, 1.7, 0, true},
    {UnaryOp::pow_scalar, 2},
    {UnaryOp::rpow_scalar, 2.5},
    {UnaryOp::gt_scalar, 0.25},
    {UnaryOp::lt_scalar, 0.25},
    {UnaryOp::ge_scalar, 0.25},
    {UnaryOp::le_scalar, 0.25},
    {UnaryOp::eq_scalar, 0.25},
};

double ref_binary(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::add:
      return x + y;
    case BinaryOp::sub:
      return x - y;
    case BinaryOp::mul:
      return x * y;
    case BinaryOp::div:
      return x / y;
    case BinaryOp::pow:
      return std::pow(x, y);
    case BinaryOp::maximum:
      return std::max(x, y);
    case BinaryOp::minimum:
      return std::min(x, y);
    case BinaryOp::eq:
      return x == y;
    case BinaryOp::ne:
      return x != y;
    case BinaryOp::lt:
      return x < y;
    case BinaryOp::le:
      return x <= y;
    case BinaryOp::gt:
      return x > y;
    case BinaryOp::ge:
      return x >= y;
  }
  return NAN;
}

const std::vector<BinaryOp> kBinaryOps = {
    BinaryOp::add,     BinaryOp::sub,     BinaryOp::mul, BinaryOp::div, BinaryOp::pow,
    BinaryOp::maximum, BinaryOp::minimum, BinaryOp::eq,  BinaryOp::ne,  BinaryOp::lt,
    BinaryOp::le,      BinaryOp::gt,      BinaryOp::ge};

// Checks binary(op, a, b) against the naive broadcast loop.
void check_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& want_shape) {
  Tensor out = raw::binary(op, a, b);
  REQUIRE(out.shape() == want_shape);
  CHECK(out.is_contiguous());
  CHECK(out.dtype() == raw::promote(a.dtype(), b.dtype()));
  for (int64_t i = 0; i < out.numel(); ++i)
    check_close(elem(out, i),
                ref_binary(op, bcast_elem(a, want_shape, i), bcast_elem(b, want_shape, i)),
                out.dtype());
}

}  // namespace

TEST_CASE("elementwise: every unary op matches a naive loop on every layout (f32, f64)") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const UnaryCase& c : kUnaryCases) {
      for (const Layout& l : layouts(dt, c.positive ? 0.1 : -3, 3, 7)) {
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(std::string(raw::unary_name(c.op)));
        CAPTURE(l.name);
        Tensor y = raw::unary(c.op, l.t, c.a, c.b);
        REQUIRE(y.shape() == l.t.shape());
        CHECK(y.dtype() == dt);
        CHECK(y.is_contiguous());
        // The reference applies the scalar parameters at the tensor's precision, as the kernel.
        double a = dt == DType::f32 ? double(float(c.a)) : c.a;
        double b = dt == DType::f32 ? double(float(c.b)) : c.b;
        for (int64_t i = 0; i < y.numel(); ++i)
          check_close(elem(y, i), ref_unary(c.op, elem(l.t, i), a, b), dt);
      }
    }
  }
}

TEST_CASE("elementwise: unary special values follow IEEE and stay stable") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(std::string(dtype_name(dt)));
    Tensor x = tensor({-1000, -100, -20, 0, 20, 100, 1000}, dt);
    auto s = raw::unary(UnaryOp::sigmoid, x).to_vector<double>();
    CHECK(s[0] == 0.0);
    CHECK(s[1] == doctest::Approx(std::exp(-100.0)).epsilon(1e-5));
    CHECK(s[1] > 0);
    CHECK(s[2] == doctest::Approx(1 / (1 + std::exp(20.0))).epsilon(1e-5));
    CHECK(s[3] == 0.5);
    CHECK(s[5] == 1.0);
    CHECK(s[6] == 1.0);
    auto sp = raw::unary(UnaryOp::softplus, x).to_vector<double>();
    CHECK(sp[0] == 0.0);
    CHECK(sp[1] == doctest::Approx(std::exp(-100.0)).epsilon(1e-5));
    CHECK(sp[1] > 0);  // log1p keeps the tiny value instead of rounding 1 + e^-100 to 1
    CHECK(sp[3] == doctest::Approx(std::log(2.0)));
    CHECK(sp[5] == 100.0);
    CHECK(sp[6] == 1000.0);
    for (double v : s) CHECK(std::isfinite(v));

    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    Tensor special = tensor({nan, inf, -inf, -0.0}, dt);
    auto relu = raw::unary(UnaryOp::relu, special).to_vector<double>();
    CHECK(std::isnan(relu[0]));
    CHECK(relu[1] == inf);
    CHECK(relu[2] == 0);
    auto clamp = raw::unary(UnaryOp::clamp, special, -1, 1).to_vector<double>();
    CHECK(std::isnan(clamp[0]));
    CHECK(clamp[1] == 1);
    CHECK(clamp[2] == -1);
    auto sign = raw::unary(UnaryOp::sign, special).to_vector<double>();
    CHECK(std::isnan(sign[0]));
    CHECK(sign[1] == 1);
    CHECK(sign[2] == -1);
    CHECK(sign[3] == 0);
    auto sg = raw::unary(UnaryOp::sigmoid, special).to_vector<double>();
    CHECK(std::isnan(sg[0]));
    CHECK(sg[1] == 1);
    CHECK(sg[2] == 0);
    auto lg = raw::unary(UnaryOp::log, tensor({-1, 0}, dt)).to_vector<double>();
    CHECK(std::isnan(lg[0]));
    CHECK(lg[1] == -inf);
    auto rc = raw::unary(UnaryOp::reciprocal, tensor({0}, dt)).to_vector<double>();
    CHECK(rc[0] == inf);
    auto gt = raw::unary(UnaryOp::gt_scalar, special, 0).to_vector<double>();
    CHECK(gt == std::vector<double>{0, 1, 0, 0});
    // clamp with a > b gives b, as min(max(x, a), b) says.
    CHECK(raw::unary(UnaryOp::clamp, tensor({5, -5}, dt), 2, 1).to_vector<double>() ==
          std::vector<double>{1, 1});
  }
}

TEST_CASE("elementwise: i64 unary ops are exact, the rest throw naming the op") {
  Generator g(3);
  Tensor base = randint(-50, 50, {5, 8}, g);
  for (Tensor x : {base, raw::transpose(base, 0, 1), raw::slice(base, 1, 0, 8, 3)}) {
    auto check_op = [&](UnaryOp op, double a, double b, std::function<int64_t(int64_t)> f) {
      CAPTURE(std::string(raw::unary_name(op)));
      Tensor y = raw::unary(op, x, a, b);
      REQUIRE(y.dtype() == DType::i64);
      for (int64_t i = 0; i < y.numel(); ++i) CHECK(elem_i64(y, i) == f(elem_i64(x, i)));
    };
    check_op(UnaryOp::neg, 0, 0, [](int64_t v) { return -v; });
    check_op(UnaryOp::abs, 0, 0, [](int64_t v) { return v < 0 ? -v : v; });
    check_op(UnaryOp::sign, 0, 0, [](int64_t v) { return v > 0 ? 1 : v < 0 ? -1 : 0; });
    check_op(UnaryOp::square, 0, 0, [](int64_t v) { return v * v; });
    check_op(UnaryOp::relu, 0, 0, [](int64_t v) { return v > 0 ? v : 0; });
    check_op(UnaryOp::clamp, -10, 20,
             [](int64_t v) { return std::min<int64_t>(std::max<int64_t>(v, -10), 20); });
    // Fractional bounds round inward.
    check_op(UnaryOp::clamp, -10.5, 20.5,
             [](int64_t v) { return std::min<int64_t>(std::max<int64_t>(v, -10), 20); });
    check_op(UnaryOp::add_scalar, 7, 0, [](int64_t v) { return v + 7; });
    check_op(UnaryOp::mul_scalar, -3, 0, [](int64_t v) { return v * -3; });
    check_op(UnaryOp::gt_scalar, 2.5, 0, [](int64_t v) { return v > 2.5; });
    check_op(UnaryOp::ge_scalar, 2.5, 0, [](int64_t v) { return v >= 2.5; });
    check_op(UnaryOp::lt_scalar, -2.5, 0, [](int64_t v) { return v < -2.5; });
    check_op(UnaryOp::le_scalar, 3, 0, [](int64_t v) { return v <= 3; });
    check_op(UnaryOp::eq_scalar, 3, 0, [](int64_t v) { return v == 3; });
    check_op(UnaryOp::eq_scalar, 3.5, 0, [](int64_t) { return 0; });
    check_op(UnaryOp::gt_scalar, NAN, 0, [](int64_t) { return 0; });
    check_op(UnaryOp::lt_scalar, INFINITY, 0, [](int64_t) { return 1; });
    check_op(UnaryOp::ge_scalar, 1e300, 0, [](int64_t) { return 0; });
  }
  for (UnaryOp op : {UnaryOp::exp, UnaryOp::log, UnaryOp::sqrt, UnaryOp::sigmoid, UnaryOp::tanh,
                     UnaryOp::pow_scalar, UnaryOp::reciprocal}) {
    std::string msg = error_of([&] { raw::unary(op, base); });
    CHECK(has(msg, raw::unary_name(op)));
    CHECK(has(msg, "i64"));
  }
  std::string msg = error_of([&] { raw::unary(UnaryOp::add_scalar, base, 0.5); });
  CHECK(has(msg, "add_scalar"));
  CHECK(has(msg, "0.5"));
  // Overflow wraps (two's complement) instead of being undefined.
  const int64_t lo = std::numeric_limits<int64_t>::min();
  Tensor m = from_vector<int64_t>({lo, std::numeric_limits<int64_t>::max()}, {2});
  CHECK(raw::unary(UnaryOp::neg, m).to_vector<int64_t>()[0] == lo);
  CHECK(raw::unary(UnaryOp::abs, m).to_vector<int64_t>()[0] == lo);
  CHECK(raw::unary(UnaryOp::add_scalar, m, 1).to_vector<int64_t>()[1] == lo);
  CHECK(raw::unary(UnaryOp::gt_scalar, m, 9.3e18).to_vector<int64_t>() ==
        std::vector<int64_t>{0, 0});
  CHECK(raw::unary(UnaryOp::ge_scalar, m, -9.3e18).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 1});
}

TEST_CASE("elementwise: every binary op matches a naive loop with broadcasting (f32, f64)") {
  for (DType dt : {DType::f32, DType::f64}) {
    Generator g(11);
    // Positive values keep pow real.
    Tensor a = rand({3, 4, 5}, g, dt, 0.5, 2);
    Tensor b = rand({3, 4, 5}, g, dt, 0.5, 2);
    // Many values equal to 1.25 in both, so the comparisons meet ties.
    a.copy_(raw::binary(BinaryOp::maximum, a, full({}, 1.25, dt)));
    b.copy_(raw::binary(BinaryOp::maximum, b, full({}, 1.25, dt)));
    Tensor at = raw::permute(rand({5, 3, 4}, g, dt, 0.5, 2), {1, 2, 0});   // (3, 4, 5) permuted
    Tensor bs = raw::slice(rand({3, 4, 10}, g, dt, 0.5, 2), 2, 0, 10, 2);  // stride-2 last dim
    Tensor row = rand({5}, g, dt, 0.5, 2);
    Tensor col = rand({3, 1, 1}, g, dt, 0.5, 2);
    Tensor mid = rand({4, 1}, g, dt, 0.5, 2);
    Tensor ex = raw::expand(rand({1, 4, 1}, g, dt, 0.5, 2), {3, 4, 5});
    Tensor sc = full({}, 1.5, dt);
    for (BinaryOp op : kBinaryOps) {
      CAPTURE(std::string(dtype_name(dt)));
      CAPTURE(std::string(raw::binary_name(op)));
      check_binary(op, a, b, {3, 4, 5});
      check_binary(op, at, bs, {3, 4, 5});
      check_binary(op, a, row, {3, 4, 5});
      check_binary(op, row, a, {3, 4, 5});
      check_binary(op, col, mid, {3, 4, 1});
      check_binary(op, at, mid, {3, 4, 5});
      check_binary(op, ex, bs, {3, 4, 5});
      check_binary(op, sc, at, {3, 4, 5});
      check_binary(op, a, sc, {3, 4, 5});
      check_binary(op, col, row, {3, 1, 5});
    }
  }
}

TEST_CASE("elementwise: large broadcast and strided binary ops run the threaded path") {
  Generator g(5);
  Tensor a = raw::transpose(randn({400, 300}, g), 0, 1);  // (300, 400), 120000 elements
  Tensor b = randn({400}, g);
  check_binary(BinaryOp::mul, a, b, {300, 400});
  Tensor c = randn({300, 400}, g);
  check_binary(BinaryOp::sub, c, a, {300, 400});
  check_binary(BinaryOp::add, c, c, {300, 400});
}

TEST_CASE("elementwise: broadcasting by hand and its errors") {
  Tensor col = from_vector<float>({1, 2, 3}, {3, 1});
  Tensor row = tensor({10, 20});
  Tensor s = raw::binary(BinaryOp::add, col, row);
  CHECK(s.shape() == Shape{3, 2});
  CHECK(s.to_vector<float>() == std::vector<float>{11, 21, 12, 22, 13, 23});
  Tensor d = raw::binary(BinaryOp::sub, row, col);
  CHECK(d.to_vector<float>() == std::vector<float>{9, 19, 8, 18, 7, 17});
  Tensor e = raw::binary(BinaryOp::mul, zeros({0, 3}), ones({3}));
  CHECK(e.shape() == Shape{0, 3});
  Tensor sc = raw::binary(BinaryOp::mul, scalar(2), scalar(3.5));
  CHECK(sc.dim() == 0);
  CHECK(sc.item() == 7.0);

  std::string msg = error_of([] { raw::binary(BinaryOp::add, zeros({2, 3}), zeros({4})); });
  CHECK(has(msg, "add"));
  CHECK(has(msg, "[2, 3]"));
  CHECK(has(msg, "[4]"));
  msg = error_of([] { raw::binary(BinaryOp::div, zeros({5, 2, 3}), zeros({4, 1})); });
  CHECK(has(msg, "div"));
  CHECK(has(msg, "[5, 2, 3]"));
  CHECK(has(msg, "[4, 1]"));
  msg = error_of([] { raw::binary(BinaryOp::maximum, zeros({0}), zeros({2})); });
  CHECK(has(msg, "maximum"));
}

TEST_CASE("elementwise: dtype promotion i64 < f32 < f64") {
  CHECK(raw::promote(DType::i64, DType::f32) == DType::f32);
  CHECK(raw::promote(DType::f32, DType::i64) == DType::f32);
  CHECK(raw::promote(DType::f32, DType::f64) == DType::f64);
  CHECK(raw::promote(DType::i64, DType::f64) == DType::f64);
  CHECK(raw::promote(DType::i64, DType::i64) == DType::i64);
  CHECK(raw::promote(DType::f32, DType::f32) == DType::f32);
  Tensor i = from_vector<int64_t>({1, 2, 3}, {3});
  Tensor f = tensor({0.5, 0.25, 0.125});
  Tensor r = raw::binary(BinaryOp::add, i, f);
  CHECK(r.dtype() == DType::f32);
  CHECK(r.to_vector<float>() == std::vector<float>{1.5f, 2.25f, 3.125f});
  Tensor r2 = raw::binary(BinaryOp::mul, f, tensor({2, 2, 2}, DType::f64));
  CHECK(r2.dtype() == DType::f64);
  CHECK(r2.to_vector<double>() == std::vector<double>{1, 0.5, 0.25});
  Tensor cmp = raw::binary(BinaryOp::lt, i, f);
  CHECK(cmp.dtype() == DType::f32);
  CHECK(cmp.to_vector<float>() == std::vector<float>{0, 0, 0});
  Tensor cmp2 = raw::binary(BinaryOp::ge, i, from_vector<int64_t>({2}, {1}));
  CHECK(cmp2.dtype() == DType::i64);
  CHECK(cmp2.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1});
}

TEST_CASE("elementwise: i64 binary ops (floor division, wrap-around, errors)") {
  Generator g(9);
  Tensor a = randint(-100, 100, {6, 7}, g);
  Tensor b = raw::transpose(randint(1, 9, {7, 6}, g), 0, 1);
  for (BinaryOp op : kBinaryOps) {
    if (op == BinaryOp::div || op == BinaryOp::pow) continue;
    CAPTURE(std::string(raw::binary_name(op)));
    Tensor out = raw::binary(op, a, b);
    REQUIRE(out.dtype() == DType::i64);
    for (int64_t i = 0; i < out.numel(); ++i)
      CHECK(double(elem_i64(out, i)) ==
            ref_binary(op, double(elem_i64(a, i)), double(elem_i64(b, i))));
  }
  Tensor n = from_vector<int64_t>({7, -7, 7, -7, 6, 0}, {6});
  Tensor dv = from_vector<int64_t>({2, 2, -2, -2, 3, 5}, {6});
  CHECK(raw::binary(BinaryOp::div, n, dv).to_vector<int64_t>() ==
        std::vector<int64_t>{3, -4, -4, 3, 2, 0});
  Tensor q = raw::binary(BinaryOp::div, a, b);
  for (int64_t i = 0; i < q.numel(); ++i)
    CHECK(elem_i64(q, i) == int64_t(std::floor(double(elem_i64(a, i)) / elem_i64(b, i))));
  CHECK(raw::binary(BinaryOp::pow, from_vector<int64_t>({3, -2, 5, 0}, {4}),
                    from_vector<int64_t>({4, 3, 0, 0}, {4}))
            .to_vector<int64_t>() == std::vector<int64_t>{81, -8, 1, 1});
  const int64_t lo = std::numeric_limits<int64_t>::min();
  Tensor m = from_vector<int64_t>({lo}, {1});
  CHECK(raw::binary(BinaryOp::div, m, from_vector<int64_t>({-1}, {1})).item<int64_t>() == lo);
  CHECK(raw::binary(BinaryOp::sub, m, from_vector<int64_t>({1}, {1})).item<int64_t>() ==
        std::numeric_limits<int64_t>::max());
  CHECK(raw::binary(BinaryOp::mul, m, from_vector<int64_t>({-1}, {1})).item<int64_t>() == lo);

  std::string msg = error_of([&] {
    raw::binary(BinaryOp::div, n, from_vector<int64_t>({1, 0}, {2, 1}));
  });
  CHECK(has(msg, "div"));
  CHECK(has(msg, "zero"));
  msg = error_of([&] { raw::binary(BinaryOp::pow, n, from_vector<int64_t>({-1}, {1})); });
  CHECK(has(msg, "pow"));
  CHECK(has(msg, "negative"));
  // Float division by zero is IEEE, not an error.
  auto fd = raw::binary(BinaryOp::div, tensor({1, -1, 0}), tensor({0, 0, 0})).to_vector<float>();
  CHECK(fd[0] == INFINITY);
  CHECK(fd[1] == -INFINITY);
  CHECK(std::isnan(fd[2]));
}

TEST_CASE("elementwise: maximum and minimum propagate nan") {
  Tensor x = tensor({NAN, 1, 2, NAN});
  Tensor y = tensor({1, NAN, 3, NAN});
  for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
    auto r = raw::binary(op, x, y).to_vector<float>();
    CHECK(std::isnan(r[0]));
    CHECK(std::isnan(r[1]));
    CHECK(r[2] == (op == BinaryOp::maximum ? 3 : 2));
    CHECK(std::isnan(r[3]));
  }
}

TEST_CASE("elementwise: binary_ writes in place through any layout and bumps the version") {
  Generator g(21);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor base = randn({5, 6}, g, dt);
    Tensor before = base.clone();
    Tensor dst = raw::transpose(base, 0, 1);  // (6, 5) view of base
    Tensor src = randn({5}, g, dt);
    uint64_t v0 = base.version();
    raw::binary_(BinaryOp::mul, dst, src);
    CHECK(base.version() > v0);
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 5; ++j)
        check_close(elem(base, j * 6 + i), elem(before, j * 6 + i) * elem(src, j), dt);

    // A strided slice as destination: only the selected columns change.
    Tensor full_t = randn({4, 9}, g, dt);
    Tensor keep = full_t.clone();
    Tensor cols = raw::slice(full_t, 1, 0, 9, 4);  // columns 0, 4, 8
    raw::binary_(BinaryOp::add, cols, full({}, 10, dt));
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t c = 0; c < 9; ++c)
        check_close(elem(full_t, r * 9 + c), elem(keep, r * 9 + c) + (c % 4 == 0 ? 10 : 0), dt);

    // Aliasing sources: x += x.T is computed from the old x, x *= x element for element.
    Tensor sq = randn({4, 4}, g, dt);
    Tensor old = sq.clone();
    raw::binary_(BinaryOp::add, sq, raw::transpose(sq, 0, 1));
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t c = 0; c < 4; ++c)
        check_close(elem(sq, r * 4 + c), elem(old, r * 4 + c) + elem(old, c * 4 + r), dt);
    Tensor sq2 = sq.clone();
    raw::binary_(BinaryOp::mul, sq2, sq2);
    for (int64_t i = 0; i < 16; ++i) check_close(elem(sq2, i), elem(sq, i) * elem(sq, i), dt);
  }
  // Large, threaded.
  Tensor big = randn({300, 300}, g);
  Tensor ref = big.clone();
  Tensor rowv = randn({300}, g);
  raw::binary_(BinaryOp::sub, big, rowv);
  for (int64_t i = 0; i < big.numel(); i += 97)
    check_close(elem(big, i), elem(ref, i) - elem(rowv, i % 300), DType::f32);

  // f32 destination takes an i64 source; an i64 destination refuses an f32 one.
  Tensor f = tensor({1, 2});
  raw::binary_(BinaryOp::add, f, from_vector<int64_t>({3, 4}, {2}));
  CHECK(f.to_vector<float>() == std::vector<float>{4, 6});
  Tensor li = from_vector<int64_t>({1, 2}, {2});
  std::string msg = error_of([&] { raw::binary_(BinaryOp::add, li, tensor({1, 1})); });
  CHECK(has(msg, "add_"));
  CHECK(has(msg, "i64"));
  // The source must broadcast to the destination's shape, not the other way round.
  Tensor small = zeros({3});
  msg = error_of([&] { raw::binary_(BinaryOp::mul, small, zeros({2, 3})); });
  CHECK(has(msg, "mul_"));
  CHECK(has(msg, "[3]"));
  CHECK(has(msg, "[2, 3]"));
  // Writing into an expanded view would update one element several times.
  Tensor ex = raw::expand(zeros({1, 3}), {4, 3});
  msg = error_of([&] { raw::binary_(BinaryOp::add, ex, ones({4, 3})); });
  CHECK(has(msg, "add_"));
  CHECK(has(msg, "[4, 3]"));
}

TEST_CASE("elementwise: where broadcasts cond, a and b and promotes a and b") {
  Tensor cond = from_vector<int64_t>({1, 0, 1}, {3});
  Tensor a = from_vector<float>({1, 2}, {2, 1});
  Tensor b = tensor({-1, -2, -3}, DType::f64);
  Tensor r = raw::where(cond, a, b);
  CHECK(r.shape() == Shape{2, 3});
  CHECK(r.dtype() == DType::f64);
  CHECK(r.to_vector<double>() == std::vector<double>{1, -2, 1, 2, -2, 2});
  // Float condition, non-contiguous operands, checked against a naive loop.
  Generator g(4);
  Tensor c = raw::transpose(randn({5, 4}, g), 0, 1);  // (4, 5)
  Tensor x = raw::slice(randn({4, 10}, g), 1, 0, 10, 2);
  Tensor y = raw::expand(randn({4, 1}, g), {4, 5});
  Tensor w = raw::where(raw::unary(UnaryOp::gt_scalar, c, 0), x, y);
  for (int64_t i = 0; i < 20; ++i) CHECK(elem(w, i) == (elem(c, i) > 0 ? elem(x, i) : elem(y, i)));
  std::string msg = error_of([] { raw::where(zeros({2}), zeros({3}), zeros({1})); });
  CHECK(has(msg, "where"));
  CHECK(has(msg, "[2]"));
  CHECK(has(msg, "[3]"));
  CHECK(has(msg, "[1]"));
}

TEST_CASE("elementwise: copy_ and fill_ through views, conversions and aliasing") {
  Generator g(8);
  Tensor src = randn({3, 4}, g, DType::f64);
  Tensor dst = zeros({4, 3});
  Tensor dst_t = raw::transpose(dst, 0, 1);  // (3, 4) view
  dst_t.copy_(src);
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 4; ++c)
      CHECK(elem(dst, c * 3 + r) == doctest::Approx(elem(src, r * 4 + c)).epsilon(1e-7));
  // Broadcast source.
  Tensor m = zeros({2, 3}, DType::i64);
  m.copy_(from_vector<int64_t>({7, 8, 9}, {3}));
  CHECK(m.to_vector<int64_t>() == std::vector<int64_t>{7, 8, 9, 7, 8, 9});
  std::string msg = error_of([&] { m.copy_(zeros({4})); });
  CHECK(has(msg, "copy_"));
  CHECK(has(msg, "[4]"));
  CHECK(has(msg, "[2, 3]"));
  // Float to i64 truncates; nan and out-of-range values are defined (0, saturate).
  Tensor f = tensor({2.7, -2.7, NAN, 1e30, -1e30});
  Tensor i = f.to(DType::i64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{2, -2, 0,
                                                       std::numeric_limits<int64_t>::max(),
                                                       std::numeric_limits<int64_t>::min()});
  // x.copy_(x.T) reads the old x.
  Tensor sq = randn({3, 3}, g);
  Tensor old = sq.clone();
  sq.copy_(raw::transpose(sq, 0, 1));
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 3; ++c) CHECK(elem(sq, r * 3 + c) == elem(old, c * 3 + r));
  // fill_ on a strided view touches only the view; a large fill runs threaded.
  Tensor base = zeros({4, 6});
  Tensor view = raw::slice(raw::transpose(base, 0, 1), 0, 1, 6, 2);  // rows 1, 3, 5 of base^T
  uint64_t v0 = base.version();
  view.fill_(3);
  CHECK(base.version() > v0);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) CHECK(elem(base, r * 6 + c) == (c % 2 == 1 ? 3 : 0));
  Tensor big = zeros({500, 200}, DType::f64);
  big.fill_(1.5);
  double total = 0;
  for (int64_t k = 0; k < big.numel(); ++k) total += elem(big, k);
  CHECK(total == 1.5 * 100000);
  Tensor bi = zeros({2}, DType::i64);
  bi.fill_(NAN);
  CHECK(bi.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
}

TEST_CASE("elementwise: NdIter coalesces dims and visits runs in row-major order") {
  using raw::detail::NdIter;
  // Contiguous (2, 3, 4) with a contiguous partner: one flat dim.
  NdIter<2> flat({2, 3, 4}, {Strides{12, 4, 1}, Strides{12, 4, 1}});
  CHECK(flat.ndim == 1);
  CHECK(flat.contiguous());
  CHECK(flat.numel == 24);
  // A bias broadcast over rows: (5, 3) with strides (0, 1) stays two dims.
  NdIter<2> bias({5, 3}, {Strides{3, 1}, Strides{0, 1}});
  CHECK(bias.ndim == 2);
  CHECK(!bias.contiguous());
  // Size-1 dims vanish and the rest merge: (4, 1, 6) contiguous -> one dim.
  NdIter<1> ones({4, 1, 6}, {Strides{6, 99, 1}});
  CHECK(ones.ndim == 1);
  // Sorting by the first operand's strides makes a transposed destination walk in order.
  NdIter<2> sorted({3, 4}, {Strides{1, 3}, Strides{4, 1}}, true);
  CHECK(sorted.ndim == 2);
  CHECK(sorted.inner_stride(0) == 1);
  CHECK(sorted.inner_stride(1) == 4);
  // Runs over a sub-range [5, 17) of a (4, 6) slice view with row stride 10.
  NdIter<1> it({4, 6}, {Strides{10, 1}});
  std::vector<int64_t> offs;
  it.for_each_run(5, 17, [&](int64_t n, const int64_t* off) {
    for (int64_t i = 0; i < n; ++i) offs.push_back(off[0] + i);
  });
  std::vector<int64_t> want;
  for (int64_t p = 5; p < 17; ++p) want.push_back((p / 6) * 10 + p % 6);
  CHECK(offs == want);
  CHECK(it.offsets_at(13)[0] == 21);
  // Overlap detection.
  CHECK(raw::detail::is_non_overlapping({3, 4}, {4, 1}));
  CHECK(raw::detail::is_non_overlapping({3, 4}, {1, 3}));
  CHECK(raw::detail::is_non_overlapping({3, 4}, {10, 2}));
  CHECK(!raw::detail::is_non_overlapping({3, 4}, {0, 1}));
  CHECK(!raw::detail::is_non_overlapping({3, 3}, {1, 1}));
  CHECK(raw::detail::is_non_overlapping({3, 1}, {0, 0}) == false);
  CHECK(raw::detail::is_non_overlapping({1, 5}, {0, 1}));
}
