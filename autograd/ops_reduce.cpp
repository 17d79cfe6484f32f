// Reductions as differentiable ops: sum, mean, max/min, var, logsumexp, softmax,
// log_softmax, sum_to (the adjoint of broadcasting, which the tape uses to unbroadcast), and
// argmax. Forwards are the raw reduce kernels (fused ones for softmax and logsumexp); each vjp
// brings the output gradient back to the input's shape by re-inserting the reduced dims as
// size 1 and broadcasting, using the differentiable shape ops so gradients of gradients work.
#include "autograd/ops.h"

namespace encore {

using raw::BinaryOp;
using raw::ReduceOp;

namespace {

// The input shape with the reduced dims set to 1 (the keepdim output shape); empty dims =
// all dims. Also the number of elements each output element reduces over.
struct Reduced {
  Shape kept;
  int64_t count = 1;
};

Reduced reduced(const char* op, const Shape& in, const std::vector<int64_t>& dims) {
  Reduced r{in, 1};
  if (dims.empty()) {
    for (int64_t& v : r.kept) v = 1;
  } else if (in.size() > 0) {
    for (int64_t d : dims) r.kept[normalize_dim(op, d, in.size())] = 1;
  }
  for (int i = 0; i < in.size(); ++i)
    if (r.kept[i] != in[i]) r.count *= in[i];
  return r;
}

// The gradient g of a reduction's output, as seen from its kept shape (reduced dims of size 1).
Tensor kept_view(const Tensor& g, const Shape& kept) {
  return g.shape() == kept ? g : reshape(g, kept);
}

// The gradient of a reduction's output brought back to the input's shape: (kept) -> (in).
Tensor unreduce(const Tensor& g, const Shape& kept, const Shape& in) {
  return expand(kept_view(g, kept), in);
}

// max and min: the gradient goes to the elements equal to the result, shared equally among
// ties (as PyTorch's amax/amin).
Tensor extremum(const char* op, ReduceOp rop, const Tensor& x, const std::vector<int64_t>& dims,
                bool keepdim) {
  Tensor y = raw::reduce(rop, x, dims, keepdim);
  Shape kept = reduced(op, x.shape(), dims).kept;
  record(op, {x}, {y},
         [x, y, kept](const Tensors& g) {
           // hit: (in) 1 where x attains the extremum; weight = hit / (ties per output)
           Tensor hit = raw::binary(BinaryOp::eq, x, raw::reshape(y, kept));
           Tensor weight = raw::binary(BinaryOp::div, hit, raw::sum_to(hit, kept));
           return Tensors{kept_view(g[0], kept) * weight};
         },
         {x, y});
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor y = raw::reduce(ReduceOp::sum, x, dims, keepdim);
  record("sum", {x}, {y},
         [kept = reduced("sum", x.shape(), dims).kept, in = x.shape()](const Tensors& g) {
           // (out) -> (kept) -> (in): every input element gets its output's gradient
           return Tensors{unreduce(g[0], kept, in)};
         });
  return y;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor y = raw::reduce(ReduceOp::mean, x, dims, keepdim);
  Reduced r = reduced("mean", x.shape(), dims);
  record("mean", {x}, {y}, [r, in = x.shape()](const Tensors& g) {
    // (out) -> (in), each input element getting 1/count of its output's gradient
    return Tensors{unreduce(g[0] * (1.0 / r.count), r.kept, in)};
  });
  return y;
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum("max", ReduceOp::max, x, dims, keepdim);
}

Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum("min", ReduceOp::min, x, dims, keepdim);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  Tensor y = raw::var(x, dims, correction, keepdim);
  Reduced r = reduced("var", x.shape(), dims);
  record("var", {x}, {y},
         [x, r, correction](const Tensors& g) {
           // dx = g 2 (x - mean) / (count - correction); the mean is taken with ops (sum_to) so
           // that the second derivative sees it.
           Tensor centred = x - sum_to(x, r.kept) * (1.0 / r.count);
           return Tensors{kept_view(g[0], r.kept) * (centred * (2.0 / (r.count - correction)))};
         },
         {x});
  return y;
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor y = raw::logsumexp(x, dims, keepdim);
  record("logsumexp", {x}, {y},
         [x, y, kept = reduced("logsumexp", x.shape(), dims).kept](const Tensors& g) {
           // dx = g exp(x - y): the softmax of x over dims
           return Tensors{kept_view(g[0], kept) * exp(x - kept_view(y, kept))};
         },
         {x, y});
  return y;
}

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor y = raw::softmax(x, dim);
  record("softmax", {x}, {y},
         [y, dim](const Tensors& g) {
           // dx = y (g - sum(g y, dim))
           return Tensors{y * (g[0] - sum(g[0] * y, {dim}, true))};
         },
         {y});
  return y;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor y = raw::log_softmax(x, dim);
  record("log_softmax", {x}, {y},
         [y, dim](const Tensors& g) {
           // dx = g - softmax(x) sum(g, dim), softmax(x) = exp(y)
           return Tensors{g[0] - exp(y) * sum(g[0], {dim}, true)};
         },
         {y});
  return y;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;  // the common case when the tape unbroadcasts
  Tensor y = raw::sum_to(x, shape);
  record("sum_to", {x}, {y},
         [in = x.shape()](const Tensors& g) { return Tensors{expand(g[0], in)}; });
  return y;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return raw::argmax(x, dim, keepdim); }

}  // namespace encore
