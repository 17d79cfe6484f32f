// Elementwise differentiable ops: arithmetic (and its operators), unary math, activations,
// clamp, where, comparisons, and the copy/identity ops. Each forward is one raw kernel; its
// vjp follows right below it, written with these same ops so that an outer tape records the
// backward pass (gradients of gradients). Masks that are piecewise constant (relu, clamp,
// abs, maximum) are built with raw kernels: they have no gradient of their own.
//
// Gradients of binary ops have the broadcast shape; the tape sums them down to each input's
// shape, so no vjp here unbroadcasts.
#include "autograd/ops.h"

namespace encore {

using raw::BinaryOp;
using raw::UnaryOp;

namespace {

// A gradient in the dtype of the input it is for: mixed f32/f64 operands promote to f64 in
// the forward, and the f32 input must get an f32 gradient back.
Tensor as_dtype(const Tensor& d, DType dt) { return d.dtype() == dt ? d : cast(d, dt); }

// d max(a, b) / d a as a constant weight of the broadcast shape: 1 where a wins (`wins` is gt
// for maximum, lt for minimum), 0.5 on ties, 0 where b wins.
Tensor win_weight(BinaryOp wins, const Tensor& a, const Tensor& b) {
  Tensor tie = raw::unary(UnaryOp::mul_scalar, raw::binary(BinaryOp::eq, a, b), 0.5);
  return raw::binary(BinaryOp::add, raw::binary(wins, a, b), tie);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Binary arithmetic

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::add, a, b);
  record("add", {a, b}, {y}, [ta = a.dtype(), tb = b.dtype()](const Tensors& g, NeedsGrad needs) {
    // g: broadcast shape -> da = g, db = g
    return Tensors{needs[0] ? as_dtype(g[0], ta) : Tensor(),
                   needs[1] ? as_dtype(g[0], tb) : Tensor()};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::sub, a, b);
  record("sub", {a, b}, {y}, [ta = a.dtype(), tb = b.dtype()](const Tensors& g, NeedsGrad needs) {
    // da = g, db = -g
    return Tensors{needs[0] ? as_dtype(g[0], ta) : Tensor(),
                   needs[1] ? as_dtype(neg(g[0]), tb) : Tensor()};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::mul, a, b);
  record("mul", {a, b}, {y},
         [a, b](const Tensors& g, NeedsGrad needs) {
           // da = g * b, db = g * a (broadcast shape)
           return Tensors{needs[0] ? as_dtype(g[0] * b, a.dtype()) : Tensor(),
                          needs[1] ? as_dtype(g[0] * a, b.dtype()) : Tensor()};
         },
         {a, b});
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::div, a, b);
  record("div", {a, b}, {y},
         [ta = a.dtype(), b, y](const Tensors& g, NeedsGrad needs) {
           // da = g / b, db = -g a / b^2 = -(g / b) y
           Tensor gb = g[0] / b;
           return Tensors{needs[0] ? as_dtype(gb, ta) : Tensor(),
                          needs[1] ? as_dtype(neg(gb * y), b.dtype()) : Tensor()};
         },
         {b, y});
  return y;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::pow, a, b);
  record("pow", {a, b}, {y},
         [a, b, y](const Tensors& g, NeedsGrad needs) {
           // da = g b a^(b-1); db = g y log(a), only when asked for.
           // NOTE: as PyTorch, da is 0 where b = 0 (not 0 * 0^-1 = NaN at a = 0) and db is 0
           // where a = 0 and b >= 0 (the limit of a^b log(a), not 0 * -inf = NaN). The masks
           // are constants (raw kernels), so second order differentiates the other branch.
           Tensor da, db;
           if (needs[0]) {
             Tensor b_zero = raw::binary(BinaryOp::eq, b, scalar(0.0, b.dtype()));
             da = where(b_zero, scalar(0.0, g[0].dtype()), g[0] * b * pow(a, b - 1.0));
             da = as_dtype(da, a.dtype());
           }
           if (needs[1]) {
             Tensor a_zero =
                 raw::binary(BinaryOp::mul, raw::binary(BinaryOp::eq, a, scalar(0.0, a.dtype())),
                             raw::binary(BinaryOp::ge, b, scalar(0.0, b.dtype())));
             db = where(a_zero, scalar(0.0, g[0].dtype()), g[0] * y * log(a));
             db = as_dtype(db, b.dtype());
           }
           return Tensors{da, db};
         },
         {a, b, y});
  return y;
}

Tensor pow(const Tensor& a, double exponent) {
  Tensor y = raw::unary(UnaryOp::pow_scalar, a, exponent);
  record("pow_scalar", {a}, {y},
         [a, exponent](const Tensors& g) {
           // NOTE: x^0 is constant; the general rule would give 0 * 0^-1 = NaN at a = 0.
           if (exponent == 0) return Tensors{g[0] * 0.0};
           // x^2: square's vjp, the same values as the general rule (x^1 is x exactly).
           if (exponent == 2) return Tensors{g[0] * a * 2.0};
           return Tensors{g[0] * pow(a, exponent - 1) * exponent};
         },
         {a});
  return y;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::maximum, a, b);
  record("maximum", {a, b}, {y},
         [a, b](const Tensors& g, NeedsGrad needs) {
           // Ties split the gradient equally between a and b, as PyTorch's maximum does.
           return Tensors{
               needs[0] ? as_dtype(g[0] * win_weight(BinaryOp::gt, a, b), a.dtype()) : Tensor(),
               needs[1] ? as_dtype(g[0] * win_weight(BinaryOp::gt, b, a), b.dtype()) : Tensor()};
         },
         {a, b});
  return y;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor y = raw::binary(BinaryOp::minimum, a, b);
  record("minimum", {a, b}, {y},
         [a, b](const Tensors& g, NeedsGrad needs) {
           // Ties split equally, as for maximum.
           return Tensors{
               needs[0] ? as_dtype(g[0] * win_weight(BinaryOp::lt, a, b), a.dtype()) : Tensor(),
               needs[1] ? as_dtype(g[0] * win_weight(BinaryOp::lt, b, a), b.dtype()) : Tensor()};
         },
         {a, b});
  return y;
}

// ---------------------------------------------------------------------------------------------
// Operators. A scalar operand adopts the tensor's dtype and runs as a one-input scalar kernel
// (no tensor is allocated for it).

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }

Tensor operator+(const Tensor& a, double s) {
  Tensor y = raw::unary(UnaryOp::add_scalar, a, s);
  record("add_scalar", {a}, {y}, [](const Tensors& g) { return Tensors{g[0]}; });
  return y;
}
Tensor operator+(double s, const Tensor& a) { return a + s; }
Tensor operator-(const Tensor& a, double s) { return a + (-s); }

Tensor operator-(double s, const Tensor& a) {
  Tensor y = raw::unary(UnaryOp::add_scalar, raw::unary(UnaryOp::neg, a), s);
  record("rsub_scalar", {a}, {y}, [](const Tensors& g) { return Tensors{neg(g[0])}; });
  return y;
}

Tensor operator*(const Tensor& a, double s) {
  Tensor y = raw::unary(UnaryOp::mul_scalar, a, s);
  record("mul_scalar", {a}, {y}, [s](const Tensors& g) { return Tensors{g[0] * s}; });
  return y;
}
Tensor operator*(double s, const Tensor& a) { return a * s; }
// NOTE: multiplies by 1/s (one scalar kernel); may differ from true division in the last ulp.
Tensor operator/(const Tensor& a, double s) { return a * (1.0 / s); }

Tensor operator/(double s, const Tensor& a) {
  Tensor y = raw::unary(UnaryOp::reciprocal, a);
  if (s != 1.0) y = raw::unary(UnaryOp::mul_scalar, y, s);
  record("rdiv_scalar", {a}, {y},
         [a, y](const Tensors& g) {
           // d (s / a) = -s / a^2 = -y / a
           return Tensors{neg(g[0] * y / a)};
         },
         {a, y});
  return y;
}

// ---------------------------------------------------------------------------------------------
// Unary math

Tensor neg(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::neg, x);
  record("neg", {x}, {y}, [](const Tensors& g) { return Tensors{neg(g[0])}; });
  return y;
}

Tensor abs(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::abs, x);
  // sign(0) = 0: the subgradient at the kink is taken as 0 (as PyTorch and TF do).
  record("abs", {x}, {y},
         [x](const Tensors& g) { return Tensors{g[0] * raw::unary(UnaryOp::sign, x)}; }, {x});
  return y;
}

Tensor exp(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::exp, x);
  record("exp", {x}, {y}, [y](const Tensors& g) { return Tensors{g[0] * y}; }, {y});
  return y;
}

Tensor log(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::log, x);
  record("log", {x}, {y}, [x](const Tensors& g) { return Tensors{g[0] / x}; }, {x});
  return y;
}

Tensor log1p(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::log1p, x);
  record("log1p", {x}, {y}, [x](const Tensors& g) { return Tensors{g[0] / (x + 1.0)}; }, {x});
  return y;
}

Tensor sqrt(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::sqrt, x);
  // d sqrt(x) = 1 / (2 y)
  record("sqrt", {x}, {y}, [y](const Tensors& g) { return Tensors{g[0] / y * 0.5}; }, {y});
  return y;
}

Tensor rsqrt(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::rsqrt, x);
  // d x^(-1/2) = -x^(-3/2) / 2 = -y^3 / 2
  record("rsqrt", {x}, {y}, [y](const Tensors& g) { return Tensors{g[0] * pow(y, 3.0) * -0.5}; },
         {y});
  return y;
}

Tensor square(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::square, x);
  record("square", {x}, {y}, [x](const Tensors& g) { return Tensors{g[0] * x * 2.0}; }, {x});
  return y;
}

// ---------------------------------------------------------------------------------------------
// Activations

Tensor tanh(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::tanh, x);
  // d tanh = 1 - y^2
  record("tanh", {x}, {y}, [y](const Tensors& g) { return Tensors{g[0] - g[0] * square(y)}; }, {y});
  return y;
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::sigmoid, x);
  // d sigmoid = y (1 - y)
  record("sigmoid", {x}, {y}, [y](const Tensors& g) { return Tensors{g[0] * (y - square(y))}; },
         {y});
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::relu, x);
  // NOTE: the mask is y > 0 strictly, so relu'(0) = 0 (PyTorch and TF agree): a unit sitting
  // exactly at 0 stays dead instead of getting half a gradient, which writing relu as
  // maximum(x, 0) would give (maximum splits ties).
  record("relu", {x}, {y},
         [y](const Tensors& g) { return Tensors{g[0] * raw::unary(UnaryOp::gt_scalar, y, 0.0)}; },
         {y});
  return y;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  Tensor y = raw::unary(UnaryOp::leaky_relu, x, negative_slope);
  record("leaky_relu", {x}, {y},
         [x, negative_slope](const Tensors& g) {
           // slope 1 where x > 0, else negative_slope (also at 0, as relu)
           Tensor w = raw::where(raw::unary(UnaryOp::gt_scalar, x, 0.0), scalar(1.0, x.dtype()),
                                 scalar(negative_slope, x.dtype()));
           return Tensors{g[0] * w};
         },
         {x});
  return y;
}

Tensor elu(const Tensor& x, double alpha) {
  Tensor y = raw::unary(UnaryOp::elu, x, alpha);
  record("elu", {x}, {y},
         [x, y, alpha](const Tensors& g) {
           // x > 0: 1; else alpha e^x = y + alpha (written with y so it differentiates again)
           return Tensors{where(raw::unary(UnaryOp::gt_scalar, x, 0.0), g[0], g[0] * (y + alpha))};
         },
         {x, y});
  return y;
}

Tensor softplus(const Tensor& x) {
  Tensor y = raw::unary(UnaryOp::softplus, x);
  record("softplus", {x}, {y}, [x](const Tensors& g) { return Tensors{g[0] * sigmoid(x)}; }, {x});
  return y;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  ENCORE_CHECK(lo <= hi, "clamp", "lower bound ", lo, " is above upper bound ", hi,
               " (input shape ", x.shape(), ")");
  Tensor y = raw::unary(UnaryOp::clamp, x, lo, hi);
  record("clamp", {x}, {y},
         [x, lo, hi](const Tensors& g) {
           // 1 strictly inside (lo, hi), 0 at and beyond the bounds
           Tensor inside = raw::binary(BinaryOp::mul, raw::unary(UnaryOp::gt_scalar, x, lo),
                                       raw::unary(UnaryOp::lt_scalar, x, hi));
           return Tensors{g[0] * inside};
         },
         {x});
  return y;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor y = raw::where(cond, a, b);
  // cond is not an input of the node: it is never differentiated.
  record("where", {a, b}, {y},
         [cond, ta = a.dtype(), tb = b.dtype()](const Tensors& g, NeedsGrad needs) {
           // g: broadcast shape of (cond, a, b) -> da = cond ? g : 0, db = cond ? 0 : g
           Tensor zero = scalar(0.0, g[0].dtype());
           return Tensors{needs[0] ? as_dtype(where(cond, g[0], zero), ta) : Tensor(),
                          needs[1] ? as_dtype(where(cond, zero, g[0]), tb) : Tensor()};
         },
         {cond});
  return y;
}

// ---------------------------------------------------------------------------------------------
// Comparisons: values only, never recorded.

Tensor eq(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::ge, a, b); }
Tensor gt(const Tensor& a, double s) { return raw::unary(UnaryOp::gt_scalar, a, s); }
Tensor lt(const Tensor& a, double s) { return raw::unary(UnaryOp::lt_scalar, a, s); }

// ---------------------------------------------------------------------------------------------
// Identity-like ops

Tensor stop_gradient(const Tensor& x) { return x.detach(); }

Tensor clone(const Tensor& x) {
  Tensor y = x.clone();
  record("clone", {x}, {y}, [](const Tensors& g) { return Tensors{g[0]}; });
  return y;
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor y = x.clone();
  record("contiguous", {x}, {y}, [](const Tensors& g) { return Tensors{g[0]}; });
  return y;
}

Tensor cast(const Tensor& x, DType dtype) {
  ENCORE_CHECK(x.defined(), "cast", "the input is an undefined tensor");
  if (x.dtype() == dtype) return x;
  Tensor y = x.to(dtype);
  // Only float <-> float conversions carry a gradient.
  if (is_floating(x.dtype()) && is_floating(dtype))
    record("cast", {x}, {y},
           [from = x.dtype()](const Tensors& g) { return Tensors{cast(g[0], from)}; });
  return y;
}

}  // namespace encore
