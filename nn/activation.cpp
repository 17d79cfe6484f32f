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

// The input checks of the layers, so that errors name the layer the user called rather than the
// op it forwards to (relu, sigmoid, ...). ReLU also takes i64, as relu() does.
void check_input(const char* layer, const Tensor& x, bool integers = false) {
  ENCORE_CHECK(x.defined(), layer, "input is undefined");
  ENCORE_CHECK(integers || is_floating(x.dtype()), layer, "input ", x.shape(), " has dtype ",
               x.dtype(), "; expected f32 or f64");
}
}  // namespace

Tensor ReLU::forward(const Tensor& x) {
  check_input("ReLU", x, /*integers=*/true);
  return relu(x);
}

LeakyReLU::LeakyReLU(double negative_slope) : slope_(negative_slope) {
  ENCORE_CHECK(std::isfinite(negative_slope), "LeakyReLU", "negative_slope must be finite, got ",
               negative_slope);
}
Tensor LeakyReLU::forward(const Tensor& x) {
  check_input("LeakyReLU", x);
  return leaky_relu(x, slope_);
}
std::string LeakyReLU::describe() const { return with_arg("LeakyReLU", slope_); }

ELU::ELU(double alpha) : alpha_(alpha) {
  ENCORE_CHECK(std::isfinite(alpha), "ELU", "alpha must be finite, got ", alpha);
}
Tensor ELU::forward(const Tensor& x) {
  check_input("ELU", x);
  return elu(x, alpha_);
}
std::string ELU::describe() const { return with_arg("ELU", alpha_); }

Tensor Sigmoid::forward(const Tensor& x) {
  check_input("Sigmoid", x);
  return sigmoid(x);
}
Tensor Tanh::forward(const Tensor& x) {
  check_input("Tanh", x);
  return tanh(x);
}
Tensor Softplus::forward(const Tensor& x) {
  check_input("Softplus", x);
  return softplus(x);
}

Tensor Softmax::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined() && x.dim() >= 1 && dim_ >= -x.dim() && dim_ < x.dim(), "Softmax", "dim ",
               dim_, " is out of range for input ",
               x.defined() ? to_string(x.shape()) : std::string("undefined"));
  check_input("Softmax", x);
  return softmax(x, dim_);
}
std::string Softmax::describe() const { return "Softmax(dim=" + std::to_string(dim_) + ")"; }

}  // namespace encore::nn
