// Gradient clipping by global norm and by value.
#include "nn/optim/clip.h"

#include <cmath>

namespace encore::optim {

Tensors clip_by_global_norm(const Tensors& grads, double max_norm, double* norm) {
  ENCORE_CHECK(max_norm > 0 && std::isfinite(max_norm), "clip_by_global_norm",
               "max_norm must be positive and finite, got ", max_norm);
  NoGrad no_grad;
  double total = 0;
  for (const Tensor& g : grads)
    if (g.defined()) {
      Tensor g64 = g.to(DType::f64);
      total += raw::reduce(raw::ReduceOp::sum, raw::unary(raw::UnaryOp::square, g64)).item();
    }
  total = std::sqrt(total);
  if (norm) *norm = total;
  double scale = total > max_norm ? max_norm / total : 1.0;
  Tensors out;
  out.reserve(grads.size());
  for (const Tensor& g : grads)
    out.push_back(g.defined() && scale != 1.0 ? raw::unary(raw::UnaryOp::mul_scalar, g, scale) : g);
  return out;
}

Tensors clip_by_value(const Tensors& grads, double limit) {
  ENCORE_CHECK(limit > 0, "clip_by_value", "limit must be positive, got ", limit);
  Tensors out;
  out.reserve(grads.size());
  for (const Tensor& g : grads)
    out.push_back(g.defined() ? raw::unary(raw::UnaryOp::clamp, g, -limit, limit) : g);
  return out;
}

}  // namespace encore::optim
