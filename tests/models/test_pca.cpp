// PCA (the seed-004 baseline, LAPACK's dsyevd on a covariance accumulated with dgemm): against
// covariances whose eigen-decomposition is worked out by hand (2 x 2 and 3 x 3), against a
// power iteration on a covariance computed here with plain loops, orthonormal components, exact
// reconstruction at full rank, the residual of a truncated one equal to the discarded
// eigenvalues, sorted explained variance, dtypes, save/load, and the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "models/models.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::expect_error;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s); }

}  // namespace

TEST_CASE(
    "pca: a 2 x 2 covariance [[10/3, 2], [2, 10/3]] has eigenpairs 16/3, 4/3 on the diagonals") {
  // Centred points (2, 2), (-2, -2), (1, -1), (-1, 1) shifted by (5, -3): Xc^T Xc = [[10, 6],
  // [6, 10]], over N - 1 = 3. Eigenvalues 10/3 +- 2; eigenvectors (1, 1)/sqrt2, (1, -1)/sqrt2.
  Tensor x = f64({7, -1, 3, -5, 6, -4, 4, -2}, {4, 2});
  models::PCA pca(2, 2);
  CHECK_FALSE(pca.fitted());
  pca.fit(x);
  CHECK(pca.fitted());
  const double r = 1 / std::sqrt(2.0);
  check_close("mean", pca.mean(), f64({5, -3}, {2}), 1e-12, 0);
  check_close("variance", pca.explained_variance(), f64({16.0 / 3, 4.0 / 3}, {2}), 1e-12, 1e-12);
  // Signs: each component's largest-magnitude entry positive (the first on a tie).
  check_close("components", pca.components(), f64({r, r, r, -r}, {2, 2}), 1e-12, 0);
  CHECK(pca.total_variance() == doctest::Approx(20.0 / 3));
  check_close("ratio", pca.explained_variance_ratio(), f64({0.8, 0.2}, {2}), 1e-12, 1e-12);
  // The codes: projections on the components, e.g. (7, -1) - mean = (2, 2) -> (2 sqrt2, 0).
  check_close("codes", pca.encode(x), f64({4 * r, 0, -4 * r, 0, 0, 2 * r, 0, -2 * r}, {4, 2}),
              1e-12, 0);
}

TEST_CASE("pca: 3 x 3 axis-aligned data gives the axes, largest variance first") {
  // (+-3, 0, 0), (0, +-1, 0), (0, 0, +-2): covariance diag(18, 2, 8) / 5.
  Tensor x = f64({3, 0, 0, -3, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 2, 0, 0, -2}, {6, 3});
  models::PCA pca(3, 3);
  pca.fit(x);
  check_close("variance", pca.explained_variance(), f64({3.6, 1.6, 0.4}, {3}), 1e-12, 1e-12);
  check_close("components", pca.components(), f64({1, 0, 0, 0, 0, 1, 0, 1, 0}, {3, 3}), 1e-12, 0);
  CHECK(pca.describe() == "PCA(3 -> 3, fitted on 6 samples)");
}

TEST_CASE("pca: random data - orthonormal, exact at full rank, truncation leaves the rest") {
  const int64_t n = 60, d = 7;
  Generator gen(42);
  // Correlated columns: x = g A with a random mixing A, plus an offset.
  Tensor x = raw::matmul(randn({n, d}, gen, DType::f64), randn({d, d}, gen, DType::f64)) + 3.0;
  std::vector<double> xv = x.to_vector<double>();

  // The covariance by plain loops, and its top eigenvector by power iteration.
  std::vector<double> mu(d, 0), cov(d * d, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mu[j] += xv[i * d + j] / n;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = 0; b < d; ++b)
        cov[a * d + b] += (xv[i * d + a] - mu[a]) * (xv[i * d + b] - mu[b]) / (n - 1);
  std::vector<double> v(d, 1.0);
  double lambda = 0;
  for (int it = 0; it < 2000; ++it) {
    std::vector<double> w(d, 0);
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = 0; b < d; ++b) w[a] += cov[a * d + b] * v[b];
    double norm = 0;
    for (double e : w) norm += e * e;
    norm = std::sqrt(norm);
    lambda = norm;
    for (int64_t a = 0; a < d; ++a) v[a] = w[a] / norm;
  }
  int64_t arg = 0;
  for (int64_t a = 1; a < d; ++a)
    if (std::abs(v[a]) > std::abs(v[arg])) arg = a;
  if (v[arg] < 0)
    for (double& e : v) e = -e;
  double trace = 0;
  for (int64_t a = 0; a < d; ++a) trace += cov[a * d + a];

  models::PCA full(d, d);
  full.fit(x);
  check_close("mean", full.mean(), f64(mu, {d}), 1e-12, 1e-12);
  check_close("top component", raw::select(full.components(), 0, 0), f64(v, {d}), 1e-8, 0);
  CHECK(full.explained_variance().to_vector<double>()[0] == doctest::Approx(lambda).epsilon(1e-10));
  CHECK(full.total_variance() == doctest::Approx(trace).epsilon(1e-12));
  Tensor c = full.components();
  check_close("C C^T = I", raw::matmul(c, raw::transpose(c, 0, 1)), eye(d, -1, DType::f64), 1e-12,
              0);
  std::vector<double> ev = full.explained_variance().to_vector<double>();
  double ev_sum = 0;
  for (size_t i = 0; i < ev.size(); ++i) {
    ev_sum += ev[i];
    if (i > 0) CHECK(ev[i] <= ev[i - 1]);
  }
  CHECK(ev_sum == doctest::Approx(trace).epsilon(1e-10));
  check_close("full-rank reconstruction", full.forward(x), x, 1e-10, 1e-12);

  // Keeping k = 3: the summed squared residual is (N - 1) times the discarded eigenvalues.
  models::PCA part(d, 3);
  part.fit(x);
  check_close("same leading components", part.components(), raw::narrow(c, 0, 0, 3), 1e-9, 0);
  Tensor res = raw::reduce(raw::ReduceOp::sum, models::squared_error_per_image(part.forward(x), x));
  CHECK(res.item() == doctest::Approx((n - 1) * (ev[3] + ev[4] + ev[5] + ev[6])).epsilon(1e-9));
  CHECK(part.encode(x).shape() == Shape{n, 3});

  // f32 data in, f32 codes out, values as the f64 fit gives them.
  Tensor x32 = x.to(DType::f32);
  models::PCA p32(d, 3);
  p32.fit(x32);
  CHECK(p32.encode(x32).dtype() == DType::f32);
  CHECK(p32.decode(p32.encode(x32)).dtype() == DType::f32);
  check_close("f32 fit", p32.explained_variance(), part.explained_variance(), 1e-4, 1e-5);
}

TEST_CASE("pca: save and load keep a fitted PCA; misuse throws naming the op and shapes") {
  Generator gen(1);
  Tensor x = randn({20, 5}, gen, DType::f64);
  models::PCA pca(5, 2);
  std::string e = expect_error([&] { pca.encode(x); });
  CHECK(e.find("PCA.encode") != std::string::npos);
  CHECK(e.find("not been fitted") != std::string::npos);
  pca.fit(x);
  auto path = std::filesystem::temp_directory_path() / "encore_test_pca.safetensors";
  pca.save(path.string());
  models::PCA back(5, 2);
  back.load(path.string());
  std::filesystem::remove(path);
  CHECK(back.fitted());
  check_close("codes after load", back.encode(x), pca.encode(x), 0, 0);

  e = expect_error([&] { pca.encode(randn({3, 4}, gen)); });
  CHECK(e.find("[3, 4]") != std::string::npos);
  e = expect_error([&] { pca.decode(randn({3, 3}, gen)); });
  CHECK(e.find("PCA.decode") != std::string::npos);
  CHECK(e.find("[3, 3]") != std::string::npos);
  CHECK(expect_error([&] { models::PCA bad(5, 6); }).find("components 6") != std::string::npos);
  CHECK(expect_error([&] { pca.fit(randn({1, 5}, gen)); }).find("at least 2") != std::string::npos);
  CHECK(expect_error([&] { pca.fit(arange(10)); }).find("PCA.fit") != std::string::npos);
}
