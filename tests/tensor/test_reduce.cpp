// Tests for the reduction kernels (tensor/kernels/reduce.cpp): sum/mean/max/min/prod, argmax/
// argmin, var, logsumexp, softmax/log_softmax and sum_to against naive loops written here, over
// single, multiple, negative and all dims, with and without keepdim, on contiguous, permuted,
// strided and expanded inputs; the row, column, chunked and threaded paths; f32 accuracy;
// empty reductions and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tensor/tensor.h"
#include "tests/support/support.h"

using namespace encore;
using raw::ReduceOp;

namespace {

double elem(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.shape()[d]) * t.strides()[d];
    i /= t.shape()[d];
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

void check_close(double got, double want, DType dt, double rel = 0) {
  if (rel == 0) rel = dt == DType::f32 ? 3e-6 : 1e-12;
  if (std::isnan(want)) {
    CHECK(std::isnan(got));
  } else if (std::isinf(want)) {
    CHECK(got == want);
  } else {
    CHECK(got == doctest::Approx(want).epsilon(rel));
  }
}

// The reference: every element of x, in row-major order, grouped by the output it reduces into
// (outputs in row-major order of the kept dims), plus the expected output shape.
struct Groups {
  std::vector<std::vector<double>> values;
  Shape shape;
};
Groups group(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  const int nd = x.dim();
  std::vector<bool> red(nd, dims.empty());
  for (int64_t d : dims) red[d < 0 ? d + nd : d] = true;
  Groups g;
  int64_t m = 1;
  for (int d = 0; d < nd; ++d) {
    if (!red[d]) m *= x.shape()[d];
    if (!red[d] || keepdim) g.shape.push_back(red[d] ? 1 : x.shape()[d]);
  }
  g.values.resize(m);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rest = i, o = 0, scale = 1;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t idx = rest % x.shape()[d];
      rest /= x.shape()[d];
      if (!red[d]) {
        o += idx * scale;
        scale *= x.shape()[d];
      }
    }
    g.values[o].push_back(elem(x, i));
  }
  return g;
}

double ref_reduce(ReduceOp op, const std::vector<double>& v) {
  double r = op == ReduceOp::prod  ? 1
             : op == ReduceOp::max ? -INFINITY
             : op == ReduceOp::min ? INFINITY
                                   : 0;
  for (double x : v) {
    if (op == ReduceOp::sum || op == ReduceOp::mean) r += x;
    if (op == ReduceOp::prod) r *= x;
    if (op == ReduceOp::max) r = std::max(r, x);
    if (op == ReduceOp::min) r = std::min(r, x);
  }
  return op == ReduceOp::mean ? r / double(v.size()) : r;
}

double ref_var(const std::vector<double>& v, int64_t correction) {
  double s = 0;
  for (double x : v) s += x;
  double mean = s / double(v.size()), ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return ss / double(int64_t(v.size()) - correction);
}

double ref_logsumexp(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += std::exp(x);
  return std::log(s);
}

struct Layout {
  std::string name;
  Tensor t;
};
// (3, 4, 5) tensors in four layouts.
std::vector<Layout> layouts(DType dt, uint64_t seed) {
  Generator g(seed);
  auto make = [&](const Shape& s) {
    return dt == DType::i64 ? randint(-1, 3, s, g) : rand(s, g, dt, -1.5, 1.5);
  };
  return {
      {"contiguous", make({3, 4, 5})},
      {"permuted", raw::permute(make({5, 3, 4}), {1, 2, 0})},
      {"sliced", raw::slice(make({3, 4, 11}), 2, 1, 11, 2)},
      {"expanded", raw::expand(make({3, 1, 5}), {3, 4, 5})},
  };
}

const std::vector<std::vector<int64_t>> kDimSets = {
    {}, {0}, {1}, {2}, {-1}, {0, 2}, {2, 0}, {1, 2}, {0, 1}, {-3, -2, -1}, {-2}};

// Checks reduce(op, x, dims, keepdim) against the reference.
void check_reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                  double rel = 0) {
  Tensor y = raw::reduce(op, x, dims, keepdim);
  Groups g = group(x, dims, keepdim);
  REQUIRE(y.shape() == g.shape);
  CHECK(y.dtype() == x.dtype());
  for (int64_t o = 0; o < y.numel(); ++o)
    check_close(elem(y, o), ref_reduce(op, g.values[o]), x.dtype(), rel);
}

}  // namespace

TEST_CASE("reduce: sum/mean/max/min/prod match a naive loop over every dim set and layout") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    for (const Layout& l : layouts(dt, 17)) {
      for (ReduceOp op :
           {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min, ReduceOp::prod}) {
        if (dt == DType::i64 && op == ReduceOp::mean) continue;
        for (const auto& dims : kDimSets)
          for (bool keepdim : {false, true}) {
            CAPTURE(std::string(dtype_name(dt)));
            CAPTURE(l.name);
            CAPTURE(std::string(raw::reduce_name(op)));
            CAPTURE(dims.size());
            CAPTURE(keepdim);
            check_reduce(op, l.t, dims, keepdim);
          }
      }
    }
  }
}

TEST_CASE("reduce: hand-worked values, keepdim shapes and negative dims") {
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(raw::reduce(ReduceOp::sum, x).item() == 21);
  CHECK(raw::reduce(ReduceOp::sum, x).dim() == 0);
  CHECK(raw::reduce(ReduceOp::sum, x, {0}).to_vector<float>() == std::vector<float>{5, 7, 9});
  CHECK(raw::reduce(ReduceOp::sum, x, {-1}).to_vector<float>() == std::vector<float>{6, 15});
  CHECK(raw::reduce(ReduceOp::mean, x, {1}, true).shape() == Shape{2, 1});
  CHECK(raw::reduce(ReduceOp::mean, x, {1}, true).to_vector<float>() == std::vector<float>{2, 5});
  CHECK(raw::reduce(ReduceOp::max, x, {0, 1}, true).shape() == Shape{1, 1});
  CHECK(raw::reduce(ReduceOp::max, x, {0, 1}, true).item() == 6);
  CHECK(raw::reduce(ReduceOp::min, x, {}, true).shape() == Shape{1, 1});
  CHECK(raw::reduce(ReduceOp::prod, x, {0}).to_vector<float>() == std::vector<float>{4, 10, 18});
  // A 0-d tensor reduces to itself (dim 0 is accepted, as in PyTorch).
  CHECK(raw::reduce(ReduceOp::sum, scalar(2.5)).item() == 2.5);
  CHECK(raw::reduce(ReduceOp::max, scalar(2.5), {0}).item() == 2.5);
  // nan wins in max and min.
  Tensor n = tensor({1, NAN, 3});
  CHECK(std::isnan(raw::reduce(ReduceOp::max, n).item()));
  CHECK(std::isnan(raw::reduce(ReduceOp::min, n).item()));
  // i64 sums are exact beyond 2^53 and wrap instead of overflowing into UB.
  const int64_t big = (int64_t(1) << 62) + 1;
  Tensor li = from_vector<int64_t>({big, big, 1}, {3});
  CHECK(raw::reduce(ReduceOp::sum, li).item<int64_t>() == std::numeric_limits<int64_t>::min() + 3);
  CHECK(raw::reduce(ReduceOp::max, li).item<int64_t>() == big);
}

TEST_CASE("reduce: column, chunked and threaded paths agree with the reference") {
  Generator g(23);
  // Column sums (the bias-gradient shape) on a contiguous batch and a row-sliced one.
  Tensor cols = randn({64, 300}, g);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min})
    for (bool keepdim : {false, true}) check_reduce(op, cols, {0}, keepdim);
  check_reduce(ReduceOp::sum, raw::slice(cols, 0, 1, 64, 3), {0}, false);
  Tensor img = randn({6, 50, 33}, g, DType::f64);
  check_reduce(ReduceOp::sum, img, {0, 1}, false);
  check_reduce(ReduceOp::max, img, {0, 1}, true);
  check_reduce(ReduceOp::sum, img, {1}, false);
  // A large column reduction (many blocks, threaded).
  check_reduce(ReduceOp::sum, randn({200, 1000}, g), {0}, false);
  // Long rows: cut into chunks whose partial sums combine.
  Tensor rows = randn({3, 40000}, g);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min})
    check_reduce(op, rows, {1}, false, 1e-5);
  check_reduce(ReduceOp::sum, raw::transpose(rows, 0, 1), {0}, false, 1e-5);
  // Whole-tensor reductions of a large tensor, contiguous and transposed.
  Tensor whole = randn({200, 500}, g, DType::f64);
  check_reduce(ReduceOp::sum, whole, {}, false);
  check_reduce(ReduceOp::max, raw::transpose(whole, 0, 1), {}, false);
  // Many short rows, threaded over outputs.
  check_reduce(ReduceOp::sum, randn({2000, 40}, g), {1}, false);
  check_reduce(ReduceOp::prod, rand({2000, 40}, g, DType::f64, 0.9, 1.1), {-1}, true);
  // i64 on the column path.
  check_reduce(ReduceOp::sum, randint(-1000, 1000, {50, 64}, g), {0}, false);
}

TEST_CASE("reduce: f32 sums accumulate in f64 and do not depend on the thread count") {
  Tensor x = full({1000000}, 0.1);
  float want = float(1e6 * double(0.1f));
  CHECK(raw::reduce(ReduceOp::sum, x).item<float>() == want);
  CHECK(raw::reduce(ReduceOp::mean, x).item<float>() == 0.1f);
  Tensor cols = full({100000, 10}, 0.1);
  auto cs = raw::reduce(ReduceOp::sum, cols, {0}).to_vector<float>();
  for (float v : cs) CHECK(v == float(1e5 * double(0.1f)));

  Generator g(2);
  Tensor r = randn({300, 700}, g);
  int before = get_num_threads();
  set_num_threads(1);
  float one = raw::reduce(ReduceOp::sum, r).item<float>();
  Tensor rows1 = raw::reduce(ReduceOp::sum, r, {1});
  set_num_threads(2);
  float two = raw::reduce(ReduceOp::sum, r).item<float>();
  Tensor rows2 = raw::reduce(ReduceOp::sum, r, {1});
  set_num_threads(before);
  CHECK(one == two);
  CHECK(rows1.to_vector<float>() == rows2.to_vector<float>());
}

TEST_CASE("reduce: empty reductions and errors name the op and shape") {
  Tensor e = zeros({0, 3});
  CHECK(raw::reduce(ReduceOp::sum, e, {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(raw::reduce(ReduceOp::prod, e, {0}).to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(raw::reduce(ReduceOp::sum, e).item() == 0);
  CHECK(raw::reduce(ReduceOp::max, e, {1}).shape() == Shape{0});  // nothing to compute
  for (ReduceOp op : {ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
    std::string msg = error_of([&] { raw::reduce(op, e, {0}); });
    CHECK(has(msg, raw::reduce_name(op)));
    CHECK(has(msg, "[0, 3]"));
    CHECK(has(msg, "empty"));
  }
  CHECK(has(error_of([&] { raw::reduce(ReduceOp::mean, e); }), "mean"));

  Tensor x = zeros({3, 4, 5});
  std::string msg = error_of([&] { raw::reduce(ReduceOp::sum, x, {1, -2}); });
  CHECK(has(msg, "sum"));
  CHECK(has(msg, "repeated"));
  CHECK(has(msg, "[3, 4, 5]"));
  msg = error_of([&] { raw::reduce(ReduceOp::max, x, {3}); });
  CHECK(has(msg, "max"));
  CHECK(has(msg, "out of range"));
  msg = error_of([&] { raw::reduce(ReduceOp::mean, zeros({2}, DType::i64)); });
  CHECK(has(msg, "mean"));
  CHECK(has(msg, "i64"));
}

TEST_CASE("reduce: argmax and argmin take the first extreme") {
  Tensor x = from_vector<float>({1, 3, 3, 5, 5, 0}, {2, 3});
  CHECK(raw::argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(raw::argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 2});
  CHECK(raw::argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0});
  CHECK(raw::argmin(x, -2).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1});
  Tensor k = raw::argmax(x, -1, true);
  CHECK(k.shape() == Shape{2, 1});
  CHECK(k.dtype() == DType::i64);
  CHECK(raw::argmax(tensor({1, NAN, 5, NAN}), 0).item<int64_t>() == 1);
  CHECK(raw::argmin(tensor({1, NAN, -5, NAN}), 0).item<int64_t>() == 1);
  CHECK(raw::argmax(scalar(4), 0).item<int64_t>() == 0);

  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    for (const Layout& l : layouts(dt, 5)) {
      for (int64_t dim : {0, 1, 2, -1}) {
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(l.name);
        CAPTURE(dim);
        Tensor am = raw::argmax(l.t, dim), an = raw::argmin(l.t, dim);
        Groups g = group(l.t, {dim}, false);
        REQUIRE(am.shape() == g.shape);
        for (int64_t o = 0; o < am.numel(); ++o) {
          const auto& v = g.values[o];
          int64_t imax = 0, imin = 0;
          for (size_t i = 1; i < v.size(); ++i) {
            if (v[i] > v[imax]) imax = int64_t(i);
            if (v[i] < v[imin]) imin = int64_t(i);
          }
          CHECK(am.to_vector<int64_t>()[o] == imax);
          CHECK(an.to_vector<int64_t>()[o] == imin);
        }
      }
    }
  }
  std::string msg = error_of([] { raw::argmax(zeros({2, 0}), 1); });
  CHECK(has(msg, "argmax"));
  CHECK(has(msg, "[2, 0]"));
  CHECK(has(error_of([] { raw::argmin(zeros({2, 3}), 2); }), "argmin"));
}

TEST_CASE("reduce: var matches a two-pass reference with any correction") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Layout& l : layouts(dt, 31)) {
      for (const auto& dims : kDimSets) {
        for (int64_t corr : {0, 1}) {
          CAPTURE(std::string(dtype_name(dt)));
          CAPTURE(l.name);
          CAPTURE(dims.size());
          CAPTURE(corr);
          Tensor v = raw::var(l.t, dims, corr, true);
          Groups g = group(l.t, dims, true);
          REQUIRE(v.shape() == g.shape);
          for (int64_t o = 0; o < v.numel(); ++o) {
            check_close(elem(v, o), ref_var(g.values[o], corr), dt,
                        dt == DType::f32 ? 1e-5 : 1e-10);
          }
        }
      }
    }
  }
  // Large offset, small spread: no cancellation in f32.
  Generator g(6);
  Tensor x = rand({1000}, g, DType::f32, 10000, 10001);
  Groups gr = group(x, {}, false);
  CHECK(raw::var(x).item() == doctest::Approx(ref_var(gr.values[0], 1)).epsilon(1e-5));
  CHECK(raw::var(from_vector<double>({1, 2, 3, 4}, {4}), {}, 0).item() == 1.25);
  CHECK(raw::var(from_vector<double>({1, 2, 3, 4}, {4})).item() == doctest::Approx(5.0 / 3));
  CHECK(raw::var(full({5, 7}, 3.25), {1}).to_vector<float>() == std::vector<float>(5, 0.0f));
  // n <= correction divides by zero: IEEE nan for a single element.
  CHECK(std::isnan(raw::var(tensor({2})).item()));
  CHECK(has(error_of([] { raw::var(zeros({3}, DType::i64)); }), "var"));
  CHECK(has(error_of([] { raw::var(zeros({0, 2}), {0}); }), "[0, 2]"));
}

TEST_CASE("reduce: logsumexp is stable and matches the reference") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Layout& l : layouts(dt, 41)) {
      for (const auto& dims : kDimSets) {
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(l.name);
        Tensor y = raw::logsumexp(l.t, dims, false);
        Groups g = group(l.t, dims, false);
        REQUIRE(y.shape() == g.shape);
        for (int64_t o = 0; o < y.numel(); ++o)
          check_close(elem(y, o), ref_logsumexp(g.values[o]), dt, dt == DType::f32 ? 3e-6 : 1e-12);
      }
    }
    const double inf = INFINITY;
    Tensor big = from_vector<double>({1000, 1000, -1000, 0}, {2, 2}).to(dt);
    auto r = raw::logsumexp(big, {1}).to_vector<double>();
    CHECK(r[0] == doctest::Approx(1000 + std::log(2.0)));
    CHECK(r[1] == doctest::Approx(0.0));
    Tensor special = from_vector<double>({-inf, -inf, -inf, 0, inf, 1, NAN, 1}, {4, 2}).to(dt);
    auto s = raw::logsumexp(special, {1}).to_vector<double>();
    CHECK(s[0] == -inf);
    CHECK(s[1] == 0);
    CHECK(s[2] == inf);
    CHECK(std::isnan(s[3]));
    CHECK(raw::logsumexp(zeros({0, 3}, dt), {0}).to_vector<double>() ==
          std::vector<double>(3, -inf));
  }
  CHECK(has(error_of([] { raw::logsumexp(zeros({3}, DType::i64)); }), "logsumexp"));
}

TEST_CASE("reduce: softmax and log_softmax along any dim") {
  for (DType dt : {DType::f32, DType::f64}) {
    Generator g(13);
    Tensor rows = randn({5, 7}, g, dt);
    Tensor s = raw::softmax(rows, -1);
    REQUIRE(s.shape() == Shape{5, 7});
    for (int64_t r = 0; r < 5; ++r) {
      double total = 0;
      for (int64_t c = 0; c < 7; ++c) total += elem(s, r * 7 + c);
      CHECK(total == doctest::Approx(1.0).epsilon(1e-6));
    }
    // Against the naive formula along every dim of a permuted (3, 4, 5) tensor.
    Tensor x = raw::permute(randn({5, 3, 4}, g, dt), {1, 2, 0});
    for (int64_t dim : {0, 1, 2, -1}) {
      CAPTURE(std::string(dtype_name(dt)));
      CAPTURE(dim);
      Tensor sm = raw::softmax(x, dim), ls = raw::log_softmax(x, dim);
      int d = dim < 0 ? int(dim + 3) : int(dim);
      Groups gr = group(x, {dim}, true);
      for (int64_t i = 0; i < x.numel(); ++i) {
        // The output slot of element i and the sum over its line.
        int64_t rest = i, o = 0, scale = 1;
        for (int k = 2; k >= 0; --k) {
          int64_t idx = rest % x.shape()[k];
          rest /= x.shape()[k];
          if (k != d) {
            o += idx * scale;
            scale *= x.shape()[k];
          }
        }
        double lse = ref_logsumexp(gr.values[o]);
        check_close(elem(sm, i), std::exp(elem(x, i) - lse), dt, dt == DType::f32 ? 3e-6 : 1e-12);
        check_close(elem(ls, i), elem(x, i) - lse, dt, dt == DType::f32 ? 3e-6 : 1e-12);
      }
    }
    // Large inputs do not overflow; very negative ones keep their log-probability.
    auto big = raw::softmax(tensor({1000, 1001, 1002}, dt), 0).to_vector<double>();
    double z = std::exp(-2.0) + std::exp(-1.0) + 1;
    CHECK(big[0] == doctest::Approx(std::exp(-2.0) / z).epsilon(1e-6));
    CHECK(big[2] == doctest::Approx(1 / z).epsilon(1e-6));
    auto lsm = raw::log_softmax(tensor({0, -1000}, dt), 0).to_vector<double>();
    CHECK(lsm[0] == doctest::Approx(0.0));
    CHECK(lsm[1] == doctest::Approx(-1000.0));
    auto neg = raw::softmax(tensor({-INFINITY, 0}, dt), 0).to_vector<double>();
    CHECK(neg == std::vector<double>{0, 1});
    CHECK(raw::softmax(scalar(3, dt), 0).item() == 1);
    CHECK(raw::log_softmax(scalar(3, dt), 0).item() == 0);
  }
  // Threaded: many rows.
  Generator g(1);
  Tensor many = randn({4000, 20}, g);
  Tensor sm = raw::softmax(many, 1);
  for (int64_t r = 0; r < 4000; r += 333) {
    double total = 0;
    for (int64_t c = 0; c < 20; ++c) total += elem(sm, r * 20 + c);
    CHECK(total == doctest::Approx(1.0).epsilon(1e-6));
  }
  CHECK(has(error_of([] { raw::softmax(zeros({2}, DType::i64), 0); }), "softmax"));
  std::string msg = error_of([] { raw::log_softmax(zeros({2, 3}), 2); });
  CHECK(has(msg, "log_softmax"));
}

TEST_CASE("reduce: sum_to undoes broadcasting") {
  Generator g(3);
  Tensor x = randn({2, 3, 4}, g, DType::f64);
  struct Case {
    Shape target;
    std::vector<int64_t> dims;  // reduced with keepdim in the reference
  };
  for (const Case& c : {Case{{3, 1}, {0, 2}}, Case{{4}, {0, 1}}, Case{{1, 1, 4}, {0, 1}},
                        Case{{2, 1, 4}, {1}}, Case{{1}, {0, 1, 2}}, Case{{}, {0, 1, 2}}}) {
    CAPTURE(c.target);
    Tensor y = raw::sum_to(x, c.target);
    REQUIRE(y.shape() == c.target);
    Groups gr = group(x, c.dims, true);
    for (int64_t o = 0; o < y.numel(); ++o)
      check_close(elem(y, o), ref_reduce(ReduceOp::sum, gr.values[o]), DType::f64);
  }
  Tensor same = raw::sum_to(x, {2, 3, 4});
  CHECK(same.same(x));
  std::string msg = error_of([&] { raw::sum_to(x, {2, 4}); });
  CHECK(has(msg, "sum_to"));
  CHECK(has(msg, "[2, 3, 4]"));
  CHECK(has(msg, "[2, 4]"));
  msg = error_of([&] { raw::sum_to(zeros({3}), {2, 3}); });
  CHECK(has(msg, "sum_to"));
  CHECK(has(msg, "[2, 3]"));
}
