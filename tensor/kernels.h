// Raw kernels: value computations with no gradients. autograd/ wraps them into differentiable
// ops. Every function validates its inputs and throws encore::Error naming itself and the
// shapes; inputs may have any strides (transposed, sliced, expanded).
#pragma once

#include <vector>

#include "core.h"
#include "geometry.h"

namespace encore::raw {

// ---------------------------------------------------------------------------------------------
// Elementwise (kernels/elementwise.cpp)

enum class UnaryOp {
  neg,
  abs,
  sign,
  exp,
  log,
  log1p,
  expm1,
  sqrt,
  rsqrt,
  square,
  reciprocal,
  sin,
  cos,
  tanh,
  sigmoid,
  relu,
  softplus,
  leaky_relu,   ///< x > 0 ? x : a * x
  elu,          ///< x > 0 ? x : a * (exp(x) - 1)
  clamp,        ///< min(max(x, a), b)
  add_scalar,   ///< x + a
  mul_scalar,   ///< x * a
  pow_scalar,   ///< x ^ a
  rpow_scalar,  ///< a ^ x
  gt_scalar,    ///< x > a ? 1 : 0
  lt_scalar,    ///< x < a ? 1 : 0
  ge_scalar,    ///< x >= a ? 1 : 0
  le_scalar,    ///< x <= a ? 1 : 0
  eq_scalar,    ///< x == a ? 1 : 0
};
const char* unary_name(UnaryOp op);

/// y = op(x) elementwise; a and b are the op's scalar parameters. Output is contiguous, same
/// dtype. i64 inputs are accepted only by ops that are exact on integers (neg, abs, sign,
/// square, relu, clamp, add/mul_scalar, comparisons); the rest throw.
Tensor unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0);

enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge };
const char* binary_name(BinaryOp op);

/// out = a op b with NumPy broadcasting. Mixed dtypes promote (i64 < f32 < f64).
/// Comparisons give 1/0 in the promoted dtype.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
/// dst = dst op src in place, src broadcast to dst's shape; bumps dst's version.
void binary_(BinaryOp op, Tensor& dst, const Tensor& src);
/// cond ? a : b with broadcasting over all three; cond is nonzero-true and may have any dtype.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// dst = src (broadcast, converted); bumps dst's version. Used by Tensor::copy_.
void copy_(Tensor& dst, const Tensor& src);
/// dst = value everywhere; bumps dst's version. Used by Tensor::fill_.
void fill_(Tensor& dst, double value);
/// The dtype both operands are promoted to.
DType promote(DType a, DType b);

// ---------------------------------------------------------------------------------------------
// Reductions (kernels/reduce.cpp). dims: any set of dims, negative allowed; empty = all dims.

enum class ReduceOp { sum, mean, max, min, prod };
const char* reduce_name(ReduceOp op);

/// Reduces over dims; keepdim keeps them as size 1. i64 supports sum/max/min/prod.
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims = {},
              bool keepdim = false);
/// Index of the largest (smallest) element along dim, i64; the first one on ties.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Variance over dims with sum((x - mean)^2) / (n - correction).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
/// log(sum(exp(x))) over dims, computed stably (max subtracted).
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
/// Stable softmax / log-softmax along dim (fused kernels).
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
/// Sums a tensor down to `shape` (the inverse of broadcasting it there): leading dims are
/// summed away, dims where shape has 1 are summed with keepdim.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---------------------------------------------------------------------------------------------
// Linear algebra (kernels/gemm.cpp), through OpenBLAS sgemm/dgemm.

/// a: (..., n, k) @ b: (..., k, m) -> (..., n, m), leading dims broadcast; a 1-D a is (1, k)
/// and a 1-D b is (k, 1), the added dim removed from the result (NumPy rules). A transposed
/// operand (strides (1, ld)) reaches BLAS as a transpose flag without a copy.
Tensor matmul(const Tensor& a, const Tensor& b);
/// x: (N, in), w: (out, in), bias: (out) or undefined -> x @ w^T + bias: (N, out), in one gemm
/// (bias pre-filled into the output, beta = 1).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);

/// OpenBLAS runs on the calling thread (tensor/threads.h); matmul and linear split a product of
/// at least this many multiply-adds (M N K) over encore's threads, one block of the output each
/// (a batch of smaller products: whole products per thread)...
inline constexpr int64_t kGemmParallelWork = int64_t(1) << 20;
/// ...in blocks of at least this many rows or columns of the output.
inline constexpr int64_t kGemmMinBlock = 32;
/// The threads one (M, K) @ (K, N) product runs on: 1 below kGemmParallelWork, inside a parallel
/// region or with one thread set; else up to get_num_threads(), kGemmMinBlock rows or columns
/// (the longer side) each.
int gemm_threads(int64_t M, int64_t N, int64_t K);

// ---------------------------------------------------------------------------------------------
// Convolution helpers (kernels/conv.cpp)

/// The window geometry of im2col, col2im and max_pool2d; the output size along each axis is
/// window_output_size (tensor/geometry.h), which validates it.
struct Conv2dGeometry {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  /// Pooling's ceil_mode: windows may run past the padded edge (those taps read nothing).
  bool ceil_mode = false;
  WindowDim along_h() const { return {kernel_h, stride_h, pad_h, dilation_h}; }
  WindowDim along_w() const { return {kernel_w, stride_w, pad_w, dilation_w}; }
};
/// x: (N, C, H, W) -> columns (N, C*kh*kw, Ho*Wo); row c*kh*kw + i*kw + j holds, for every
/// output position, the input pixel under kernel tap (i, j) of channel c (0 in the padding).
Tensor im2col(const Tensor& x, const Conv2dGeometry& g);
/// The adjoint of im2col: columns (N, C*kh*kw, Ho*Wo) -> image of shape (N, C, H, W),
/// summing every column entry into the pixel it came from (padding dropped).
Tensor col2im(const Tensor& cols, const Shape& image_shape, const Conv2dGeometry& g);

struct MaxPoolResult {
  Tensor values;   ///< (N, C, Ho, Wo)
  Tensor indices;  ///< (N, C, Ho, Wo) i64: h * W + w of the max inside each input plane
};
/// Max over kernel windows (padding counts as -inf); dilation as in conv.
MaxPoolResult max_pool2d(const Tensor& x, const Conv2dGeometry& g);

// ---------------------------------------------------------------------------------------------
// Joining, splitting and indexing (kernels/index.cpp)

/// Joins along an existing dim; all other dims must match.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
/// Joins along a new dim.
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
/// Views of consecutive pieces along dim with the given sizes (which must sum to the size).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
/// Constant padding. pads lists (before, after) pairs starting from the LAST dim, as
/// torch.nn.functional.pad: {left, right, top, bottom, ...}. Negative pads crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0);
/// Rows of x along dim picked by a 1-D i64 index: out.shape[dim] = index.numel().
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// base + (src added into the rows of base along dim named by index), out of place; repeated
/// indices accumulate. The adjoint of index_select.
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
/// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on); index i64, same ndim as x,
/// out has index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// base + src scattered along dim by index (accumulating), out of place. Adjoint of gather.
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace encore::raw
