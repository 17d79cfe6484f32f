// Conv2d and ConvTranspose2d layers, NCHW, with PyTorch's weight layouts and both PyTorch-style
// explicit padding and Keras' 'valid' / 'same' padding modes.
//
// Keras 'same' rules (TensorFlow semantics; the output size never depends on the kernel):
//   Conv2d:           out = ceil(in / s). The total padding (out - 1) s + d (k - 1) + 1 - in
//                     (at least 0) is split with the smaller half before and the larger half
//                     after: an odd total puts the extra row/column at the bottom/right.
//   ConvTranspose2d:  out = in s. The layer is the adjoint of the 'same' Conv2d that maps
//                     in s back to in, so with dk = d (k - 1) + 1 the total padding is
//                     max(dk - s, 0), cropped floor(total / 2) before and the rest after; when
//                     dk < s the missing s - dk rows/columns come from output padding.
// Keras 'valid' rules:
//   Conv2d:           no padding, out = floor((in - dk) / s) + 1.
//   ConvTranspose2d:  out = in s + max(dk - s, 0), i.e. (in - 1) s + dk when dk >= s.
#pragma once

#include <cstdint>
#include <string>

#include "init.h"
#include "module.h"

namespace encore::nn {

/// A (height, width) pair; one integer means the same value for both: `.stride = 2` or
/// `.stride = {2, 1}`.
struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor): `.stride = 2`
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  friend bool operator==(const Size2&, const Size2&) = default;
};

/// How a convolution layer pads its input.
enum class PaddingMode {
  explicit_padding,  ///< `padding` zeros on each side (PyTorch); padding 0 is Keras 'valid'
  valid,             ///< Keras 'valid': no padding (explicit padding must stay 0)
  same,              ///< Keras 'same': see the rules at the top of this file
};

/// Conv2d's options; the layer's geometry uses Size2 pairs (`.stride = 2`), where the op
/// conv2d() takes Conv2dOptions' per-axis fields (encore::Conv2dOptions, autograd/ops.h).
struct Conv2dOptions {
  Size2 stride = 1;
  /// Zeros added on each side (PaddingMode::explicit_padding only).
  Size2 padding = 0;
  Size2 dilation = 1;
  PaddingMode padding_mode = PaddingMode::explicit_padding;
  bool bias = true;
  /// By default the InitConvention's (nn/init.h): Keras' Conv2D default (glorot_uniform
  /// kernel, zero bias) unless set_init_convention(torch).
  Init init = Init::convention;
  DType dtype = DType::f32;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// The former name of Conv2dOptions, kept for existing code.
using ConvOptions = Conv2dOptions;

/// 2-D convolution (cross-correlation, as every framework) with weight (F, C, kh, kw) and
/// bias (F). Seed 002's first encoder layer, Keras Conv2D(32, 3, strides=2, padding='valid'):
///   nn::Conv2d(1, 32, 3, {.stride = 2, .padding_mode = nn::PaddingMode::valid})
/// Parameters: "weight", "bias".
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
         const Conv2dOptions& options = {});

  /// x: (N, C, H, W) -> (N, F, H', W'), with H' = floor((H + 2p - d (kh - 1) - 1) / s) + 1
  /// (explicit), or the Keras rules above.
  Tensor forward(const Tensor& x);
  /// The shape forward() returns for an input of this shape (validated as forward does).
  Shape output_shape(const Shape& input_shape) const;

  /// (F, C, kh, kw).
  Tensor weight() const { return weight_; }
  /// (F), or undefined without bias.
  Tensor bias() const { return bias_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  Size2 kernel_size() const { return kernel_; }
  const Conv2dOptions& options() const { return options_; }

  /// e.g. "Conv2d(1 -> 32, kernel 3, stride 2, valid)".
  std::string describe() const override;

 private:
  /// Padding before / after along one dim for an input of size `in`.
  struct Pads {
    int64_t before = 0, after = 0;
  };
  Pads pads_for(const Shape& input_shape, int dim) const;
  void check_input(const Shape& s) const;

  int64_t in_, out_;
  Size2 kernel_;
  Conv2dOptions options_;
  Tensor weight_, bias_;
};

/// ConvTranspose2d's options (the op conv_transpose2d() takes encore::ConvTranspose2dOptions).
struct ConvTranspose2dOptions {
  Size2 stride = 1;
  /// Rows/columns cropped from each side of the full output (explicit_padding only).
  Size2 padding = 0;
  /// Extra rows/columns at the bottom/right (explicit_padding only); each must be smaller than
  /// the stride or the dilation.
  Size2 output_padding = 0;
  Size2 dilation = 1;
  PaddingMode padding_mode = PaddingMode::explicit_padding;
  bool bias = true;
  /// By default the InitConvention's (nn/init.h): Keras' Conv2DTranspose default
  /// (glorot_uniform kernel, zero bias) unless set_init_convention(torch).
  Init init = Init::convention;
  DType dtype = DType::f32;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// The former name of ConvTranspose2dOptions, kept for existing code.
using ConvTransposeOptions = ConvTranspose2dOptions;

/// Transposed 2-D convolution (the adjoint of Conv2d, a.k.a. deconvolution) with weight
/// (C_in, C_out, kh, kw) (PyTorch layout) and bias (C_out). Seed 002's decoder layer, Keras
/// Conv2DTranspose(64, 3, strides=2, padding='same') on 32 channels:
///   nn::ConvTranspose2d(32, 64, 3, {.stride = 2, .padding_mode = nn::PaddingMode::same})
/// Parameters: "weight", "bias".
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
                  const ConvTranspose2dOptions& options = {});

  /// x: (N, C_in, H, W) -> (N, C_out, H', W'), with
  /// H' = (H - 1) s - 2p + d (kh - 1) + output_padding + 1 (explicit), H s ('same'), or
  /// H s + max(d (kh - 1) + 1 - s, 0) ('valid').
  Tensor forward(const Tensor& x);
  /// The shape forward() returns for an input of this shape (validated as forward does).
  Shape output_shape(const Shape& input_shape) const;

  /// (C_in, C_out, kh, kw).
  Tensor weight() const { return weight_; }
  /// (C_out), or undefined without bias.
  Tensor bias() const { return bias_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  Size2 kernel_size() const { return kernel_; }
  const ConvTranspose2dOptions& options() const { return options_; }

  /// e.g. "ConvTranspose2d(32 -> 64, kernel 3, stride 2, same)".
  std::string describe() const override;

 private:
  int64_t in_, out_;
  Size2 kernel_;
  ConvTranspose2dOptions options_;
  // The op's arguments and the extra bottom/right crop, resolved once from the mode.
  int64_t pad_h_ = 0, pad_w_ = 0, out_pad_h_ = 0, out_pad_w_ = 0, crop_h_ = 0, crop_w_ = 0;
  Tensor weight_, bias_;
};

}  // namespace encore::nn
