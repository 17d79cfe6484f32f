// Dropout (Srivastava et al. 2014), inverted: in training each element is zeroed with
// probability p and the survivors are scaled by 1 / (1 - p), so evaluation is the identity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "module.h"

namespace encore::nn {

/// Zeroes elements with probability p while training (is_training()); identity in eval mode.
/// Draws from default_generator() unless given a Generator (which must outlive the layer) or
/// seeded with manual_seed(), which gives the layer its own generator:
///   auto drop = std::make_shared<nn::Dropout>(0.5);
///   drop->manual_seed(42);
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);

  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);

  /// Gives the layer its own generator seeded with seed (replacing any borrowed one).
  void manual_seed(uint64_t seed);
  double p() const { return p_; }

  /// "Dropout(p=0.5)".
  std::string describe() const override;

 private:
  Generator& generator() { return own_ ? *own_ : gen_ ? *gen_ : default_generator(); }

  double p_;
  Generator* gen_;
  std::optional<Generator> own_;
};

}  // namespace encore::nn
