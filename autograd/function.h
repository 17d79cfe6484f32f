// User-defined differentiable ops, recorded through the same entry point as the built-ins:
// a Function subclass (forward + backward, like torch.autograd.Function) or the
// custom_gradient helper (like tf.custom_gradient).
#pragma once

#include <functional>
#include <memory>

#include "tape.h"

namespace encore {

/// Subclass and implement name(), forward() and backward(); run it with apply_function().
/// forward() runs with recording paused (its inner ops are not taped); backward() receives
/// one gradient per output and returns one per input, each of its input's shape (undefined
/// for none). Write backward with the differentiable ops and second-order gradients work too.
class Function {
 public:
  virtual ~Function() = default;
  /// Used in error messages and anomaly reports; must outlive the tape (a literal is best).
  virtual const char* name() const = 0;
  virtual Tensors forward(const Tensors& inputs) = 0;
  virtual Tensors backward(const Tensors& douts) = 0;

 protected:
  /// Call in forward(): hands ts to the tape, which gives them back through saved() while
  /// backward() runs. Modifying one in place before then makes gradient() throw.
  void save_for_backward(Tensors ts) { saved_ = std::move(ts); }
  /// In backward(): the tensors given to save_for_backward().
  const Tensors& saved() const { return saved_; }

 private:
  friend Tensors apply_function(std::shared_ptr<Function> f, const Tensors& inputs);
  Tensors saved_;
};

/// Runs f->forward(inputs) and records f on every tape that watches an input.
/// inputs: any number of tensors -> the outputs forward() returns.
Tensors apply_function(std::shared_ptr<Function> f, const Tensors& inputs);

/// The former name of apply_function, kept for existing code. Prefer apply_function: an
/// unqualified apply(f, inputs) call also finds std::apply through argument-dependent lookup
/// (Tensors is a std::vector), which wins overload resolution and fails inside <tuple>.
inline Tensors apply(std::shared_ptr<Function> f, const Tensors& inputs) {
  return apply_function(std::move(f), inputs);
}

/// forward(inputs) -> outputs; backward(inputs, outputs, douts) -> one gradient per input,
/// each of its input's shape.
using CustomForward = std::function<Tensors(const Tensors& inputs)>;
using CustomBackward =
    std::function<Tensors(const Tensors& inputs, const Tensors& outputs, const Tensors& douts)>;
/// Computes forward(inputs) with recording paused and records backward as its vjp. The tape
/// saves the inputs and the outputs for backward: modifying any of them in place before
/// gradient() makes it throw (instead of returning a gradient computed from the new values).
/// name should be a string literal.
Tensors custom_gradient(const char* name, const Tensors& inputs, const CustomForward& forward,
                        CustomBackward backward);

}  // namespace encore
