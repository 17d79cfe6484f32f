// gradcheck: compares the tape's gradients of any function against central finite
// differences in f64. Every built-in op is checked this way in tests/autograd, and users
// check their own ops with the same call.
#pragma once

#include <functional>
#include <string>

#include "tape.h"

namespace encore {

struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  /// Inputs (by position) not to differentiate, e.g. masks; they are still passed to fn.
  std::vector<size_t> constant_inputs = {};
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  /// On failure: which input, element and output element disagreed, with both values.
  std::string message;
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const Tensors& inputs)>;

/// Checks the full Jacobian of fn at inputs (all f64): row by row through the tape, column by
/// column by central differences. Inputs are copied to contiguous tensors first; to check an op
/// on non-contiguous inputs, make the view inside fn with the differentiable view ops
/// (e.g. `transpose(in[0], 0, 1)`).
GradcheckResult gradcheck(const GradcheckFn& fn, const Tensors& inputs,
                          const GradcheckOptions& options = {});

/// Second order: checks, with gradcheck, the function inputs -> (vjp of fn at inputs with a
/// fixed random output gradient), whose own gradient a nested tape computes.
GradcheckResult gradgradcheck(const GradcheckFn& fn, const Tensors& inputs,
                              const GradcheckOptions& options = {});

}  // namespace encore
