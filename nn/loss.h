// Losses. Each takes a Reduction (mean by default) and checks that prediction and target
// shapes agree, naming both when they do not.
#pragma once

#include "../autograd/autograd.h"

namespace encore::nn {

enum class Reduction { mean, sum, none };

/// mean((pred - target)^2); pred and target of the same shape.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r = Reduction::mean);

/// -(t log p + (1 - t) log(1 - p)) with each log clamped at -100 (as PyTorch), so p = 0 or 1
/// gives a finite loss; every p must lie in [0, 1] (else throws). Gradients: w.r.t. p,
/// (p - t) / max(p (1 - p), 1e-12) (PyTorch's); w.r.t. t, that of the clamped loss,
/// max(log(1 - p), -100) - max(log p, -100) (PyTorch's -logit(p) is infinite at 0 and 1).
Tensor binary_cross_entropy(const Tensor& p, const Tensor& target, Reduction r = Reduction::mean);

/// Binary cross-entropy on logits (tf.nn.sigmoid_cross_entropy_with_logits):
/// max(x, 0) - x t + log(1 + exp(-|x|)), exact and finite for any |x|; gradient sigmoid(x) - t.
Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r = Reduction::mean);

/// logits: (N, C), labels: (N) i64 in [0, C) -> -log softmax(logits)[label].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r = Reduction::mean);

/// sum(t^2) / 2, as tf.nn.l2_loss (always a scalar).
Tensor l2_loss(const Tensor& t);

/// KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum_j (1 + logvar - mu^2 - exp(logvar)), summed over
/// the last dim (the latent), then reduced over the batch: mu, logvar: (N, D).
Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, Reduction r = Reduction::mean);

/// Applies a Reduction to per-element (or per-sample) losses.
Tensor reduce_loss(const Tensor& losses, Reduction r);

}  // namespace encore::nn
