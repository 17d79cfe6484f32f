// Sequential, and the two shape layers that usually sit inside one: Flatten and Reshape.
// Sequential chains modules whose forward takes and returns one Tensor; it keeps each as a
// registered submodule (so its parameters are named "0.weight", "1.bias", ...) and calls it
// through a small type-erased adapter, since Module::forward is not virtual.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "module.h"

namespace encore::nn {

/// A module with `Tensor forward(const Tensor&)`: what Sequential can chain.
template <class M>
concept SingleTensorModule = std::derived_from<M, Module> && requires(M& m, const Tensor& x) {
  { m.forward(x) } -> std::convertible_to<Tensor>;
};

/// Applies its modules in order:
///   auto enc = std::make_shared<nn::Sequential>();
///   enc->add(std::make_shared<nn::Linear>(784, 400));   // registered as "0"
///   enc->add(std::make_shared<nn::ReLU>());             // "1"
///   enc->add("code", std::make_shared<nn::Linear>(400, 20));
///   Tensor z = enc->forward(x);                          // keys "0.weight", "code.bias", ...
/// or all at once: std::make_shared<nn::Sequential>(layer0, layer1, ...).
class Sequential : public Module {
 public:
  Sequential() = default;
  template <SingleTensorModule... Ms>
  explicit Sequential(std::shared_ptr<Ms>... modules) {
    (add(std::move(modules)), ...);
  }

  /// Appends m under the name of its position ("0", "1", ...) and returns it.
  template <SingleTensorModule M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    return add(std::to_string(steps_.size()), std::move(m));
  }
  /// Appends m under a chosen name (no '.', unique in this module) and returns it.
  template <SingleTensorModule M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    register_module(name, m);  // validates the name and m
    M* raw = m.get();          // owned by the registered child, which lives as long as this module
    steps_.push_back({name, [raw](const Tensor& x) -> Tensor { return raw->forward(x); }});
    return m;
  }

  /// x -> m_last(...m_1(m_0(x))). An error inside a step is rethrown naming the step.
  Tensor forward(const Tensor& x);

  /// Number of chained modules.
  size_t size() const { return steps_.size(); }
  /// The i-th chained module (as Module; cast with std::dynamic_pointer_cast).
  std::shared_ptr<Module> at(size_t i) const;

  /// "Sequential(3 modules)"; summary() lists the children.
  std::string describe() const override;

 private:
  struct Step {
    std::string name;
    std::function<Tensor(const Tensor&)> forward;
  };
  std::vector<Step> steps_;
};

/// Merges dims start_dim..end_dim into one; the default keeps the batch dim:
/// (N, C, H, W) -> (N, C*H*W).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
  /// x: (d0, ..., dn) -> dims start..end merged.
  Tensor forward(const Tensor& x);
  /// "Flatten(1, -1)".
  std::string describe() const override;

 private:
  int64_t start_, end_;
};

/// Reshapes every sample, keeping the batch dim: (N, ...) -> (N, shape...). One entry of shape
/// may be -1 (inferred). Keras' Reshape((7, 7, 32)) in NHWC is nn::Reshape({32, 7, 7}) here.
class Reshape : public Module {
 public:
  explicit Reshape(const Shape& shape);
  /// x: (N, ...) with numel divisible accordingly -> (N, shape...).
  Tensor forward(const Tensor& x);
  /// "Reshape(N, 32, 7, 7)".
  std::string describe() const override;

 private:
  std::string target_text() const;
  Shape shape_;
};

}  // namespace encore::nn
