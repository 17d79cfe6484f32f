// Input corruption for denoising autoencoders (Vincent et al. 2008; seed 002): additive
// Gaussian noise, and masking noise that zeroes a random fraction of the inputs WITHOUT
// rescaling the rest (unlike Dropout). Both act in training mode only, unless `.always` is set
// (e.g. to corrupt a validation batch the same way).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "module.h"

namespace encore::nn {

struct NoiseOptions {
  /// Corrupt in eval mode too.
  bool always = false;
  /// Random source (must outlive the layer); nullptr means default_generator().
  Generator* gen = nullptr;
};

/// x + e, e ~ N(0, stddev^2) elementwise (Keras GaussianNoise). The noise is a constant: the
/// gradient w.r.t. x is the identity.
class GaussianNoise : public Module {
 public:
  explicit GaussianNoise(double stddev, const NoiseOptions& options = {});

  /// x: any floating shape -> same shape.
  Tensor forward(const Tensor& x);

  /// Gives the layer its own generator seeded with seed.
  void manual_seed(uint64_t seed) { own_.emplace(seed); }
  double stddev() const { return stddev_; }

  /// "GaussianNoise(stddev=0.1)".
  std::string describe() const override;

 private:
  Generator& generator() { return own_ ? *own_ : gen_ ? *gen_ : default_generator(); }

  double stddev_;
  bool always_;
  Generator* gen_;
  std::optional<Generator> own_;
};

/// x * m, m ~ Bernoulli(1 - p) elementwise: each input is set to 0 with probability p and the
/// others are kept as they are (masking noise of denoising autoencoders).
class MaskingNoise : public Module {
 public:
  explicit MaskingNoise(double p, const NoiseOptions& options = {});

  /// x: any floating shape -> same shape.
  Tensor forward(const Tensor& x);

  /// Gives the layer its own generator seeded with seed.
  void manual_seed(uint64_t seed) { own_.emplace(seed); }
  double p() const { return p_; }

  /// "MaskingNoise(p=0.3)".
  std::string describe() const override;

 private:
  Generator& generator() { return own_ ? *own_ : gen_ ? *gen_ : default_generator(); }

  double p_;
  bool always_;
  Generator* gen_;
  std::optional<Generator> own_;
};

}  // namespace encore::nn
