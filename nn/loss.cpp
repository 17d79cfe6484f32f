// Losses, written with the differentiable ops. The two cross-entropies on probabilities and
// logits are fused ops with their own vjps (autograd/ops_nn.cpp); here they are reduced.
#include "nn/loss.h"

#include <vector>

namespace encore::nn {
namespace {
// Mixed f32/f64 operands would promote silently; the user should choose the precision.
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return;  // the op's own check names that
  ENCORE_CHECK(a.dtype() == b.dtype(), op, "prediction ", a.shape(), " is ", a.dtype(),
               " but target ", b.shape(), " is ", b.dtype(),
               "; convert one with .to(DType::", a.dtype(), ")");
}

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  ENCORE_CHECK(a.defined() && b.defined(), op, a.defined() ? "target" : "prediction",
               " is an undefined tensor");
  ENCORE_CHECK(a.shape() == b.shape(), op, "prediction ", a.shape(), " and target ", b.shape(),
               " differ in shape");
  ENCORE_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()), op, "prediction (", a.dtype(),
               ") and target (", b.dtype(), ") must be f32 or f64");
  check_same_dtype(op, a, b);
}

// Both inputs defined and f32 or f64, with errors naming the loss (the elementwise ops it calls
// would name themselves, e.g. "exp").
void check_defined_floating(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                            const Tensor& b) {
  ENCORE_CHECK(a.defined(), op, a_name, " is an undefined tensor");
  ENCORE_CHECK(b.defined(), op, b_name, " is an undefined tensor");
  ENCORE_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()), op, a_name, " (", a.dtype(),
               ") and ", b_name, " (", b.dtype(), ") must be f32 or f64");
}

// The reduction, with errors naming the loss the user called rather than the reduction op.
Tensor reduce_named(const char* op, const Tensor& losses, Reduction r) {
  ENCORE_CHECK(r != Reduction::mean || losses.numel() > 0, op,
               "the mean over an empty batch is undefined (per-element losses of shape ",
               losses.shape(), "); use Reduction::sum or a non-empty batch");
  return reduce_loss(losses, r);
}

}  // namespace

Tensor reduce_loss(const Tensor& losses, Reduction r) {
  ENCORE_CHECK(losses.defined(), "reduce_loss", "losses is an undefined tensor");
  ENCORE_CHECK(r != Reduction::mean || losses.numel() > 0, "reduce_loss",
               "the mean of losses of shape ", losses.shape(),
               " (an empty batch) is undefined; use Reduction::sum or a non-empty batch");
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
  return reduce_named("mse_loss", square(pred - target), r);
}

Tensor binary_cross_entropy(const Tensor& p, const Tensor& target, Reduction r) {
  check_defined_floating("binary_cross_entropy", "prediction", p, "target", target);
  check_same_dtype("binary_cross_entropy", p, target);
  return reduce_named("binary_cross_entropy", binary_cross_entropy_elementwise(p, target), r);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r) {
  check_defined_floating("bce_with_logits", "prediction", logits, "target", target);
  check_same_dtype("bce_with_logits", logits, target);
  return reduce_named("bce_with_logits", bce_with_logits_elementwise(logits, target), r);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r) {
  ENCORE_CHECK(logits.defined(), "cross_entropy", "logits is an undefined tensor");
  ENCORE_CHECK(labels.defined(), "cross_entropy", "labels is an undefined tensor");
  ENCORE_CHECK(logits.dim() == 2, "cross_entropy", "logits must be (N, C), got ", logits.shape());
  ENCORE_CHECK(labels.dtype() == DType::i64, "cross_entropy", "labels must be i64, got ",
               labels.dtype(), " of shape ", labels.shape());
  ENCORE_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "cross_entropy",
               "labels of shape ", labels.shape(), " do not match logits ", logits.shape());
  ENCORE_CHECK(is_floating(logits.dtype()), "cross_entropy", "logits must be f32 or f64, got ",
               logits.dtype());
  const int64_t classes = logits.size(1);
  const std::vector<int64_t> ls = labels.to_vector<int64_t>();
  for (size_t i = 0; i < ls.size(); ++i)
    ENCORE_CHECK(ls[i] >= 0 && ls[i] < classes, "cross_entropy", "label ", ls[i], " (sample ", i,
                 ") is out of range for ", classes, " classes (logits ", logits.shape(), ")");
  Tensor logp = log_softmax(logits, 1);
  Tensor picked = gather(logp, 1, raw::unsqueeze(labels, 1));  // (N, 1)
  return reduce_named("cross_entropy", -reshape(picked, {-1}), r);
}

Tensor l2_loss(const Tensor& t) { return sum(square(t)) * 0.5; }

Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, Reduction r) {
  check_defined_floating("gaussian_kl", "mu", mu, "logvar", logvar);
  ENCORE_CHECK(mu.shape() == logvar.shape() && mu.dim() >= 1, "gaussian_kl", "mu ", mu.shape(),
               " and logvar ", logvar.shape(), " must have the same shape (N, D)");
  Tensor per = sum(1.0 + logvar - square(mu) - exp(logvar), {-1}) * -0.5;
  return reduce_named("gaussian_kl", per, r);
}

}  // namespace encore::nn
