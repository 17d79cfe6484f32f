// Losses, written with the differentiable ops. The two cross-entropies on probabilities and
// logits are fused ops with their own vjps (autograd/ops_nn.cpp); here they are reduced.
#include "nn/loss.h"

namespace encore::nn {
namespace {
void check_same(const char* op, const Tensor& a, const Tensor& b) {
  ENCORE_CHECK(a.shape() == b.shape(), op, "prediction ", a.shape(), " and target ", b.shape(),
               " differ in shape");
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
  return reduce_loss(binary_cross_entropy_elementwise(p, target), r);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r) {
  return reduce_loss(bce_with_logits_elementwise(logits, target), r);
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
