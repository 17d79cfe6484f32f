// GaussianNoise and MaskingNoise: draw the corruption as a constant tensor (no gradient flows
// into it) and combine it with the input through the differentiable ops.
#include "nn/noise.h"

#include <cmath>
#include <sstream>

namespace encore::nn {

namespace {
void check_input(const char* layer, const Tensor& x) {
  ENCORE_CHECK(x.defined(), layer, "input is undefined");
  ENCORE_CHECK(is_floating(x.dtype()), layer, "input ", x.shape(), " has dtype ", x.dtype(),
               " (needs f32 or f64)");
}
}  // namespace

GaussianNoise::GaussianNoise(double stddev, const NoiseOptions& options)
    : stddev_(stddev), always_(options.always), gen_(options.gen) {
  ENCORE_CHECK(std::isfinite(stddev) && stddev >= 0, "GaussianNoise",
               "stddev must be finite and >= 0, got ", stddev);
}

Tensor GaussianNoise::forward(const Tensor& x) {
  check_input("GaussianNoise", x);
  if ((!is_training() && !always_) || stddev_ == 0) return x;
  return x + randn(x.shape(), generator(), x.dtype(), 0, stddev_);
}

std::string GaussianNoise::describe() const {
  std::ostringstream os;
  os << "GaussianNoise(stddev=" << stddev_ << (always_ ? ", always)" : ")");
  return os.str();
}

MaskingNoise::MaskingNoise(double p, const NoiseOptions& options)
    : p_(p), always_(options.always), gen_(options.gen) {
  ENCORE_CHECK(p >= 0 && p <= 1, "MaskingNoise", "p must be in [0, 1], got ", p);
}

Tensor MaskingNoise::forward(const Tensor& x) {
  check_input("MaskingNoise", x);
  if ((!is_training() && !always_) || p_ == 0) return x;
  return x * bernoulli(x.shape(), 1 - p_, generator(), x.dtype());
}

std::string MaskingNoise::describe() const {
  std::ostringstream os;
  os << "MaskingNoise(p=" << p_ << (always_ ? ", always)" : ")");
  return os.str();
}

}  // namespace encore::nn
