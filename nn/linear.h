// Linear (Keras: Dense): y = x W^T + b over the last dim. Written the way a user writes a layer:
// derive from Module, register the parameters, add a forward.
#pragma once

#include <cstdint>
#include <string>

#include "init.h"
#include "module.h"

namespace encore::nn {

struct LinearOptions {
  /// Adds a learned bias (out).
  bool bias = true;
  /// Weight/bias initialisation; by default the InitConvention's (nn/init.h): Keras' Dense
  /// default (glorot_uniform weight, zero bias) unless set_init_convention(torch).
  Init init = Init::convention;
  /// Parameter dtype (f32 or f64).
  DType dtype = DType::f32;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// A fully connected layer with weight (out, in) and bias (out), PyTorch's layout:
///   auto fc = std::make_shared<nn::Linear>(784, 400);
///   auto fc = std::make_shared<nn::Linear>(784, 400, nn::LinearOptions{.bias = false});
/// Parameters: "weight", "bias".
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, const LinearOptions& options = {});

  /// x: (..., in) -> (..., out) = x W^T + b.
  Tensor forward(const Tensor& x);

  /// (out, in); a handle on the parameter (copy_ into it to set values).
  Tensor weight() const { return weight_; }
  /// (out), or undefined without bias.
  Tensor bias() const { return bias_; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  /// "Linear(784 -> 400)", with ", no bias" when there is none.
  std::string describe() const override;

 private:
  int64_t in_, out_;
  Tensor weight_, bias_;
};

}  // namespace encore::nn
