// Convolution and pooling, NCHW. conv2d and conv_transpose2d are composites of differentiable
// pieces: im2col / col2im (private ops here, each the other's vjp, as they are adjoint linear
// maps), reshape and a batched matmul whose weight operand broadcasts over the batch. So their
// gradients, and gradients of gradients, come from those pieces' vjps:
//   conv2d:            y = W (F, C*kh*kw) @ im2col(x) (N, C*kh*kw, L) [+ b]
//                      dx = col2im(W^T @ g), dW = sum_n g_n @ cols_n^T, db = sum of g
//   conv_transpose2d:  y = col2im(W^T (F*kh*kw, C) @ x (N, C, H*W)) [+ b]   (conv2d's dx)
// max_pool2d finds the argmax with the raw kernel and re-reads the maxima with gather, whose
// vjp scatters g back to them (and whose second order gathers again). avg_pool2d and
// upsample_nearest2d are composites of im2col/mean and unsqueeze/expand/reshape. Every output
// size and geometry check is tensor/geometry.h's, in checked int64 arithmetic.
#include <algorithm>
#include <vector>

#include "autograd/ops.h"
#include "tensor/creation.h"
#include "tensor/geometry.h"
#include "tensor/kernels.h"

namespace encore {
namespace {

Tensor col2im_op(const Tensor& cols, const Shape& image_shape, const raw::Conv2dGeometry& geo);

/// x: (N, C, H, W) -> columns (N, C*kh*kw, Ho*Wo); vjp: col2im.
Tensor im2col_op(const Tensor& x, const raw::Conv2dGeometry& geo) {
  Tensor y = raw::im2col(x, geo);
  record("im2col", {x}, {y}, [geo, s = x.shape()](const Tensors& g) {
    return Tensors{col2im_op(g[0], s, geo)};  // g: (N, C*kh*kw, Ho*Wo) -> (N, C, H, W)
  });
  return y;
}

/// columns (N, C*kh*kw, Ho*Wo) -> image (N, C, H, W), summing overlaps; vjp: im2col.
Tensor col2im_op(const Tensor& cols, const Shape& image_shape, const raw::Conv2dGeometry& geo) {
  Tensor y = raw::col2im(cols, image_shape, geo);
  record("col2im", {cols}, {y}, [geo](const Tensors& g) {
    return Tensors{im2col_op(g[0], geo)};  // g: (N, C, H, W) -> (N, C*kh*kw, Ho*Wo)
  });
  return y;
}

/// Throws unless x is a 4-D floating tensor (N, C, H, W).
void check_image(const char* op, const Tensor& x) {
  ENCORE_CHECK(x.defined(), op, "input is undefined");
  ENCORE_CHECK(x.dim() == 4, op, "input ", x.shape(), " must be 4-D (N, C, H, W)");
  ENCORE_CHECK(is_floating(x.dtype()), op, "input ", x.shape(), " has dtype ", x.dtype(),
               " (needs f32 or f64)");
}

/// Checks weight (4-D, x's dtype) and bias ((bias_size) or undefined) of a convolution.
void check_params(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                  int64_t in_channels_dim, const char* layout, int64_t bias_dim) {
  ENCORE_CHECK(w.defined() && w.dim() == 4, op, "weight ", (w.defined() ? w.shape() : Shape{}),
               " must be 4-D ", layout);
  ENCORE_CHECK(w.dtype() == x.dtype(), op, "input ", x.shape(), " has dtype ", x.dtype(),
               " but weight ", w.shape(), " has dtype ", w.dtype());
  ENCORE_CHECK(w.size(in_channels_dim) == x.size(1), op, "weight ", w.shape(), " ", layout,
               " expects ", w.size(in_channels_dim), " input channels but input ", x.shape(),
               " has ", x.size(1));
  ENCORE_CHECK(w.size(2) > 0 && w.size(3) > 0, op, "weight ", w.shape(), " has an empty kernel");
  if (!bias.defined()) return;
  ENCORE_CHECK(bias.dim() == 1 && bias.size(0) == w.size(bias_dim), op, "bias ", bias.shape(),
               " does not match weight ", w.shape(), " (needs [", w.size(bias_dim), "])");
  ENCORE_CHECK(bias.dtype() == x.dtype(), op, "bias ", bias.shape(), " has dtype ", bias.dtype(),
               " but input ", x.shape(), " has dtype ", x.dtype());
}

/// The window geometry shared by im2col, col2im and the pooling kernel.
raw::Conv2dGeometry geometry(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                             int64_t dh = 1, int64_t dw = 1) {
  raw::Conv2dGeometry g;
  g.kernel_h = kh, g.kernel_w = kw, g.stride_h = sh, g.stride_w = sw;
  g.pad_h = ph, g.pad_w = pw, g.dilation_h = dh, g.dilation_w = dw;
  return g;
}

/// y (N, F, Ho, Wo) + bias (F), broadcast over N, Ho, Wo.
Tensor add_channel_bias(const Tensor& y, const Tensor& bias) {
  return bias.defined() ? y + reshape(bias, {1, bias.size(0), 1, 1}) : y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  check_image("conv2d", x);
  check_params("conv2d", x, weight, bias, 1, "(F, C, kh, kw)", 0);
  const Shape& s = x.shape();
  int64_t N = s[0], F = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  raw::Conv2dGeometry geo =
      geometry(kh, kw, o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dilation_h, o.dilation_w);
  int64_t Ho = window_output_size("conv2d", s, 2, geo.along_h(), false, weight.shape());
  int64_t Wo = window_output_size("conv2d", s, 3, geo.along_w(), false, weight.shape());
  Tensor cols = im2col_op(x, geo);                       // (N, C*kh*kw, Ho*Wo)
  Tensor w2 = reshape(weight, {F, s[1] * kh * kw});      // (F, C*kh*kw)
  Tensor y = reshape(matmul(w2, cols), {N, F, Ho, Wo});  // (N, F, Ho*Wo) -> (N, F, Ho, Wo)
  return add_channel_bias(y, bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const ConvTranspose2dOptions& o) {
  check_image("conv_transpose2d", x);
  check_params("conv_transpose2d", x, weight, bias, 0, "(C, F, kh, kw)", 1);
  const Shape& s = x.shape();
  int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  int64_t F = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  raw::Conv2dGeometry geo =
      geometry(kh, kw, o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dilation_h, o.dilation_w);
  // (H - 1) s - 2 pad + d (k - 1) + output_pad + 1, checked (tensor/geometry.h).
  const char* op = "conv_transpose2d";
  int64_t Ho = transposed_output_size(op, s, 2, geo.along_h(), o.output_pad_h, weight.shape());
  int64_t Wo = transposed_output_size(op, s, 3, geo.along_w(), o.output_pad_w, weight.shape());
  // The conv2d mapping an (Ho, Wo) image onto columns has (Hc, Wc) output positions: (H, W),
  // plus one more per stride that fits in the output padding when it is >= the stride.
  int64_t Hc = window_output_size(op, {N, F, Ho, Wo}, 2, geo.along_h(), false, weight.shape());
  int64_t Wc = window_output_size(op, {N, F, Ho, Wo}, 3, geo.along_w(), false, weight.shape());
  Tensor w2 = reshape(weight, {C, F * kh * kw});                         // (C, F*kh*kw)
  Tensor cols = matmul(transpose(w2, 0, 1), reshape(x, {N, C, H * W}));  // (N, F*kh*kw, H*W)
  if (Hc != H || Wc != W) {
    // Positions past the input's edge see no input: zero columns.
    cols = pad(reshape(cols, {N, F * kh * kw, H, W}), {0, Wc - W, 0, Hc - H});
    cols = reshape(cols, {N, F * kh * kw, Hc * Wc});
  }
  Tensor y = col2im_op(cols, {N, F, Ho, Wo}, geo);  // (N, F, Ho, Wo)
  return add_channel_bias(y, bias);
}

namespace {

/// The validated kernel geometry of a pooling op (stride 0 meaning the kernel size), and its
/// output size (N, C, Ho, Wo).
raw::Conv2dGeometry pool_geometry(const char* op, const Tensor& x, const Pool2dOptions& o,
                                  Shape& out) {
  check_image(op, x);
  raw::Conv2dGeometry geo = geometry(o.kernel_h, o.kernel_w, o.stride_h ? o.stride_h : o.kernel_h,
                                     o.stride_w ? o.stride_w : o.kernel_w, o.pad_h, o.pad_w);
  geo.ceil_mode = o.ceil_mode;
  ENCORE_CHECK(o.stride_h >= 0 && o.stride_w >= 0, op, "input ", x.shape(), ": stride (",
               o.stride_h, ", ", o.stride_w, ") must be non-negative (0 means the kernel size)");
  const Shape& s = x.shape();
  out = {s[0], s[1], pool_output_size(op, s, 2, geo.along_h(), o.ceil_mode),
         pool_output_size(op, s, 3, geo.along_w(), o.ceil_mode)};
  return geo;
}

/// The number of taps of each (Ho, Wo) window that avg_pool2d divides by: those inside the
/// padded input (PyTorch's count_include_pad), kh * kw except where ceil_mode runs a window
/// past the padded edge. (1, Ho * Wo), x's dtype.
Tensor avg_pool_divisor(const Shape& s, const raw::Conv2dGeometry& g, const Shape& out) {
  auto counts = [](int64_t n_out, int64_t in, int64_t k, int64_t stride, int64_t pad) {
    std::vector<int64_t> c(n_out);
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t start = o * stride - pad;  // >= -pad, < in (pool_output_size)
      c[o] = std::min(start + k, in + pad) - start;
    }
    return c;
  };
  std::vector<int64_t> ch = counts(out[2], s[2], g.kernel_h, g.stride_h, g.pad_h);
  std::vector<int64_t> cw = counts(out[3], s[3], g.kernel_w, g.stride_w, g.pad_w);
  std::vector<double> d;
  d.reserve(ch.size() * cw.size());
  for (int64_t h : ch)
    for (int64_t w : cw) d.push_back(double(h * w));
  return from_vector<double>(d, {1, out[2] * out[3]});
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  Shape out;
  raw::Conv2dGeometry geo = pool_geometry("max_pool2d", x, o, out);
  raw::MaxPoolResult r = raw::max_pool2d(x, geo);
  if (!is_recording({x})) return r.values;
  // Re-read the maxima through gather, so the gradient is scatter_add by the argmax indices
  // (ties go to the first maximum, as the kernel picks it) and second order gathers again.
  const Shape& s = x.shape();
  Tensor planes = reshape(x, {s[0], s[1], s[2] * s[3]});                    // (N, C, H*W)
  Tensor idx = raw::reshape(r.indices, {out[0], out[1], out[2] * out[3]});  // (N, C, Ho*Wo)
  return reshape(gather(planes, 2, idx), out);
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o) {
  Shape out;
  raw::Conv2dGeometry geo = pool_geometry("avg_pool2d", x, o, out);
  const Shape& s = x.shape();
  // Each plane as a one-channel image: (N*C, 1, H, W) -> windows (N*C, kh*kw, Ho*Wo). Padding
  // enters im2col as zeros, so a window inside the padded input averages its kh*kw taps
  // (PyTorch's count_include_pad); with ceil_mode the taps past the padded edge are zeros
  // too but not counted.
  Tensor cols = im2col_op(reshape(x, {s[0] * s[1], 1, s[2], s[3]}), geo);
  Tensor avg;
  if (!o.ceil_mode) {
    avg = mean(cols, {1});  // (N*C, Ho*Wo)
  } else {
    avg = sum(cols, {1}) / cast(avg_pool_divisor(s, geo, out), x.dtype());
  }
  return reshape(avg, out);
}

Tensor max_pool2d(const Tensor& x, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                  int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  return max_pool2d(x, Pool2dOptions{kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w});
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                  int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  return avg_pool2d(x, Pool2dOptions{kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w});
}

Tensor upsample_nearest2d(const Tensor& x, int64_t scale_h, int64_t scale_w) {
  check_image("upsample_nearest2d", x);
  ENCORE_CHECK(scale_h > 0 && scale_w > 0, "upsample_nearest2d", "input ", x.shape(),
               ": scale factors (", scale_h, ", ", scale_w, ") must be positive");
  const Shape& s = x.shape();
  // The output (N, C, H sh, W sw) must have a representable size (checked int64).
  int64_t Ho = 0, Wo = 0, n = 0;
  bool overflow = __builtin_mul_overflow(s[2], scale_h, &Ho) ||
                  __builtin_mul_overflow(s[3], scale_w, &Wo) ||
                  __builtin_mul_overflow(s[0], s[1], &n) || __builtin_mul_overflow(n, Ho, &n) ||
                  __builtin_mul_overflow(n, Wo, &n);
  ENCORE_CHECK(!overflow && n < (int64_t(1) << 62), "upsample_nearest2d", "input ", x.shape(),
               " with scale factors (", scale_h, ", ", scale_w, ") gives an output too large ",
               "to represent");
  // (N, C, H, W) -> (N, C, H, 1, W, 1) -> expand (N, C, H, sh, W, sw) -> (N, C, H*sh, W*sw).
  // The gradient sums each sh x sw block (expand's vjp, reduced by the tape).
  Tensor u = unsqueeze(unsqueeze(x, 4), 3);
  u = expand(u, {s[0], s[1], s[2], scale_h, s[3], scale_w});
  return reshape(u, {s[0], s[1], Ho, Wo});
}

}  // namespace encore
