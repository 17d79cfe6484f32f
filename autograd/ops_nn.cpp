// Neural-network ops that are not plain math: dropout (a random mask from an explicit
// Generator) and embedding (a row lookup), composites of differentiable ops (mul,
// index_select, reshape) whose gradients and second order come from those; and the two fused
// cross-entropies (on probabilities and on logits), which record their own vjps so that the
// clamping and large logits stay exact. nn/loss.cpp reduces them.
#include <algorithm>

#include "autograd/ops.h"
#include "tensor/kernels.h"

namespace encore {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  ENCORE_CHECK(x.defined(), "dropout", "input is undefined");
  ENCORE_CHECK(p >= 0 && p < 1, "dropout", "probability p = ", p, " must be in [0, 1) (input ",
               x.shape(), ")");
  ENCORE_CHECK(is_floating(x.dtype()), "dropout", "input ", x.shape(), " has dtype ", x.dtype(),
               " (needs f32 or f64)");
  if (!training || p == 0) return x;
  // mask: 1 / (1 - p) where kept, 0 where dropped; a constant to the tape.
  Tensor mask = raw::unary(raw::UnaryOp::mul_scalar, bernoulli(x.shape(), 1 - p, gen, x.dtype()),
                           1 / (1 - p));
  return x * mask;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  ENCORE_CHECK(weight.defined() && indices.defined(), "embedding",
               "weight and indices must be defined");
  ENCORE_CHECK(weight.dim() == 2, "embedding", "weight ", weight.shape(),
               " must be 2-D (num_embeddings, dim)");
  ENCORE_CHECK(indices.dtype() == DType::i64, "embedding", "indices ", indices.shape(),
               " have dtype ", indices.dtype(), " (needs i64)");
  ENCORE_CHECK(indices.dim() < kMaxDims, "embedding", "indices ", indices.shape(),
               " have too many dims for an output of ", indices.dim() + 1, " dims");
  int64_t num = weight.size(0), dim = weight.size(1);
  Tensor flat = raw::reshape(indices, {-1});  // (n)
  if (flat.numel() > 0) {
    Tensor c = flat.contiguous();
    const int64_t* p = c.data<int64_t>();
    auto [lo, hi] = std::minmax_element(p, p + c.numel());
    int64_t bad = *lo < 0 ? *lo : *hi;
    ENCORE_CHECK(*lo >= 0 && *hi < num, "embedding", "index ", bad, " is out of range for weight ",
                 weight.shape(), " (indices ", indices.shape(), " must be in [0, ", num, "))");
  }
  Shape out = indices.shape();  // indices (...) -> (..., dim)
  out.push_back(dim);
  return reshape(index_select(weight, 0, flat), out);  // (n, dim) -> (..., dim)
}

// ---------------------------------------------------------------------------------------------
// Fused cross-entropies

namespace {
void check_same(const char* op, const Tensor& a, const Tensor& b) {
  ENCORE_CHECK(a.defined() && b.defined(), op, "prediction and target must be defined");
  ENCORE_CHECK(a.shape() == b.shape(), op, "prediction ", a.shape(), " and target ", b.shape(),
               " differ in shape");
}

// Every element of p (contiguous) in [0, 1]; NaN fails. Clamping the logs would otherwise turn
// a p outside [0, 1] into a silently wrong loss.
void check_probabilities(const Tensor& p, const Shape& shape) {
  dispatch_float("binary_cross_entropy", p.dtype(), [&]<class T>() {
    const T* d = p.data<T>();
    const int64_t n = p.numel();
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= (d[i] >= T(0)) & (d[i] <= T(1));
    if (ok) return;
    int64_t i = 0;
    while (d[i] >= T(0) && d[i] <= T(1)) ++i;
    ENCORE_FAIL("binary_cross_entropy", "p must lie in [0, 1], got ", double(d[i]),
                " at flat index ", i, " of p ", shape);
  });
}
}  // namespace

Tensor binary_cross_entropy_elementwise(const Tensor& p, const Tensor& target) {
  check_same("binary_cross_entropy", p, target);
  check_probabilities(p.contiguous(), p.shape());
  Tensor t = target.to(p.dtype());
  // The forward is written with the ops, not recorded (NoGrad): the vjp below is the op's.
  Tensor loss;
  {
    NoGrad no_grad;
    loss = -(t * clamp(log(p), -100, 0) + (1.0 - t) * clamp(log1p(-p), -100, 0));
  }
  record("binary_cross_entropy", {p, target}, {loss},
         [](const Tensors& saved, const Tensors& g, NeedsGrad needs) {
           const Tensor &p = saved[0], &t = saved[1];
           // d/dp = (p - t) / (p (1 - p)), with the denominator kept >= 1e-12 (PyTorch's eps).
           Tensor dp, dt;
           if (needs[0]) dp = g[0] * (p - t) / clamp(p * (1.0 - p), 1e-12, 1e300);
           // d/dt = log(1 - p) - log(p) (with the same clamping as the forward).
           if (needs[1]) dt = g[0] * (clamp(log1p(-p), -100, 0) - clamp(log(p), -100, 0));
           return Tensors{dp, dt};
         },
         {p, target});
  return loss;
}

Tensor bce_with_logits_elementwise(const Tensor& logits, const Tensor& target) {
  check_same("bce_with_logits", logits, target);
  const Tensor& x = logits;
  Tensor t = target.to(x.dtype());
  Tensor loss;
  {
    NoGrad no_grad;
    loss = relu(x) - x * t + log1p(exp(-abs(x)));
  }
  // NOTE: composing relu, abs and softplus would give the wrong gradient at x = 0 (both kinks
  // have derivative 0 there, so the composite says -t instead of 1/2 - t). The vjp below is the
  // exact sigmoid(x) - t everywhere.
  record("bce_with_logits", {x, target}, {loss},
         [](const Tensors& saved, const Tensors& g, NeedsGrad needs) {
           const Tensor &x = saved[0], &t = saved[1];
           Tensor dx, dt;
           if (needs[0]) dx = g[0] * (sigmoid(x) - t);
           if (needs[1]) dt = -(g[0] * x);
           return Tensors{dx, dt};
         },
         {x, target});
  return loss;
}

}  // namespace encore
