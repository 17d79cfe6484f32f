// Losses, written with the differentiable ops; the two cross-entropies on probabilities and
// logits record their own vjps so that clamping and large logits stay exact.
#include "nn/loss.h"

namespace encore::nn {
namespace {
void check_same(const char* op, const Tensor& a, const Tensor& b) {
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

Tensor reduce_loss(const Tensor& losses, Reduction r) {
  switch (r) {
    case Reduction::mean:
      return mean(losses);
    case Reduction::sum:
      return sum(losses);
    case Reduction::none:
      return losses;
  }
  return losses;
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r) {
  check_same("mse_loss", pred, target);
  return reduce_loss(square(pred - target), r);
}

Tensor binary_cross_entropy(const Tensor& p, const Tensor& target, Reduction r) {
  check_same("binary_cross_entropy", p, target);
  // Forward on raw kernels: -(t * max(log p, -100) + (1 - t) * max(log(1 - p), -100)).
  using raw::UnaryOp;
  Tensor pc = p.contiguous(), tc = target.to(p.dtype());
  check_probabilities(pc, p.shape());
  Tensor logp = raw::unary(UnaryOp::clamp, raw::unary(UnaryOp::log, pc), -100, 0);
  Tensor log1mp =
      raw::unary(UnaryOp::clamp, raw::unary(UnaryOp::log1p, raw::unary(UnaryOp::neg, pc)), -100, 0);
  Tensor term = raw::binary(
      raw::BinaryOp::add, raw::binary(raw::BinaryOp::mul, tc, logp),
      raw::binary(raw::BinaryOp::mul,
                  raw::unary(UnaryOp::add_scalar, raw::unary(UnaryOp::neg, tc), 1.0), log1mp));
  Tensor loss = raw::unary(UnaryOp::neg, term);
  record("binary_cross_entropy", {p, target}, {loss},
         [p, target](const Tensors& g, NeedsGrad needs) {
           // d/dp = (p - t) / (p (1 - p)), with the denominator kept >= 1e-12 (PyTorch's eps).
           Tensor dp, dt;
           if (needs[0]) dp = g[0] * (p - target) / clamp(p * (1.0 - p), 1e-12, 1e300);
           // d/dt = log(1 - p) - log(p) (with the same clamping as the forward).
           if (needs[1]) dt = g[0] * (clamp(log1p(-p), -100, 0) - clamp(log(p), -100, 0));
           return Tensors{dp, dt};
         },
         {p, target});
  return reduce_loss(loss, r);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r) {
  check_same("bce_with_logits", logits, target);
  using raw::BinaryOp;
  using raw::UnaryOp;
  const Tensor& x = logits;
  Tensor t = target.to(x.dtype());
  // max(x, 0) - x t + log1p(exp(-|x|))
  Tensor loss = raw::binary(
      BinaryOp::add,
      raw::binary(BinaryOp::sub, raw::unary(UnaryOp::relu, x), raw::binary(BinaryOp::mul, x, t)),
      raw::unary(UnaryOp::log1p,
                 raw::unary(UnaryOp::exp, raw::unary(UnaryOp::neg, raw::unary(UnaryOp::abs, x)))));
  // NOTE: composing relu, abs and softplus would give the wrong gradient at x = 0 (both kinks
  // have derivative 0 there, so the composite says -t instead of 1/2 - t). The vjp below is the
  // exact sigmoid(x) - t everywhere.
  record("bce_with_logits", {x, target}, {loss},
         [x, target](const Tensors& g, NeedsGrad needs) {
           Tensor dx, dt;
           if (needs[0]) dx = g[0] * (sigmoid(x) - target);
           if (needs[1]) dt = -(g[0] * x);
           return Tensors{dx, dt};
         },
         {x, target});
  return reduce_loss(loss, r);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r) {
  ENCORE_CHECK(logits.dim() == 2, "cross_entropy", "logits must be (N, C), got ", logits.shape());
  ENCORE_CHECK(labels.dtype() == DType::i64, "cross_entropy", "labels must be i64, got ",
               labels.dtype(), " of shape ", labels.shape());
  ENCORE_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "cross_entropy",
               "labels of shape ", labels.shape(), " do not match logits ", logits.shape());
  Tensor logp = log_softmax(logits, 1);
  Tensor picked = gather(logp, 1, raw::unsqueeze(labels, 1));  // (N, 1); checks the range
  return reduce_loss(-reshape(picked, {-1}), r);
}

Tensor l2_loss(const Tensor& t) { return sum(square(t)) * 0.5; }

Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, Reduction r) {
  ENCORE_CHECK(mu.shape() == logvar.shape() && mu.dim() >= 1, "gaussian_kl", "mu ", mu.shape(),
               " and logvar ", logvar.shape(), " must have the same shape (N, D)");
  Tensor per = sum(1.0 + logvar - square(mu) - exp(logvar), {-1}) * -0.5;
  return reduce_loss(per, r);
}

}  // namespace encore::nn
