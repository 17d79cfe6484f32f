// Sliding-window geometry: the output sizes of convolution, transposed convolution and
// pooling, and every check of their arguments, in one place. The raw kernels (im2col, col2im,
// max_pool2d), the ops (conv2d, conv_transpose2d, max/avg_pool2d) and the layers (nn::Conv2d,
// nn::ConvTranspose2d) all size their outputs here. The arithmetic is checked int64 (no
// user-given kernel, stride, padding or dilation can overflow): a value that would throws
// encore::Error naming the op, the shapes and the geometry.
#pragma once

#include <cstdint>

#include "shape.h"

namespace encore {

/// One spatial dim of a sliding window: kernel taps, stride, zeros padded on each side, and
/// dilation (the spacing of the taps).
struct WindowDim {
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1;
};

/// input: (N, C, H, W), dim 2 or 3 -> the number of window positions along it,
///   floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1,
/// or with ceil_mode the ceiling, less one when the last window would start past the input
/// and its left padding (PyTorch's rule, so every window starts inside the input or the left
/// padding). Throws unless kernel, stride and dilation are positive, padding non-negative and
/// the window fits; the message names op, input (and weight, when given) and the geometry.
int64_t window_output_size(const char* op, const Shape& input, int dim, const WindowDim& w,
                           bool ceil_mode = false, const Shape& weight = {});

/// Pooling's output size along dim: window_output_size with PyTorch's pooling rule that the
/// padding is at most half the kernel (so no window lies wholly in the padding).
int64_t pool_output_size(const char* op, const Shape& input, int dim, const WindowDim& w,
                         bool ceil_mode = false);

/// Throws unless output_pad is non-negative and smaller than the stride or the dilation
/// (PyTorch's rule: it picks one of the output sizes a transposed convolution could have).
void check_output_padding(const char* op, const Shape& input, int dim, const WindowDim& w,
                          int64_t output_pad);

/// input: (N, C, H, W), dim 2 or 3 -> a transposed convolution's output size along it,
///   (in - 1) stride - 2 pad + dilation (kernel - 1) + output_pad + 1,
/// which must be positive (checks as window_output_size, plus check_output_padding).
int64_t transposed_output_size(const char* op, const Shape& input, int dim, const WindowDim& w,
                               int64_t output_pad, const Shape& weight = {});

/// dilation (kernel - 1) + 1, the extent of a dilated kernel (checked; input may be empty
/// when there is none yet, e.g. in a layer's constructor).
int64_t dilated_kernel(const char* op, const Shape& input, int dim, const WindowDim& w);

/// Keras / TensorFlow 'same' convolution along dim: the output has ceil(in / stride)
/// positions and the total padding is max((out - 1) stride + dilation (kernel - 1) + 1 - in,
/// 0) (w.pad is ignored). Checked as window_output_size.
int64_t same_padding_total(const char* op, const Shape& input, int dim, const WindowDim& w);

}  // namespace encore
