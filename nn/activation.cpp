// Activation modules: argument checks and the forwarding calls to the differentiable ops.
#include "nn/activation.h"

#include <cmath>
#include <sstream>

namespace encore::nn {

namespace {
template <class T>
std::string with_arg(const char* name, T value) {
  std::ostringstream os;
  os << name << "(" << value << ")";
  return os.str();
}
}  // namespace

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

LeakyReLU::LeakyReLU(double negative_slope) : slope_(negative_slope) {
  ENCORE_CHECK(std::isfinite(negative_slope), "LeakyReLU", "negative_slope must be finite, got ",
               negative_slope);
}
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, slope_); }
std::string LeakyReLU::describe() const { return with_arg("LeakyReLU", slope_); }

ELU::ELU(double alpha) : alpha_(alpha) {
  ENCORE_CHECK(std::isfinite(alpha), "ELU", "alpha must be finite, got ", alpha);
}
Tensor ELU::forward(const Tensor& x) { return elu(x, alpha_); }
std::string ELU::describe() const { return with_arg("ELU", alpha_); }

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Softplus::forward(const Tensor& x) { return softplus(x); }

Tensor Softmax::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined() && x.dim() >= 1 && dim_ >= -x.dim() && dim_ < x.dim(), "Softmax", "dim ",
               dim_, " is out of range for input ",
               x.defined() ? to_string(x.shape()) : std::string("undefined"));
  return softmax(x, dim_);
}
std::string Softmax::describe() const { return "Softmax(dim=" + std::to_string(dim_) + ")"; }

}  // namespace encore::nn
