// Linear algebra ops: matmul (batched, broadcast, 1-D operands) and linear (x W^T + b). Both
// forward through OpenBLAS (tensor/kernels/gemm.cpp) and write their vjps as matmuls of the
// saved operands, so transposed operands reach BLAS as flags and second order works. A vjp
// only computes the products whose inputs need a gradient, and the forward only keeps the
// operands those products read.
#include "autograd/ops.h"
#include "tensor/kernels.h"

namespace encore {
namespace {

/// t (..., last) as a matrix (rows, last): rows is the product of the leading dims (explicit,
/// not -1, so that empty tensors reshape too).
Tensor as_rows(const Tensor& t) {
  Shape lead = t.shape();
  lead.pop_back();
  return reshape(t, {numel(lead), t.size(-1)});
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor y = raw::matmul(a, b);  // validates ranks, dtypes, alignment and batch broadcasting
  if (!is_recording({a, b})) return y;
  // da reads b and db reads a: keep an operand only when the other one needs a gradient.
  bool need_a = is_recording({a}), need_b = is_recording({b});
  Tensor keep_a = need_b ? a : Tensor(), keep_b = need_a ? b : Tensor();
  record("matmul", {a, b}, {y},
         [a = keep_a, b = keep_b, a1 = a.dim() == 1, b1 = b.dim() == 1, b_2d = b.dim() <= 2](
             const Tensors& douts, NeedsGrad needs) {
           // 1-D operands were a (k) -> (1, k) and b (k) -> (k, 1), their added dim dropped from
           // y; put the dims back so that everything below is (..., n, k) @ (..., k, m).
           Tensor g = douts[0];  // g: y's shape, (batch..., n, m) minus the added dims
           if (a1) g = unsqueeze(g, b1 ? g.dim() : g.dim() - 1);
           if (b1) g = unsqueeze(g, g.dim());
           Tensor da, db;
           if (needs[0]) {
             Tensor B = b1 ? unsqueeze(b, 1) : b;   // (..., k, m)
             da = matmul(g, transpose(B, -1, -2));  // (batch..., n, k); the tape sums batch
             if (a1) da = squeeze(da, -2);          // (batch..., k)
           }
           if (needs[1]) {
             Tensor A = a1 ? unsqueeze(a, 0) : a;  // (..., n, k)
             if (b_2d && A.dim() > 2) {
               // A 2-D b shared by every batch matrix of a (a layer applied over a sequence):
               // db (k, m) = A^T (k, batch*n) @ g (batch*n, m), one gemm and no batch-sized
               // intermediate to sum.
               db = matmul(transpose(as_rows(A), 0, 1), as_rows(g));
             } else {
               db = matmul(transpose(A, -1, -2), g);  // (batch..., k, m); the tape sums batch
             }
             if (b1) db = squeeze(db, -1);  // (batch..., k)
           }
           return Tensors{da, db};
         },
         {keep_a, keep_b});
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  // raw::linear validates shapes and dtypes, flattens the leading dims of x (a view when the
  // strides allow) and adds the bias inside the one gemm (beta = 1).
  Tensor y = raw::linear(x, weight, bias);
  if (!is_recording({x, weight, bias})) return y;
  // dx reads weight, dW reads x, db reads neither.
  bool need_x = is_recording({x}), need_w = is_recording({weight});
  Tensor keep_x = need_w ? x : Tensor(), keep_w = need_x ? weight : Tensor();
  record("linear", {x, weight, bias}, {y},
         [x = keep_x, w = keep_w](const Tensors& douts, NeedsGrad needs) {
           const Tensor& g = douts[0];  // g: (..., out)
           Tensor dx, dw, db;
           if (needs[0]) dx = matmul(g, w);  // (..., out) @ (out, in) -> (..., in)
           if (needs[1] || needs[2]) {
             Tensor g2 = as_rows(g);  // (rows, out)
             if (needs[1]) {
               Tensor x2 = as_rows(x);                // (rows, in)
               dw = matmul(transpose(g2, 0, 1), x2);  // (out, rows) @ (rows, in) -> (out, in)
             }
             if (needs[2]) db = sum(g2, {0});  // (out)
           }
           return Tensors{dx, dw, db};
         },
         {keep_x, keep_w});
  return y;
}

}  // namespace encore
