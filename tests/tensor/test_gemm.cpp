// Tests of raw::matmul and raw::linear against naive loops: every transpose combination,
// sliced and expanded operands, batch broadcasting, 1-D operands, zero sizes and errors.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/gemm_log.h"
#include "tensor/tensor.h"

using namespace encore;

namespace {

/// The message of the encore::Error f throws, or "" when it throws none.
std::string gemm_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// Naive NumPy matmul in double over the logical values of a and b; returns values and shape.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b, Shape& shape) {
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  Shape as = a.shape(), bs = b.shape();
  if (a.dim() == 1) as.insert(0, 1);
  if (b.dim() == 1) bs.push_back(1);
  int na = as.size() - 2, nb = bs.size() - 2, n_batch = std::max(na, nb);
  int64_t n = as[na], k = as[na + 1], m = bs[nb + 1];
  Shape batch = Dims::filled(n_batch, 1);
  for (int i = 0; i < n_batch; ++i) {
    int ia = i - (n_batch - na), ib = i - (n_batch - nb);
    batch[i] = std::max(ia >= 0 ? as[ia] : 1, ib >= 0 ? bs[ib] : 1);
  }
  std::vector<double> out;
  int64_t count = numel(batch);
  for (int64_t t = 0; t < count; ++t) {
    // Batch multi-index of t, then the matching (broadcast) batch offsets of a and b.
    int64_t rest = t, off_a = 0, off_b = 0, stride_a = n * k, stride_b = k * m;
    for (int i = n_batch - 1; i >= 0; --i) {
      int64_t p = rest % batch[i];
      rest /= batch[i];
      int ia = i - (n_batch - na), ib = i - (n_batch - nb);
      if (ia >= 0) {
        off_a += (as[ia] == 1 ? 0 : p) * stride_a;
        stride_a *= as[ia];
      }
      if (ib >= 0) {
        off_b += (bs[ib] == 1 ? 0 : p) * stride_b;
        stride_b *= bs[ib];
      }
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q) s += av[off_a + i * k + q] * bv[off_b + q * m + j];
        out.push_back(s);
      }
  }
  shape = batch;
  if (a.dim() > 1) shape.push_back(n);
  if (b.dim() > 1) shape.push_back(m);
  return out;
}

/// Checks got against want elementwise with a tolerance fit for the dtype.
void check_close(const Tensor& got, const std::vector<double>& want, const Shape& shape) {
  REQUIRE(got.shape() == shape);
  std::vector<double> g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  double tol = got.dtype() == DType::f32 ? 1e-4 : 1e-11;
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element ", i, " of shape ", to_string(shape));
    CHECK(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

void check_matmul(const Tensor& a, const Tensor& b) {
  Shape shape;
  std::vector<double> want = naive_matmul(a, b, shape);
  INFO("a ", to_string(a.shape()), " strides ", to_string(a.strides()), ", b ",
       to_string(b.shape()), " strides ", to_string(b.strides()));
  check_close(raw::matmul(a, b), want, shape);
}

/// Storage allocations made while running f.
uint64_t allocations_during(const std::function<void()>& f) {
  uint64_t before = allocator::stats().allocations;
  f();
  return allocator::stats().allocations - before;
}

}  // namespace

TEST_CASE("matmul: 2-D against a naive loop for every transpose combination") {
  Generator gen(1);
  for (DType dt : {DType::f32, DType::f64}) {
    for (auto [n, k, m] :
         {std::array<int64_t, 3>{5, 7, 3}, {1, 4, 6}, {6, 4, 1}, {1, 1, 1}, {33, 65, 17}}) {
      Tensor a = randn({n, k}, gen, dt), at = raw::transpose(randn({k, n}, gen, dt), 0, 1);
      Tensor b = randn({k, m}, gen, dt), bt = raw::transpose(randn({m, k}, gen, dt), 0, 1);
      check_matmul(a, b);
      check_matmul(at, b);
      check_matmul(a, bt);
      check_matmul(at, bt);
    }
  }
}

TEST_CASE("matmul: a hand-worked product") {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<float>({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor c = raw::matmul(a, b);
  CHECK(c.shape() == Shape{2, 2});
  CHECK(c.to_vector<float>() == std::vector<float>{58, 64, 139, 154});
  // a^T (3, 2) @ a (2, 3) through a transposed view.
  Tensor g = raw::matmul(raw::transpose(a, 0, 1), a);
  CHECK(g.to_vector<float>() == std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45});
}

TEST_CASE("matmul: transposed and row-sliced operands reach BLAS without a copy") {
  Generator gen(2);
  Tensor big = randn({9, 12}, gen, DType::f64);
  // Column slice: strides (12, 1) with lda 12 > cols 5, and an offset.
  Tensor a = raw::slice(big, 1, 3, 8);
  Tensor b = raw::slice(raw::transpose(big, 0, 1), 1, 2, 6);  // (12, 4), strides (1, 12)
  Tensor a_rows = raw::slice(big, 0, 1, 9, 2);                // (4, 12), strides (24, 1)
  check_matmul(a, raw::slice(raw::transpose(big, 0, 1), 0, 0, 5));
  check_matmul(raw::transpose(a, 0, 1), a);
  check_matmul(a_rows, b);
  check_matmul(raw::transpose(a_rows, 0, 1), a_rows);
  // Only the output is allocated for these layouts.
  CHECK(allocations_during([&] { raw::matmul(a_rows, b); }) == 1);
  CHECK(allocations_during([&] { raw::matmul(raw::transpose(a, 0, 1), a); }) == 1);
  // Column step 2 cannot be described to BLAS: one copy plus the output.
  Tensor a_step = raw::slice(big, 1, 0, 12, 2);  // (9, 6), strides (12, 2)
  check_matmul(a_step, randn({6, 3}, gen, DType::f64));
  CHECK(allocations_during([&] { raw::matmul(a_step, raw::transpose(a_step, 0, 1)); }) == 3);
}

TEST_CASE("matmul: batched with broadcasting of leading dims") {
  Generator gen(3);
  for (DType dt : {DType::f32, DType::f64}) {
    // Same batch, a 2-D right operand (folded into one gemm), a 2-D left operand.
    check_matmul(randn({4, 3, 5}, gen, dt), randn({4, 5, 2}, gen, dt));
    check_matmul(randn({2, 3, 4, 5}, gen, dt), randn({5, 6}, gen, dt));
    check_matmul(randn({4, 5}, gen, dt), randn({3, 5, 2}, gen, dt));
    // Size-1 batch dims broadcast against each other.
    check_matmul(randn({2, 1, 3, 4}, gen, dt), randn({1, 5, 4, 2}, gen, dt));
    check_matmul(randn({3, 1, 4}, gen, dt), randn({2, 1, 4, 6}, gen, dt));
    // Transposed batch matrices and permuted batch dims.
    check_matmul(raw::transpose(randn({3, 5, 4}, gen, dt), 1, 2), randn({3, 5, 2}, gen, dt));
    check_matmul(raw::permute(randn({4, 3, 5}, gen, dt), {1, 0, 2}),
                 raw::transpose(randn({3, 2, 5}, gen, dt), 1, 2));
    // Row-sliced batch operand (non-unit leading dim inside each batch matrix).
    check_matmul(raw::slice(randn({2, 6, 5}, gen, dt), 1, 0, 6, 2), randn({5, 3}, gen, dt));
  }
}

TEST_CASE("matmul: stride-0 expanded batch operands are used in place") {
  Generator gen(4);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor w = randn({1, 4, 3}, gen, dt);
    Tensor we = raw::expand(w, {5, 4, 3});  // batch stride 0
    Tensor x = randn({5, 2, 4}, gen, dt);
    check_matmul(x, we);
    check_matmul(raw::expand(randn({2, 4}, gen, dt), {5, 2, 4}), randn({5, 4, 3}, gen, dt));
    CHECK(allocations_during([&] { raw::matmul(x, we); }) == 1);
    // An expanded operand whose matrices also need a copy is copied once, not per batch.
    Tensor stepped = raw::slice(randn({1, 4, 6}, gen, dt), 2, 0, 6, 2);  // (1, 4, 3), strides 2
    Tensor se = raw::expand(stepped, {7, 4, 3});
    Tensor x7 = randn({7, 2, 4}, gen, dt);
    check_matmul(x7, se);
    CHECK(allocations_during([&] { raw::matmul(x7, se); }) == 2);
  }
}

TEST_CASE("matmul: 1-D operands follow NumPy") {
  Generator gen(5);
  Tensor v = randn({4}, gen, DType::f64), w = randn({4}, gen, DType::f64);
  Tensor dot = raw::matmul(v, w);
  CHECK(dot.dim() == 0);
  double want = 0;
  for (int i = 0; i < 4; ++i) want += v.to_vector<double>()[i] * w.to_vector<double>()[i];
  CHECK(dot.item() == doctest::Approx(want).epsilon(1e-12));
  check_matmul(v, randn({4, 3}, gen, DType::f64));
  check_matmul(randn({3, 4}, gen, DType::f64), v);
  check_matmul(randn({2, 3, 4}, gen, DType::f64), v);
  check_matmul(v, randn({2, 4, 3}, gen, DType::f64));
  // A strided vector (stride 2) and a vector from a column (stride 4).
  Tensor m = randn({4, 4}, gen, DType::f32);
  check_matmul(raw::slice(randn({8}, gen, DType::f32), 0, 0, 8, 2), m);
  check_matmul(m, raw::select(m, 1, 2));
  check_matmul(raw::expand(randn({1}, gen, DType::f32), {4}), m);  // stride-0 vector
  CHECK(raw::matmul(v, w).shape() == Shape{});
  CHECK(raw::matmul(randn({3, 4}, gen, DType::f64), v).shape() == Shape{3});
}

TEST_CASE("matmul: zero-size dims") {
  Generator gen(6);
  Tensor z = raw::matmul(randn({3, 0}, gen), randn({0, 2}, gen));  // k == 0: zeros
  CHECK(z.shape() == Shape{3, 2});
  CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(raw::matmul(randn({0, 4}, gen), randn({4, 2}, gen)).shape() == Shape{0, 2});
  CHECK(raw::matmul(randn({3, 4}, gen), randn({4, 0}, gen)).shape() == Shape{3, 0});
  CHECK(raw::matmul(randn({0, 3, 4}, gen), randn({4, 2}, gen)).shape() == Shape{0, 3, 2});
  CHECK(raw::matmul(randn({0}, gen), randn({0}, gen)).item() == 0.0);
  // Transposed views of empty matrices (strides that BLAS would reject) are fine too.
  Tensor e = raw::transpose(randn({0, 3}, gen), 0, 1);
  CHECK(raw::matmul(e, randn({0, 5}, gen)).to_vector<float>() == std::vector<float>(15, 0.0f));
}

TEST_CASE("matmul: the output never keeps stale memory") {
  // Freed NaN-filled blocks are handed back by the caching allocator; beta = 0 must ignore them.
  Generator gen(7);
  Tensor a = randn({6, 4}, gen), b = randn({4, 5}, gen);
  {
    std::vector<Tensor> poison;
    for (int i = 0; i < 4; ++i) poison.push_back(full({6, 5}, std::nan(""), DType::f32));
  }
  check_matmul(a, b);
  {
    std::vector<Tensor> poison;
    for (int i = 0; i < 4; ++i) poison.push_back(full({6, 5}, std::nan(""), DType::f32));
  }
  check_close(raw::linear(a, raw::transpose(b, 0, 1), Tensor()),
              raw::matmul(a, b).to_vector<double>(), {6, 5});
}

TEST_CASE("matmul: errors name the op and both shapes") {
  Generator gen(8);
  CHECK(gemm_error([&] {
          raw::matmul(randn({128, 784}, gen), randn({400, 784}, gen));
        }) == "matmul: shapes [128, 784] and [400, 784] do not align (784 vs 400)");
  CHECK(gemm_error([&] {
          raw::matmul(randn({2, 3, 4}, gen), randn({5, 4, 2}, gen));
        }) == "matmul: batch dims of shapes [2, 3, 4] and [5, 4, 2] do not broadcast (2 vs 5)");
  CHECK(gemm_error([&] { raw::matmul(randn({3}, gen), randn({4}, gen)); }) ==
        "matmul: shapes [3] and [4] do not align (3 vs 4)");
  std::string e = gemm_error([&] { raw::matmul(zeros({2, 2}, DType::i64), randn({2, 2}, gen)); });
  CHECK(e.rfind("matmul: ", 0) == 0);
  CHECK(e.find("i64") != std::string::npos);
  e = gemm_error([&] { raw::matmul(randn({2, 2}, gen, DType::f64), randn({2, 2}, gen)); });
  CHECK(e == "matmul: dtypes differ: f64 and f32 (shapes [2, 2] and [2, 2])");
  e = gemm_error([&] { raw::matmul(scalar(2), randn({2}, gen)); });
  CHECK(e.rfind("matmul: shapes [] and [2]", 0) == 0);
  CHECK_THROWS_AS(raw::matmul(Tensor(), randn({2}, gen)), Error);
}

TEST_CASE("linear: x @ w^T + bias against a naive loop") {
  Generator gen(9);
  for (DType dt : {DType::f32, DType::f64}) {
    int64_t N = 7, in = 13, out = 5;
    Tensor x = randn({N, in}, gen, dt), w = randn({out, in}, gen, dt), b = randn({out}, gen, dt);
    std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(),
                        bv = b.to_vector<double>();
    std::vector<double> with_bias, no_bias;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < out; ++j) {
        double s = 0;
        for (int64_t q = 0; q < in; ++q) s += xv[i * in + q] * wv[j * in + q];
        no_bias.push_back(s);
        with_bias.push_back(s + bv[j]);
      }
    check_close(raw::linear(x, w, b), with_bias, {N, out});
    check_close(raw::linear(x, w, Tensor()), no_bias, {N, out});
    // The same values through transposed views of x and w and a strided bias.
    Tensor xt = raw::transpose(x.clone(), 0, 1).contiguous();  // (in, N)
    Tensor wt = raw::transpose(w, 0, 1).contiguous();          // (in, out)
    Tensor b2 = zeros({2 * out}, dt);
    raw::slice(b2, 0, 0, 2 * out, 2).copy_(b);
    check_close(raw::linear(raw::transpose(xt, 0, 1), raw::transpose(wt, 0, 1),
                            raw::slice(b2, 0, 0, 2 * out, 2)),
                with_bias, {N, out});
    CHECK(allocations_during(
              [&] { raw::linear(raw::transpose(xt, 0, 1), raw::transpose(wt, 0, 1), b); }) == 1);
    // Leading dims of x are flattened: (2, 7, in) -> (2, 7, out) repeats the rows.
    Tensor x3 = raw::expand(x, {2, N, in});
    std::vector<double> twice = with_bias;
    twice.insert(twice.end(), with_bias.begin(), with_bias.end());
    check_close(raw::linear(x3, w, b), twice, {2, N, out});
  }
}

TEST_CASE("linear: hand-worked values, zero sizes and errors") {
  Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor w = from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = from_vector<float>({10, 20, 30}, {3});
  CHECK(raw::linear(x, w, b).to_vector<float>() == std::vector<float>{11, 22, 33, 13, 24, 37});
  CHECK(raw::linear(x, w, Tensor()).to_vector<float>() == std::vector<float>{1, 2, 3, 3, 4, 7});
  // in == 0: the output is the bias on every row (or zeros).
  CHECK(raw::linear(zeros({2, 0}), zeros({3, 0}), b).to_vector<float>() ==
        std::vector<float>{10, 20, 30, 10, 20, 30});
  CHECK(raw::linear(zeros({2, 0}), zeros({3, 0}), Tensor()).to_vector<float>() ==
        std::vector<float>(6, 0.0f));
  CHECK(raw::linear(zeros({0, 2}), w, b).shape() == Shape{0, 3});
  // A 1-D input is one row: (in) -> (out).
  Tensor v = from_vector<float>({3, 4}, {2});
  CHECK(raw::linear(v, w, b).shape() == Shape{3});
  CHECK(raw::linear(v, w, b).to_vector<float>() == std::vector<float>{13, 24, 37});
  CHECK(gemm_error([&] {
          raw::linear(zeros({4, 5}), zeros({3, 6}), Tensor());
        }) == "linear: input [4, 5] and weight [3, 6] do not align (5 vs 6)");
  CHECK(gemm_error([&] { raw::linear(x, w, zeros({2})); }) ==
        "linear: bias [2] does not match weight [3, 2] (needs [3])");
  CHECK(gemm_error([&] {
          raw::linear(x, zeros({3, 2}, DType::f64), b);
        }).rfind("linear: ", 0) == 0);
  CHECK(gemm_error([&] { raw::linear(x, w, zeros({3}, DType::f64)); }) ==
        "linear: bias dtype f64 differs from input dtype f32");
  CHECK(gemm_error([&] {
          raw::linear(x, zeros({3, 2, 1}), b);
        }).rfind("linear: input [2, 2]", 0) == 0);
}

TEST_CASE("matmul and linear: products split over threads match the naive loop and 1 thread") {
  // Above raw::kGemmParallelWork the output is split into column or row blocks (or, for a batch
  // of small products, into whole products), one per OpenMP thread; OpenBLAS runs on each.
  Generator gen(11);
  const int before = get_num_threads();
  for (DType dt : {DType::f32, DType::f64}) {
    std::vector<std::pair<Tensor, Tensor>> cases = {
        {randn({64, 300}, gen, dt), randn({300, 160}, gen, dt)},  // columns split
        {raw::transpose(randn({300, 200}, gen, dt), 0, 1),        // rows split, both transposed
         raw::transpose(randn({48, 300}, gen, dt), 0, 1)},
        {randn({40, 260}, gen, dt), randn({260, 129}, gen, dt)},    // a ragged last block
        {randn({16, 27}, gen, dt), randn({64, 27, 100}, gen, dt)},  // batch split (conv-like)
        {randn({8, 50, 60}, gen, dt), randn({8, 60, 70}, gen, dt)},
    };
    for (auto& [a, b] : cases) {
      set_num_threads(2);
      Tensor two = raw::matmul(a, b);
      set_num_threads(1);
      Tensor one = raw::matmul(a, b);
      set_num_threads(before);
      Shape shape;
      std::vector<double> want = naive_matmul(a, b, shape);
      check_close(two, want, shape);
      check_close(one, want, shape);
    }
    Tensor x = randn({128, 300}, gen, dt), w = randn({200, 300}, gen, dt),
           bias = randn({200}, gen, dt);
    set_num_threads(2);
    Tensor two = raw::linear(x, w, bias);
    set_num_threads(1);
    Tensor one = raw::linear(x, w, bias);
    set_num_threads(before);
    Shape shape;
    std::vector<double> want = naive_matmul(x, raw::transpose(w, 0, 1), shape);
    std::vector<double> bv = bias.to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) want[i] += bv[i % 200];
    check_close(two, want, shape);
    check_close(one, want, shape);
  }
  // How many threads a product gets.
  set_num_threads(2);
  CHECK(raw::gemm_threads(8, 8, 8) == 1);         // small: one thread
  CHECK(raw::gemm_threads(128, 1000, 784) == 2);  // a dense layer at batch 128
  CHECK(raw::gemm_threads(1, 40, 1 << 20) == 1);  // too narrow to split into 32-wide blocks
  set_num_threads(1);
  CHECK(raw::gemm_threads(128, 1000, 784) == 1);
  set_num_threads(before);
}

TEST_CASE("gemm log: matmul and linear record the products they hand to BLAS") {
  Generator gen(12);
  std::vector<raw::GemmCall> log;
  raw::set_gemm_log(&log);
  (void)raw::matmul(randn({3, 5}, gen), raw::transpose(randn({4, 5}, gen), 0, 1));
  (void)raw::matmul(randn({6, 5}, gen), randn({2, 5, 7}, gen));  // one product per batch
  (void)raw::linear(randn({9, 5}, gen), randn({4, 5}, gen), Tensor());
  raw::set_gemm_log(nullptr);
  (void)raw::matmul(randn({3, 5}, gen), randn({5, 3}, gen));  // not recorded
  REQUIRE(log.size() == 3);
  CHECK((!log[0].ta && log[0].tb && log[0].M == 3 && log[0].N == 4 && log[0].K == 5 &&
         log[0].count == 1));
  CHECK((log[1].M == 6 && log[1].N == 7 && log[1].K == 5 && log[1].count == 2 &&
         !log[1].a_batched && log[1].b_batched));
  CHECK((log[2].M == 9 && log[2].N == 4 && log[2].K == 5 && log[2].tb));
  CHECK(log[1].flops() == 2.0 * 6 * 7 * 5 * 2);
}
