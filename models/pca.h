// PCA: the linear baseline seed 004 compares its autoencoder against, fitted in f64 through
// LAPACK (OpenBLAS's dsyevd on the covariance, which cblas_dsyrk - the symmetric half of a
// dgemm - accumulates in chunks, so the 60000 x 784 training set never needs an f64 copy).
// It encodes and decodes like the autoencoders, so the two compare in the same run:
//   models::PCA pca(784, 30);
//   pca.fit(train.images);                        // (N, 784), f32 or f64
//   Tensor z = pca.encode(test.images);           // (N, 30)
//   Tensor r = pca.decode(z);                     // (N, 784), the projection onto 30 components
// It is a Module with buffers "mean" (D), "components" (k, D), "explained_variance" (k),
// "total_variance" () and "num_samples" () (i64), all f64, so save()/load() keep a fitted PCA.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "../nn/nn.h"

namespace encore::models {

class PCA : public nn::Module {
 public:
  /// A PCA of `dim`-feature data keeping `components` directions (1 <= components <= dim).
  PCA(int64_t dim, int64_t components);

  /// Fits to x: (N, dim) (or (N, ...) with dim elements per sample), N >= 2, f32 or f64: the
  /// mean, and the top eigenvectors of the covariance sum (x - mean)^T (x - mean) / (N - 1),
  /// largest variance first. Each component's sign is fixed so that its entry of largest
  /// magnitude (the first one on a tie, up to a relative 1e-9) is positive. Returns *this.
  PCA& fit(const Tensor& x);
  /// The same fit over n samples given in chunks: rows(start, len) returns samples
  /// [start, start + len) as (len, dim) f32 or f64, so the data need not be one matrix (e.g.
  /// MNIST kept as bytes: [&](int64_t s, int64_t l) { return mnist.images(s, l); }). The
  /// chunks are those fit(x) takes, so the result is bitwise fit(x)'s.
  PCA& fit(int64_t n, const std::function<Tensor(int64_t start, int64_t len)>& rows);
  /// x: (N, dim) -> (N, k) = (x - mean) components^T, in x's dtype.
  Tensor encode(const Tensor& x) const;
  /// z: (N, k) -> (N, dim) = z components + mean, in z's dtype.
  Tensor decode(const Tensor& z) const;
  /// x: (N, dim) -> decode(encode(x)), the projection onto the fitted subspace.
  Tensor forward(const Tensor& x) const { return decode(encode(x)); }

  bool fitted() const;
  int64_t dim() const { return dim_; }
  int64_t num_components() const { return k_; }
  /// (D) f64.
  Tensor mean() const { return mean_; }
  /// (k, D) f64, orthonormal rows, largest variance first.
  Tensor components() const { return components_; }
  /// (k) f64: the variance of the data along each component (covariance eigenvalues), sorted
  /// in decreasing order.
  Tensor explained_variance() const { return explained_; }
  /// (k) f64: explained_variance / total variance (trace of the covariance).
  Tensor explained_variance_ratio() const;
  /// The covariance trace (sum of every feature's variance).
  double total_variance() const { return total_.item(); }

  /// "PCA(784 -> 30)", with ", fitted on N samples" once fitted.
  std::string describe() const override;

 private:
  void check_fitted(const char* op) const;
  Tensor flat(const char* op, const Tensor& x, int64_t width, const char* what) const;

  int64_t dim_, k_;
  Tensor mean_, components_, explained_, total_, samples_;
};

}  // namespace encore::models
