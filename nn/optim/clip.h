// Gradient clipping, applied to the list that tape.gradient() returns, before opt.step().
#pragma once

#include "../../autograd/autograd.h"

namespace encore::optim {

/// Scales every gradient by min(1, max_norm / global_norm), where global_norm is the L2 norm
/// of all gradients together, summed in f64 (tf.clip_by_global_norm's rule; PyTorch's
/// clip_grad_norm_ divides by global_norm + 1e-6 instead, a relative difference of about
/// 1e-6 / global_norm). Returns the clipped gradients (the given handles when no scaling is
/// needed); writes the norm before clipping to *norm when given. Undefined gradients pass
/// through. A non-finite norm is not an error: check *norm to skip such a step.
Tensors clip_by_global_norm(const Tensors& grads, double max_norm, double* norm = nullptr);

/// Clamps every gradient element into [-limit, limit] (limit > 0). Returns new tensors;
/// undefined gradients pass through.
Tensors clip_by_value(const Tensors& grads, double limit);

}  // namespace encore::optim
