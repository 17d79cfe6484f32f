// Initialisers: in-place fills of parameters from an explicit Generator (see init.h for the
// formulas), and the per-layer Init rule.
#include "nn/init.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <vector>

// LAPACK's Fortran entry points, exported by OpenBLAS (Debian ships no lapacke.h with it).
// QR of a column-major m x n matrix (dgeqrf) and forming its first n columns of Q (dorgqr).
extern "C" {
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
             const int* lwork, int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau,
             double* work, const int* lwork, int* info);
}

namespace encore::nn::init {

namespace {

void check_float(const char* op, const Tensor& t) {
  ENCORE_CHECK(t.defined(), op, "tensor is undefined");
  ENCORE_CHECK(is_floating(t.dtype()), op, "tensor has dtype ", t.dtype(), " (shape ", t.shape(),
               "); initialisers fill f32 or f64 tensors");
}

/// Copies freshly drawn values into t (outside any tape).
Tensor fill_from(Tensor t, const Tensor& values) {
  NoGrad no_grad;
  t.copy_(values);
  return t;
}

Tensor uniform_checked(const char* op, Tensor t, double bound, Generator& gen) {
  check_float(op, t);
  return fill_from(t, rand(t.shape(), gen, t.dtype(), -bound, bound));
}

Tensor normal_checked(const char* op, Tensor t, double std, Generator& gen) {
  check_float(op, t);
  return fill_from(t, randn(t.shape(), gen, t.dtype(), 0, std));
}

Fans fans_for(const char* op, const Tensor& t) {
  check_float(op, t);
  ENCORE_CHECK(t.dim() >= 1, op, "needs a tensor with at least 1 dim to compute fans, got shape ",
               t.shape());
  Fans f = compute_fans(t.shape());
  ENCORE_CHECK(f.fan_in > 0 && f.fan_out > 0, op, "shape ", t.shape(),
               " has zero fan_in or fan_out");
  return f;
}

}  // namespace

Fans compute_fans(const Shape& shape) {
  ENCORE_CHECK(shape.size() >= 1, "init::compute_fans", "needs at least 1 dim, got shape ", shape);
  if (shape.size() == 1) return {shape[0], shape[0]};
  int64_t receptive = 1;
  for (int i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

double relu_gain(double negative_slope) {
  return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
}

Tensor zeros(Tensor t) { return constant(t, 0); }
Tensor ones(Tensor t) { return constant(t, 1); }

Tensor constant(Tensor t, double value) {
  check_float("init::constant", t);
  NoGrad no_grad;
  t.fill_(value);
  return t;
}

Tensor uniform(Tensor t, double lo, double hi, Generator& gen) {
  check_float("init::uniform", t);
  ENCORE_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "init::uniform",
               "needs finite lo <= hi, got lo = ", lo, ", hi = ", hi);
  return fill_from(t, rand(t.shape(), gen, t.dtype(), lo, hi));
}

Tensor normal(Tensor t, double mean, double std, Generator& gen) {
  check_float("init::normal", t);
  ENCORE_CHECK(std::isfinite(mean) && std::isfinite(std) && std >= 0, "init::normal",
               "needs a finite mean and std >= 0, got mean = ", mean, ", std = ", std);
  return fill_from(t, randn(t.shape(), gen, t.dtype(), mean, std));
}

Tensor glorot_uniform(Tensor t, Generator& gen, double gain) {
  Fans f = fans_for("init::glorot_uniform", t);
  return uniform_checked("init::glorot_uniform", t,
                         gain * std::sqrt(6.0 / double(f.fan_in + f.fan_out)), gen);
}

Tensor glorot_normal(Tensor t, Generator& gen, double gain) {
  Fans f = fans_for("init::glorot_normal", t);
  return normal_checked("init::glorot_normal", t,
                        gain * std::sqrt(2.0 / double(f.fan_in + f.fan_out)), gen);
}

Tensor he_normal(Tensor t, Generator& gen, double negative_slope) {
  Fans f = fans_for("init::he_normal", t);
  return normal_checked("init::he_normal", t,
                        relu_gain(negative_slope) / std::sqrt(double(f.fan_in)), gen);
}

Tensor he_uniform(Tensor t, Generator& gen, double negative_slope) {
  Fans f = fans_for("init::he_uniform", t);
  return uniform_checked("init::he_uniform", t,
                         relu_gain(negative_slope) * std::sqrt(3.0 / double(f.fan_in)), gen);
}

Tensor orthogonal(Tensor t, Generator& gen, double gain) {
  const char* op = "init::orthogonal";
  check_float(op, t);
  ENCORE_CHECK(t.dim() >= 2, op, "needs at least 2 dims, got shape ", t.shape());
  const int64_t rows = t.size(0), cols = t.numel() / std::max<int64_t>(rows, 1);
  ENCORE_CHECK(rows > 0 && cols > 0, op, "shape ", t.shape(), " is empty");
  // Factor a Gaussian m x n matrix with m >= n (column-major, lda = m); the result is its
  // (m x n) Q, transposed back when rows < cols.
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  ENCORE_CHECK(m <= INT32_MAX && m * n <= INT32_MAX, op, "shape ", t.shape(),
               " is too large for LAPACK");
  std::vector<double> a(static_cast<size_t>(m * n));
  for (double& v : a) v = gen.normal();
  const int mi = int(m), ni = int(n);
  std::vector<double> tau(static_cast<size_t>(n));
  int info = 0, lwork = -1;
  double query = 0;
  dgeqrf_(&mi, &ni, a.data(), &mi, tau.data(), &query, &lwork, &info);
  lwork = std::max(1, int(query));
  std::vector<double> work(static_cast<size_t>(lwork));
  dgeqrf_(&mi, &ni, a.data(), &mi, tau.data(), work.data(), &lwork, &info);
  ENCORE_CHECK(info == 0, op, "LAPACK dgeqrf failed (info ", info, ")");
  // Signs of R's diagonal (the upper triangle now holds R), folded into Q's columns below.
  std::vector<double> sign(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) sign[j] = a[j + j * m] < 0 ? -1.0 : 1.0;
  lwork = -1;
  dorgqr_(&mi, &ni, &ni, a.data(), &mi, tau.data(), &query, &lwork, &info);
  lwork = std::max(1, int(query));
  work.resize(static_cast<size_t>(lwork));
  dorgqr_(&mi, &ni, &ni, a.data(), &mi, tau.data(), work.data(), &lwork, &info);
  ENCORE_CHECK(info == 0, op, "LAPACK dorgqr failed (info ", info, ")");
  // Q(i, j) = a[i + j m]. W (rows x cols) row-major: W = Q if rows >= cols, else Q^T.
  std::vector<double> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = rows >= cols ? r : c, j = rows >= cols ? c : r;
      w[size_t(r * cols + c)] = gain * sign[j] * a[size_t(i + j * m)];
    }
  return fill_from(t, from_vector(w, t.shape()));
}

}  // namespace encore::nn::init

namespace encore::nn {

const char* init_name(Init init) {
  switch (init) {
    case Init::glorot_uniform:
      return "glorot_uniform";
    case Init::glorot_normal:
      return "glorot_normal";
    case Init::he_uniform:
      return "he_uniform";
    case Init::he_normal:
      return "he_normal";
    case Init::orthogonal:
      return "orthogonal";
    case Init::torch_default:
      return "torch_default";
    case Init::convention:
      return "convention";
  }
  return "unknown";
}

namespace {
std::atomic<InitConvention> convention{InitConvention::mixed};
}  // namespace

void set_init_convention(InitConvention c) { convention.store(c); }
InitConvention init_convention() { return convention.load(); }

Init resolve_init(Init init) {
  if (init != Init::convention) return init;
  return init_convention() == InitConvention::torch ? Init::torch_default : Init::glorot_uniform;
}

void init_layer(Init init, Tensor weight, Tensor bias, Generator& gen) {
  switch (resolve_init(init)) {
    case Init::glorot_uniform:
      init::glorot_uniform(weight, gen);
      break;
    case Init::glorot_normal:
      init::glorot_normal(weight, gen);
      break;
    case Init::he_uniform:
      init::he_uniform(weight, gen);
      break;
    case Init::he_normal:
      init::he_normal(weight, gen);
      break;
    case Init::orthogonal:
      init::orthogonal(weight, gen);
      break;
    case Init::torch_default: {
      init::he_uniform(weight, gen, std::sqrt(5.0));
      if (bias.defined()) {
        const double bound = 1.0 / std::sqrt(double(init::compute_fans(weight.shape()).fan_in));
        init::uniform(bias, -bound, bound, gen);
      }
      return;
    }
    default:
      ENCORE_FAIL("init_layer", "unknown Init value ", int(init));
  }
  if (bias.defined()) init::zeros(bias);
}

}  // namespace encore::nn
