// Linear: one registered weight and optional bias, and encore::linear as the forward.
#include "nn/linear.h"

namespace encore::nn {

Linear::Linear(int64_t in_features, int64_t out_features, const LinearOptions& options)
    : in_(in_features), out_(out_features) {
  ENCORE_CHECK(in_features > 0 && out_features > 0, "Linear",
               "in_features and out_features must be positive, got ", in_features, " -> ",
               out_features);
  ENCORE_CHECK(is_floating(options.dtype), "Linear", "dtype must be f32 or f64, got ",
               options.dtype);
  weight_ = register_parameter("weight", Tensor({out_, in_}, options.dtype, "Linear"));
  if (options.bias) bias_ = register_parameter("bias", Tensor({out_}, options.dtype, "Linear"));
  init_layer(options.init, weight_, bias_, options.gen ? *options.gen : default_generator());
}

Tensor Linear::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_, "Linear", "expected input (..., ",
               in_, "), got ", x.defined() ? to_string(x.shape()) : "undefined");
  ENCORE_CHECK(x.dtype() == weight_.dtype(), "Linear", "input ", to_string(x.shape()), " is ",
               x.dtype(), " but the weight is ", weight_.dtype(),
               "; convert it with x.to(DType::", weight_.dtype(), ")");
  return linear(x, weight_, bias_);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) +
         (bias_.defined() ? ")" : ", no bias)");
}

}  // namespace encore::nn
