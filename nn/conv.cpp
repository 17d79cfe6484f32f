// Conv2d and ConvTranspose2d: parameter registration, the padding-mode arithmetic (Keras 'same'
// and 'valid' resolved into the ops' explicit padding, an asymmetric pad or a crop), and input
// validation with the layer's name.
#include "nn/conv.h"

#include <algorithm>

#include "../tensor/geometry.h"

namespace encore::nn {

namespace {

std::string pair_text(Size2 p) {
  return p.h == p.w ? std::to_string(p.h) : std::to_string(p.h) + "x" + std::to_string(p.w);
}

const char* mode_name(PaddingMode m) {
  switch (m) {
    case PaddingMode::explicit_padding:
      return "explicit";
    case PaddingMode::valid:
      return "valid";
    case PaddingMode::same:
      return "same";
  }
  return "?";
}

/// Shared constructor checks of both layers.
void check_common(const char* layer, int64_t in, int64_t out, Size2 k, Size2 stride, Size2 padding,
                  Size2 dilation, PaddingMode mode, DType dtype) {
  ENCORE_CHECK(in > 0 && out > 0, layer, "channels must be positive, got ", in, " -> ", out);
  ENCORE_CHECK(k.h > 0 && k.w > 0, layer, "kernel size must be positive, got ", pair_text(k));
  ENCORE_CHECK(stride.h > 0 && stride.w > 0, layer, "stride must be positive, got ",
               pair_text(stride));
  ENCORE_CHECK(dilation.h > 0 && dilation.w > 0, layer, "dilation must be positive, got ",
               pair_text(dilation));
  ENCORE_CHECK(padding.h >= 0 && padding.w >= 0, layer, "padding must be non-negative, got ",
               pair_text(padding));
  ENCORE_CHECK(mode == PaddingMode::explicit_padding || padding == Size2(0), layer, "padding ",
               pair_text(padding), " cannot be combined with padding_mode '", mode_name(mode),
               "' (it computes its own)");
  ENCORE_CHECK(is_floating(dtype), layer, "dtype must be f32 or f64, got ", dtype);
}

/// The window along dim 2 (height) or 3 (width) of (N, C, H, W).
WindowDim along(int dim, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation) {
  return dim == 2 ? WindowDim{kernel.h, stride.h, padding.h, dilation.h}
                  : WindowDim{kernel.w, stride.w, padding.w, dilation.w};
}

/// "..., stride 2, padding 1, dilation 2, same, no bias)".
std::string options_text(Size2 stride, Size2 padding, Size2 output_padding, Size2 dilation,
                         PaddingMode mode, bool bias) {
  std::string s;
  if (stride != Size2(1)) s += ", stride " + pair_text(stride);
  if (padding != Size2(0)) s += ", padding " + pair_text(padding);
  if (output_padding != Size2(0)) s += ", output_padding " + pair_text(output_padding);
  if (dilation != Size2(1)) s += ", dilation " + pair_text(dilation);
  if (mode != PaddingMode::explicit_padding) s += std::string(", ") + mode_name(mode);
  if (!bias) s += ", no bias";
  return s + ")";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Conv2d

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
               const Conv2dOptions& options)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options) {
  const Conv2dOptions& o = options_;
  check_common("Conv2d", in_, out_, kernel_, o.stride, o.padding, o.dilation, o.padding_mode,
               o.dtype);
  weight_ =
      register_parameter("weight", Tensor({out_, in_, kernel_.h, kernel_.w}, o.dtype, "Conv2d"));
  if (o.bias) bias_ = register_parameter("bias", empty({out_}, o.dtype));
  init_layer(o.init, weight_, bias_, o.gen ? *o.gen : default_generator());
}

Conv2d::Pads Conv2d::pads_for(const Shape& s, int dim) const {
  if (options_.padding_mode != PaddingMode::same) return {};  // the op pads symmetrically
  const Conv2dOptions& o = options_;
  const int64_t total =
      same_padding_total("Conv2d", s, dim, along(dim, kernel_, o.stride, 0, o.dilation));
  return {total / 2, total - total / 2};  // the extra one, if any, after (bottom/right)
}

void Conv2d::check_input(const Shape& s) const {
  ENCORE_CHECK(s.size() == 4 && s[1] == in_, "Conv2d", "expected input (N, ", in_, ", H, W), got ",
               s);
  ENCORE_CHECK(s[2] > 0 && s[3] > 0, "Conv2d", "input ", s, " has an empty image");
}

Shape Conv2d::output_shape(const Shape& s) const {
  check_input(s);
  const Conv2dOptions& o = options_;
  auto out = [&](int dim) {
    const WindowDim w = along(dim, kernel_, o.stride, o.padding, o.dilation);
    if (o.padding_mode != PaddingMode::same) return window_output_size("Conv2d", s, dim, w);
    same_padding_total("Conv2d", s, dim, w);              // validates the kernel
    return s[dim] / w.stride + (s[dim] % w.stride != 0);  // ceil(in / stride)
  };
  return {s[0], out_, out(2), out(3)};
}

Tensor Conv2d::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined(), "Conv2d", "input is undefined");
  ENCORE_CHECK(x.dtype() == weight_.dtype(), "Conv2d", "input ", x.shape(), " is ", x.dtype(),
               " but the weight is ", weight_.dtype(),
               "; convert it with x.to(DType::", weight_.dtype(), ")");
  output_shape(x.shape());  // validates, naming the layer
  const Conv2dOptions& o = options_;
  encore::Conv2dOptions op{.stride_h = o.stride.h,
                           .stride_w = o.stride.w,
                           .pad_h = o.padding.h,
                           .pad_w = o.padding.w,
                           .dilation_h = o.dilation.h,
                           .dilation_w = o.dilation.w};
  if (o.padding_mode != PaddingMode::same) return conv2d(x, weight_, bias_, op);
  // Keras 'same': the symmetric part goes to the op; an odd total's extra row/column is padded
  // explicitly at the bottom/right.
  const Pads ph = pads_for(x.shape(), 2);
  const Pads pw = pads_for(x.shape(), 3);
  op.pad_h = ph.before;
  op.pad_w = pw.before;
  Tensor xp = x;
  if (ph.after != ph.before || pw.after != pw.before)
    xp = pad(x, {0, pw.after - pw.before, 0, ph.after - ph.before});
  return conv2d(xp, weight_, bias_, op);
}

std::string Conv2d::describe() const {
  const Conv2dOptions& o = options_;
  return "Conv2d(" + std::to_string(in_) + " -> " + std::to_string(out_) + ", kernel " +
         pair_text(kernel_) +
         options_text(o.stride, o.padding, 0, o.dilation, o.padding_mode, bias_.defined());
}

// ---------------------------------------------------------------------------------------------
// ConvTranspose2d

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
                                 const ConvTranspose2dOptions& options)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options) {
  const ConvTranspose2dOptions& o = options_;
  const char* layer = "ConvTranspose2d";
  check_common(layer, in_, out_, kernel_, o.stride, o.padding, o.dilation, o.padding_mode, o.dtype);
  const Size2 op = o.output_padding;
  ENCORE_CHECK(o.padding_mode == PaddingMode::explicit_padding || op == Size2(0), layer,
               "output_padding ", pair_text(op), " cannot be combined with padding_mode '",
               mode_name(o.padding_mode), "' (it computes its own)");
  check_output_padding(layer, {}, 2, along(2, kernel_, o.stride, o.padding, o.dilation), op.h);
  check_output_padding(layer, {}, 3, along(3, kernel_, o.stride, o.padding, o.dilation), op.w);

  // Resolve the mode into the op's padding / output padding and an extra bottom/right crop.
  auto resolve = [&](int dim, int64_t opad, int64_t* pad, int64_t* out_pad, int64_t* crop) {
    const WindowDim w = along(dim, kernel_, o.stride, o.padding, o.dilation);
    const int64_t s = w.stride, p = w.pad, dk = dilated_kernel(layer, {}, dim, w);
    switch (o.padding_mode) {
      case PaddingMode::explicit_padding:
        *pad = p, *out_pad = opad, *crop = 0;
        return;
      case PaddingMode::valid:  // full output, plus s - dk zero rows when the kernel is short
        *pad = 0, *out_pad = std::max<int64_t>(s - dk, 0), *crop = 0;
        return;
      case PaddingMode::same: {  // crop floor(total / 2) before and the rest after
        const int64_t total = std::max<int64_t>(dk - s, 0);
        *pad = total / 2;
        *out_pad = total == 0 ? s - dk : 0;
        *crop = total - 2 * (total / 2);  // 1 when odd: the op crops symmetrically
        return;
      }
    }
  };
  resolve(2, op.h, &pad_h_, &out_pad_h_, &crop_h_);
  resolve(3, op.w, &pad_w_, &out_pad_w_, &crop_w_);

  weight_ = register_parameter(
      "weight", Tensor({in_, out_, kernel_.h, kernel_.w}, o.dtype, "ConvTranspose2d"));
  if (o.bias) bias_ = register_parameter("bias", empty({out_}, o.dtype));
  init_layer(o.init, weight_, bias_, o.gen ? *o.gen : default_generator());
}

Shape ConvTranspose2d::output_shape(const Shape& s) const {
  ENCORE_CHECK(s.size() == 4 && s[1] == in_, "ConvTranspose2d", "expected input (N, ", in_,
               ", H, W), got ", s);
  ENCORE_CHECK(s[2] > 0 && s[3] > 0, "ConvTranspose2d", "input ", s, " has an empty image");
  const ConvTranspose2dOptions& o = options_;
  // (in - 1) s - 2 pad + d (k - 1) + output_pad + 1 (checked), less the extra 'same' crop.
  const char* layer = "ConvTranspose2d";
  const Size2 pad{pad_h_, pad_w_};
  const int64_t ho = transposed_output_size(
                         layer, s, 2, along(2, kernel_, o.stride, pad, o.dilation), out_pad_h_) -
                     crop_h_;
  const int64_t wo = transposed_output_size(
                         layer, s, 3, along(3, kernel_, o.stride, pad, o.dilation), out_pad_w_) -
                     crop_w_;
  ENCORE_CHECK(ho > 0 && wo > 0, layer, "input ", s, " with padding ", pair_text(o.padding),
               " gives an empty output (", ho, "x", wo, ")");
  return {s[0], out_, ho, wo};
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined(), "ConvTranspose2d", "input is undefined");
  ENCORE_CHECK(x.dtype() == weight_.dtype(), "ConvTranspose2d", "input ", x.shape(), " is ",
               x.dtype(), " but the weight is ", weight_.dtype(),
               "; convert it with x.to(DType::", weight_.dtype(), ")");
  output_shape(x.shape());  // validates
  const ConvTranspose2dOptions& o = options_;
  encore::ConvTranspose2dOptions op{.stride_h = o.stride.h,
                                    .stride_w = o.stride.w,
                                    .pad_h = pad_h_,
                                    .pad_w = pad_w_,
                                    .output_pad_h = out_pad_h_,
                                    .output_pad_w = out_pad_w_,
                                    .dilation_h = o.dilation.h,
                                    .dilation_w = o.dilation.w};
  Tensor y = conv_transpose2d(x, weight_, bias_, op);
  // Keras 'same' with an odd total padding: the last row/column is cropped too (negative pad).
  if (crop_h_ || crop_w_) y = pad(y, {0, -crop_w_, 0, -crop_h_});
  return y;
}

std::string ConvTranspose2d::describe() const {
  const ConvTranspose2dOptions& o = options_;
  return "ConvTranspose2d(" + std::to_string(in_) + " -> " + std::to_string(out_) + ", kernel " +
         pair_text(kernel_) +
         options_text(o.stride, o.padding, o.output_padding, o.dilation, o.padding_mode,
                      bias_.defined());
}

}  // namespace encore::nn
