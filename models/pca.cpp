// PCA: the mean and the covariance accumulated in f64 chunks with cblas_dsyrk, its
// eigen-decomposition with LAPACK's dsyevd (from OpenBLAS), and encode/decode as projections.
#include "models/pca.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <vector>

// LAPACK's Fortran entry point, exported by OpenBLAS (Debian ships no lapacke.h with it): all
// eigenvalues (ascending) and eigenvectors of a symmetric n x n matrix, divide and conquer. The
// two trailing arguments are the hidden lengths gfortran passes for CHARACTER arguments.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info, std::size_t jobz_len, std::size_t uplo_len);

namespace encore::models {

namespace {

/// The rows of a contiguous (n, D) f32 or f64 chunk converted to f64 and centred.
void centred_rows(const Tensor& x, int64_t n, const std::vector<double>& mean,
                  std::vector<double>& out) {
  const int64_t d = x.size(1);
  if (x.dtype() == DType::f32) {
    const float* p = x.data<float>();
    for (int64_t i = 0; i < n * d; ++i) out[size_t(i)] = double(p[i]) - mean[size_t(i % d)];
  } else {
    const double* p = x.data<double>();
    for (int64_t i = 0; i < n * d; ++i) out[size_t(i)] = p[i] - mean[size_t(i % d)];
  }
}

}  // namespace

PCA::PCA(int64_t dim, int64_t components) : dim_(dim), k_(components) {
  ENCORE_CHECK(dim > 0 && components >= 1 && components <= dim, "PCA",
               "needs 1 <= components <= dim, got dim ", dim, ", components ", components);
  // LAPACK takes int sizes; a covariance this large would not fit in memory anyway.
  ENCORE_CHECK(dim <= 46340, "PCA", "dim ", dim, " is too large for a dense covariance");
  mean_ = register_buffer("mean", zeros({dim}, DType::f64));
  components_ = register_buffer("components", zeros({components, dim}, DType::f64));
  explained_ = register_buffer("explained_variance", zeros({components}, DType::f64));
  total_ = register_buffer("total_variance", zeros(Shape{}, DType::f64));
  samples_ = register_buffer("num_samples", zeros(Shape{}, DType::i64));
}

Tensor PCA::flat(const char* op, const Tensor& x, int64_t width, const char* what) const {
  ENCORE_CHECK(x.defined(), op, what, " is undefined");
  int64_t per = 1;
  for (int d = 1; d < x.dim(); ++d) per *= x.size(d);
  ENCORE_CHECK(x.dim() >= 2 && per == width, op, "expected ", what, " (N, ", width,
               ") (or (N, ...) with ", width, " elements per sample), got ", x.shape());
  ENCORE_CHECK(is_floating(x.dtype()), op, what, " must be f32 or f64, got ", x.dtype());
  return x.dim() == 2 ? x : reshape(x, {x.size(0), width});
}

bool PCA::fitted() const { return samples_.item<int64_t>() > 0; }

void PCA::check_fitted(const char* op) const {
  ENCORE_CHECK(fitted(), op, "the PCA(", dim_, " -> ", k_, ") has not been fitted (call fit)");
}

PCA& PCA::fit(const Tensor& x_in) {
  NoGrad no_grad;
  Tensor x = flat("PCA.fit", x_in, dim_, "data").contiguous();
  return fit(x.size(0), [&](int64_t start, int64_t len) { return narrow(x, 0, start, len); });
}

PCA& PCA::fit(int64_t n, const std::function<Tensor(int64_t start, int64_t len)>& get_rows) {
  const char* op = "PCA.fit";
  NoGrad no_grad;
  const int64_t d = dim_;
  ENCORE_CHECK(n >= 2, op, "needs at least 2 samples, got ", n);
  // Each chunk is asked for twice (the mean pass, then the covariance pass) and checked.
  auto chunk_of = [&](int64_t r0, int64_t b) {
    Tensor c = get_rows(r0, b);
    ENCORE_CHECK(c.defined() && (c.dtype() == DType::f32 || c.dtype() == DType::f64) &&
                     c.shape() == Shape({b, d}),
                 op, "rows(", r0, ", ", b, ") must be (", b, ", ", d, ") f32 or f64, got ",
                 c.defined() ? c.shape() : Shape{});
    return c.contiguous();
  };

  // Mean in f64, one pass.
  std::vector<double> mu(size_t(d), 0.0), chunk;
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(n, 2048));
  chunk.resize(size_t(rows * d));
  std::vector<double> zero(size_t(d), 0.0);
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    int64_t b = std::min(rows, n - r0);
    centred_rows(chunk_of(r0, b), b, zero, chunk);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < d; ++j) mu[size_t(j)] += chunk[size_t(i * d + j)];
  }
  for (double& m : mu) m /= double(n);

  // Covariance (D, D) = sum over chunks of Xc^T Xc, then / (N - 1).
  std::vector<double> cov(size_t(d * d), 0.0);
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    int64_t b = std::min(rows, n - r0);
    centred_rows(chunk_of(r0, b), b, mu, chunk);
    // Only the upper triangle (row-major) is formed: dsyrk does half of dgemm's work.
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, int(d), int(b), 1.0, chunk.data(), int(d),
                1.0, cov.data(), int(d));
  }
  double total = 0;
  for (int64_t j = 0; j < d; ++j) total += cov[size_t(j * d + j)] / double(n - 1);
  for (double& c : cov) c /= double(n - 1);

  // Eigen-decomposition. LAPACK reads `cov` column-major, where the row-major upper triangle
  // is the lower one ("L"). On return the eigenvalues w ascend and column j of `cov`
  // (column-major: cov[j*d ... j*d + d)) is the unit eigenvector of w[j].
  std::vector<double> w(static_cast<size_t>(d));
  int nd = int(d), info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_("V", "L", &nd, cov.data(), &nd, w.data(), &work_query, &lwork, &iwork_query, &liwork,
          &info, 1, 1);
  ENCORE_CHECK(info == 0, op, "LAPACK dsyevd workspace query failed (info ", info, ")");
  lwork = int(work_query);
  liwork = iwork_query;
  std::vector<double> work(size_t(std::max(lwork, 1)));
  std::vector<int> iwork(size_t(std::max(liwork, 1)));
  dsyevd_("V", "L", &nd, cov.data(), &nd, w.data(), work.data(), &lwork, iwork.data(), &liwork,
          &info, 1, 1);
  ENCORE_CHECK(info == 0, op, "LAPACK dsyevd did not converge (info ", info, ") on ", n,
               " samples");

  // The k largest, in decreasing order, each with its largest-magnitude entry positive.
  std::vector<double> comp(static_cast<size_t>(k_ * d)), var(static_cast<size_t>(k_));
  for (int64_t c = 0; c < k_; ++c) {
    int64_t j = d - 1 - c;
    const double* v = cov.data() + j * d;
    // The sign: that of the first entry whose magnitude is the largest up to round-off, so
    // that exact ties (e.g. (1, -1) / sqrt 2) are settled the same way on every machine.
    double biggest = 0;
    for (int64_t i = 0; i < d; ++i) biggest = std::max(biggest, std::abs(v[i]));
    int64_t arg = 0;
    while (std::abs(v[arg]) < biggest * (1 - 1e-9)) ++arg;
    double sign = v[arg] < 0 ? -1.0 : 1.0;
    for (int64_t i = 0; i < d; ++i) comp[size_t(c * d + i)] = sign * v[i];
    var[size_t(c)] = std::max(w[size_t(j)], 0.0);  // round-off can make a zero eigenvalue < 0
  }
  mean_.copy_(from_vector(mu, {d}));
  components_.copy_(from_vector(comp, {k_, d}));
  explained_.copy_(from_vector(var, {k_}));
  total_.fill_(total);
  samples_.fill_(double(n));
  return *this;
}

Tensor PCA::encode(const Tensor& x_in) const {
  const char* op = "PCA.encode";
  check_fitted(op);
  Tensor x = flat(op, x_in, dim_, "input");
  // (N, D) - (D) -> (N, D) @ (D, k) -> (N, k), in f64, then back to x's dtype.
  Tensor z = matmul(cast(x, DType::f64) - mean_, transpose(components_, 0, 1));
  return cast(z, x.dtype());
}

Tensor PCA::decode(const Tensor& z) const {
  const char* op = "PCA.decode";
  check_fitted(op);
  ENCORE_CHECK(z.defined() && z.dim() == 2 && z.size(1) == k_, op, "expected codes (N, ", k_,
               "), got ", z.defined() ? to_string(z.shape()) : "undefined");
  ENCORE_CHECK(is_floating(z.dtype()), op, "codes must be f32 or f64, got ", z.dtype());
  // (N, k) @ (k, D) + (D) -> (N, D).
  return cast(matmul(cast(z, DType::f64), components_) + mean_, z.dtype());
}

Tensor PCA::explained_variance_ratio() const {
  check_fitted("PCA.explained_variance_ratio");
  double t = total_variance();
  return t > 0 ? explained_ / t : zeros_like(explained_);
}

std::string PCA::describe() const {
  std::string s = "PCA(" + std::to_string(dim_) + " -> " + std::to_string(k_);
  if (fitted()) s += ", fitted on " + std::to_string(samples_.item<int64_t>()) + " samples";
  return s + ")";
}

}  // namespace encore::models
