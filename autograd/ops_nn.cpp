// Neural-network ops that are not plain math: dropout (a random mask from an explicit
// Generator) and embedding (a row lookup). Both are composites of differentiable ops (mul,
// index_select, reshape), so their gradients and second order come from those.
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

}  // namespace encore
