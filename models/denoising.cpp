// Denoising: the corruption of inputs (Gaussian and masking noise, clipped) and the batched
// test errors of reconstructions against clean images.
#include "models/denoising.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace encore::models {

Corruption::Corruption(const CorruptionOptions& options) : options_(options) {
  const CorruptionOptions& o = options_;
  ENCORE_CHECK(std::isfinite(o.noise_sigma) && o.noise_sigma >= 0, "Corruption",
               "noise_sigma must be finite and >= 0, got ", o.noise_sigma);
  ENCORE_CHECK(o.mask_prob >= 0 && o.mask_prob <= 1, "Corruption",
               "mask_prob must be in [0, 1], got ", o.mask_prob);
  ENCORE_CHECK(!o.clip || (std::isfinite(o.lo) && std::isfinite(o.hi) && o.lo < o.hi), "Corruption",
               "the clip range [", o.lo, ", ", o.hi, "] must be finite with lo < hi");
}

Tensor Corruption::apply(const Tensor& x, Generator& gen) const {
  ENCORE_CHECK(x.defined(), "Corruption.apply", "input is undefined");
  ENCORE_CHECK(is_floating(x.dtype()), "Corruption.apply", "input ", x.shape(), " has dtype ",
               x.dtype(), " (needs f32 or f64)");
  const CorruptionOptions& o = options_;
  NoGrad no_grad;  // the corruption is data: nothing of it is recorded
  Tensor y = stop_gradient(x);
  if (o.noise_sigma > 0) y = y + randn(x.shape(), gen, x.dtype(), 0, o.noise_sigma);
  if (o.mask_prob > 0) y = y * bernoulli(x.shape(), 1 - o.mask_prob, gen, x.dtype());
  if (o.clip) y = clamp(y, o.lo, o.hi);
  // Always a new tensor: the caller may modify it without touching x.
  return y.storage() == x.storage() ? y.clone() : y;
}

std::string Corruption::describe() const {
  std::ostringstream os;
  os << "Corruption(gaussian sigma " << options_.noise_sigma << ", mask p " << options_.mask_prob;
  if (options_.clip)
    os << ", clipped to [" << options_.lo << ", " << options_.hi << "])";
  else
    os << ", not clipped)";
  return os.str();
}

ReconstructionError reconstruction_error(
    const std::function<Tensor(const Tensor& input)>& reconstruct, const Tensor& input,
    const Tensor& target, int64_t batch_size) {
  const char* op = "reconstruction_error";
  ENCORE_CHECK(input.defined() && target.defined(), op, "input and target must be defined");
  ENCORE_CHECK(input.dim() >= 1 && target.dim() >= 1 && input.size(0) == target.size(0) &&
                   input.size(0) >= 1,
               op, "input ", input.shape(), " and target ", target.shape(),
               " must share a first dim N >= 1");
  ENCORE_CHECK(batch_size >= 1, op, "batch_size must be >= 1, got ", batch_size);
  NoGrad no_grad;
  const int64_t n = input.size(0);
  double bce_sum = 0, sq_sum = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    Tensor in = narrow(input, 0, start, len);
    Tensor want = narrow(target, 0, start, len);
    Tensor got = reconstruct(in);
    ENCORE_CHECK(
        got.defined() && got.dim() >= 1 && got.size(0) == len && got.numel() == want.numel(), op,
        "the reconstruction ", got.defined() ? to_string(got.shape()) : "(undefined)",
        " of input rows ", in.shape(), " does not match the target rows ", want.shape());
    // Sums in f64: a batch holds hundreds of thousands of elements.
    got = cast(reshape(got, want.shape()), DType::f64);
    want = cast(want, DType::f64);
    bce_sum += nn::binary_cross_entropy(got, want, nn::Reduction::sum).item();
    sq_sum += sum(square(got - want)).item();
  }
  return {
      .bce = bce_sum / double(target.numel()), .squared_error = sq_sum / double(n), .images = n};
}

}  // namespace encore::models
