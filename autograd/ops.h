// The differentiable op set: free functions in namespace encore, plus operators. Each op
// computes its forward with tensor/ kernels and, when a tape watches an input, records its
// vjp (written with these same ops, so gradients of gradients work). Forward and vjp of an op
// sit side by side in autograd/ops_<family>.cpp.
#pragma once

#include <vector>

#include "../tensor/tensor.h"
#include "tape.h"

namespace encore {

// ---------------------------------------------------------------------------------------------
// Elementwise (ops_elementwise.cpp). Binary ops broadcast (NumPy rules); scalars adopt the
// tensor's dtype.

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
/// a ^ b elementwise (gradient w.r.t. b uses log(a): defined for a > 0).
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(const Tensor& a, double s);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(const Tensor& a, double s);
Tensor operator/(double s, const Tensor& a);

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
/// log(1 + exp(x)), stable for large |x|.
Tensor softplus(const Tensor& x);
/// min(max(x, lo), hi); the gradient is 1 strictly inside (lo, hi), else 0.
Tensor clamp(const Tensor& x, double lo, double hi);
/// cond ? a : b (cond is not differentiated).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// Comparisons: 1/0 in the promoted dtype; not differentiable (no node is recorded).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);

/// A new handle on the same values that no tape follows (tf.stop_gradient).
Tensor stop_gradient(const Tensor& x);
/// A differentiable copy (contiguous, own storage).
Tensor clone(const Tensor& x);
/// x when already contiguous, else a differentiable contiguous copy.
Tensor contiguous(const Tensor& x);
/// A differentiable dtype conversion between f32 and f64 (to i64 is not differentiated).
Tensor cast(const Tensor& x, DType dtype);

// ---------------------------------------------------------------------------------------------
// Reductions (ops_reduce.cpp). dims: any set (negative allowed); empty = all dims.

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
/// Max/min over dims; the gradient is shared equally among tied maxima.
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
/// Sums x down to shape (the adjoint of broadcasting to it); used by the tape.
Tensor sum_to(const Tensor& x, const Shape& shape);
/// Argmax (i64, not differentiable).
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// ---------------------------------------------------------------------------------------------
// Linear algebra (ops_linalg.cpp)

/// (..., n, k) @ (..., k, m) -> (..., n, m), batched with broadcast leading dims.
Tensor matmul(const Tensor& a, const Tensor& b);
/// x: (..., in), weight: (out, in), bias: (out) or undefined -> (..., out) = x W^T + b.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---------------------------------------------------------------------------------------------
// Shape ops (ops_shape.cpp): views where possible, gradients by the inverse view/copy.

Tensor reshape(const Tensor& x, const Shape& shape);
Tensor view(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);
Tensor concat(const Tensors& xs, int64_t dim = 0);
Tensor stack(const Tensors& xs, int64_t dim = 0);
Tensors split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// Constant padding, pads from the last dim as torch.nn.functional.pad.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

// ---------------------------------------------------------------------------------------------
// Convolution and pooling (ops_conv.cpp). Layout NCHW.

struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
};
/// x: (N, C, H, W), weight: (F, C, kh, kw), bias: (F) or undefined -> (N, F, H', W').
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& o = {});
struct ConvTranspose2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t output_pad_h = 0, output_pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
};
/// x: (N, C, H, W), weight: (C, F, kh, kw) (PyTorch layout), bias: (F) ->
/// (N, F, (H-1)s - 2p + d(k-1) + output_pad + 1, ...).
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& o = {});
/// The geometry of max_pool2d / avg_pool2d, set with designated initialisers:
/// `max_pool2d(x, {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .ceil_mode =
/// true})`. As PyTorch: the padding may be at most half the kernel, and with ceil_mode the output
/// size rounds up, every window still starting inside the input or its left padding (windows
/// running past the edge read only what lies inside).
struct Pool2dOptions {
  int64_t kernel_h = 1, kernel_w = 1;
  /// 0 means the kernel size (PyTorch's default stride).
  int64_t stride_h = 0, stride_w = 0;
  int64_t pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
};
/// Max over windows: x: (N, C, H, W) -> (N, C, H', W'), with
/// H' = floor((H + 2 pad - kernel) / stride) + 1 (ceil with ceil_mode, see Pool2dOptions).
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o);
/// Average over windows, padding counted as zeros (count_include_pad, PyTorch's default); a
/// window running past the padded edge with ceil_mode averages over the part inside it.
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o);
/// The positional forms: max_pool2d(x, 2, 2) is {.kernel_h = 2, .kernel_w = 2}.
Tensor max_pool2d(const Tensor& x, int64_t kernel_h, int64_t kernel_w, int64_t stride_h = 0,
                  int64_t stride_w = 0, int64_t pad_h = 0, int64_t pad_w = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel_h, int64_t kernel_w, int64_t stride_h = 0,
                  int64_t stride_w = 0, int64_t pad_h = 0, int64_t pad_w = 0);
/// Nearest-neighbour upsampling by integer factors.
Tensor upsample_nearest2d(const Tensor& x, int64_t scale_h, int64_t scale_w);

// ---------------------------------------------------------------------------------------------
// Neural-network ops (ops_nn.cpp)

/// Zeroes each element with probability p and scales the rest by 1/(1-p) (training only:
/// callers pass training=false to get x back).
Tensor dropout(const Tensor& x, double p, bool training = true,
               Generator& gen = default_generator());
/// weight: (num, dim), indices: i64 of any shape -> (..., dim).
Tensor embedding(const Tensor& weight, const Tensor& indices);
/// Binary cross-entropy of probabilities, elementwise: p, target (same shape) -> the same
/// shape, -(t max(log p, -100) + (1 - t) max(log(1 - p), -100)) (PyTorch's clamping). p must
/// lie in [0, 1]. nn::binary_cross_entropy reduces it.
Tensor binary_cross_entropy_elementwise(const Tensor& p, const Tensor& target);
/// Binary cross-entropy of logits, elementwise and stable: x, target (same shape) -> the same
/// shape, max(x, 0) - x t + log1p(exp(-|x|)), with the exact gradient sigmoid(x) - t.
/// nn::bce_with_logits reduces it.
Tensor bce_with_logits_elementwise(const Tensor& logits, const Tensor& target);

}  // namespace encore
