// Activation functions as modules, for Sequential and for configurable layers. Each is a thin
// wrapper over the differentiable op of the same name; shapes are preserved.
#pragma once

#include <cstdint>
#include <string>

#include "module.h"

namespace encore::nn {

/// max(x, 0).
class ReLU : public Module {
 public:
  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);
  std::string describe() const override { return "ReLU"; }
};

/// x > 0 ? x : slope x. PyTorch's default slope 0.01 (Keras' LeakyReLU uses 0.3).
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01);
  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);
  /// "LeakyReLU(0.01)".
  std::string describe() const override;

 private:
  double slope_;
};

/// x > 0 ? x : alpha (exp(x) - 1).
class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0);
  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);
  /// "ELU(1)".
  std::string describe() const override;

 private:
  double alpha_;
};

/// 1 / (1 + exp(-x)).
class Sigmoid : public Module {
 public:
  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);
  std::string describe() const override { return "Sigmoid"; }
};

/// tanh(x).
class Tanh : public Module {
 public:
  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);
  std::string describe() const override { return "Tanh"; }
};

/// log(1 + exp(x)).
class Softplus : public Module {
 public:
  /// x: any shape -> same shape.
  Tensor forward(const Tensor& x);
  std::string describe() const override { return "Softplus"; }
};

/// exp(x) / sum(exp(x)) along dim.
class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim = -1) : dim_(dim) {}
  /// x: any shape with dim in range -> same shape, rows along dim summing to 1.
  Tensor forward(const Tensor& x);
  /// "Softmax(dim=-1)".
  std::string describe() const override;

 private:
  int64_t dim_;
};

/// Returns its input (a placeholder, e.g. for an optional layer).
class Identity : public Module {
 public:
  /// x: any shape -> the same tensor.
  Tensor forward(const Tensor& x) { return x; }
  std::string describe() const override { return "Identity"; }
};

}  // namespace encore::nn
