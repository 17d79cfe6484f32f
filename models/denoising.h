// Denoising autoencoders (seed 002; Vincent et al. 2008): any autoencoder of models/ trained to
// reproduce the clean input from a corrupted one. This file holds the corruption (additive
// Gaussian noise and masking noise, drawn from an explicit Generator and clipped back to the
// pixel range [0, 1]), the denoising loss of any model with `loss(input, target)`, and the
// test errors against clean images by which a denoiser and a plain autoencoder are compared:
//
//   models::Corruption noise({.noise_sigma = 0.5});
//   Tensor loss = models::denoising_loss(model, x, noise, gen);   // model.loss(noisy, x)
//   models::ReconstructionError e = models::reconstruction_error(
//       [&](const Tensor& in) { return model.forward(in); }, noise.apply(test_x, gen2), test_x);
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>

#include "../nn/nn.h"

namespace encore::models {

struct CorruptionOptions {
  /// Standard deviation of the additive Gaussian noise (0: none).
  double noise_sigma = 0.5;
  /// Probability that an input element is set to 0 (masking noise, as dropout but without
  /// rescaling the rest; 0: none).
  double mask_prob = 0;
  /// Clip the result to [lo, hi] (the pixel range) so it stays a valid BCE input.
  bool clip = true;
  double lo = 0, hi = 1;
};

/// The corruption of a denoising autoencoder. Per element: x + sigma e (e ~ N(0, 1)), then set
/// to 0 with probability mask_prob, then clipped to [lo, hi]. The result is data, not a
/// function of x on any tape (no gradient flows into the corruption).
class Corruption {
 public:
  explicit Corruption(const CorruptionOptions& options = {});

  /// x: any floating shape -> a corrupted copy of the same shape and dtype. Draws the noise
  /// (numel values, when noise_sigma > 0) and then the mask (numel values, when mask_prob > 0)
  /// from gen, so the same Generator state gives the same corruption.
  Tensor apply(const Tensor& x, Generator& gen) const;

  const CorruptionOptions& options() const { return options_; }
  /// "Corruption(gaussian sigma 0.5, mask p 0, clipped to [0, 1])".
  std::string describe() const;

 private:
  CorruptionOptions options_;
};

/// A model a denoising loss can train: a loss of reconstructing a target from an input.
template <class M>
concept DenoisingModel = requires(M& m, const Tensor& x) {
  { m.loss(x, x) } -> std::convertible_to<Tensor>;
};

/// The denoising training loss: model.loss(corruption.apply(clean, gen), clean), a scalar.
/// clean: what the model's loss accepts, e.g. (N, 1, 28, 28) or (N, 784), values in [0, 1].
template <DenoisingModel M>
Tensor denoising_loss(M& model, const Tensor& clean, const Corruption& corruption, Generator& gen) {
  return model.loss(corruption.apply(clean, gen), clean);
}

/// Test errors of reconstructions against clean targets.
struct ReconstructionError {
  /// Binary cross-entropy, the mean over every element (the conv model's training loss).
  double bce = 0;
  /// Squared error per image, sum over its elements of (recon - target)^2, mean over images.
  double squared_error = 0;
  int64_t images = 0;
};

/// Runs reconstruct over `input` in batches of batch_size (under NoGrad; set eval mode
/// yourself) and compares each output with the same rows of `target`. input, target: (N, ...)
/// with the same first dim; reconstruct's output must have target's numel per row (e.g. a
/// dense model's (n, 784) against (n, 1, 28, 28) targets) and values in [0, 1].
ReconstructionError reconstruction_error(
    const std::function<Tensor(const Tensor& input)>& reconstruct, const Tensor& input,
    const Tensor& target, int64_t batch_size = 500);

}  // namespace encore::models
