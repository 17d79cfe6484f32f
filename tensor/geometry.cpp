// Sliding-window output sizes and their checks, in checked int64 arithmetic
// (__builtin_*_overflow): see geometry.h.
#include "tensor/geometry.h"

#include <sstream>
#include <string>

namespace encore {
namespace {

/// What an error message names: the op, the shapes, and the geometry along one dim.
struct Context {
  const char* op;
  const Shape& input;
  int dim;
  const WindowDim& w;
  const Shape& weight;
};

const char* axis_name(int dim) { return dim == 2 ? "height" : dim == 3 ? "width" : "size"; }

/// "conv2d: input [1, 3, 8, 8], weight [4, 3, 3, 3]: <why> (height: kernel 3, stride 1, ...)".
[[noreturn]] void fail(const Context& c, const std::string& why) {
  std::ostringstream os;
  if (!c.input.empty()) os << "input " << c.input;
  if (!c.weight.empty()) os << (c.input.empty() ? "" : ", ") << "weight " << c.weight;
  if (!c.input.empty() || !c.weight.empty()) os << ": ";
  os << why << " (" << axis_name(c.dim) << ": kernel " << c.w.kernel << ", stride " << c.w.stride
     << ", padding " << c.w.pad << ", dilation " << c.w.dilation << ")";
  ENCORE_FAIL(c.op, os.str());
}

int64_t add(const Context& c, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(c, "the output size overflows int64");
  return r;
}

int64_t mul(const Context& c, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(c, "the output size overflows int64");
  return r;
}

/// Kernel, stride and dilation positive, padding non-negative.
void check_window(const Context& c) {
  if (c.w.kernel <= 0 || c.w.stride <= 0 || c.w.dilation <= 0 || c.w.pad < 0)
    fail(c, "kernel, stride and dilation must be positive and padding non-negative");
}

/// The input's size along c.dim (which must exist and be non-negative).
int64_t input_size(const Context& c) {
  ENCORE_CHECK(c.dim >= 0 && c.dim < c.input.size(), c.op, "input ", c.input, " has no dim ",
               c.dim);
  return c.input[c.dim];
}

int64_t dilated(const Context& c) {
  check_window(c);
  return add(c, mul(c, c.w.dilation, c.w.kernel - 1), 1);
}

}  // namespace

int64_t dilated_kernel(const char* op, const Shape& input, int dim, const WindowDim& w) {
  return dilated({op, input, dim, w, {}});
}

int64_t window_output_size(const char* op, const Shape& input, int dim, const WindowDim& w,
                           bool ceil_mode, const Shape& weight) {
  const Context c{op, input, dim, w, weight};
  const int64_t dk = dilated(c);
  const int64_t in = input_size(c);
  const int64_t padded = add(c, in, mul(c, 2, w.pad));
  if (in < 0 || padded < dk) {
    std::ostringstream why;
    why << "the " << axis_name(dim) << " " << in << " with padding " << w.pad
        << " on each side is smaller than the kernel " << w.kernel;
    if (w.dilation != 1) why << " dilated to " << dk;
    fail(c, why.str());
  }
  const int64_t room = padded - dk;  // >= 0: the positions after the first window
  int64_t out = add(c, room / w.stride, 1);
  if (ceil_mode && room % w.stride != 0) {
    out = add(c, out, 1);
    // The last window must start inside the input or its left padding: (out - 1) stride - pad
    // < in. A product that overflows starts past it too.
    int64_t start;
    if (__builtin_mul_overflow(out - 1, w.stride, &start) || start >= add(c, in, w.pad)) --out;
  }
  return out;
}

int64_t pool_output_size(const char* op, const Shape& input, int dim, const WindowDim& w,
                         bool ceil_mode) {
  const Context c{op, input, dim, w, {}};
  check_window(c);
  if (w.pad > w.kernel / 2) {
    std::ostringstream why;
    why << "padding " << w.pad << " is more than half the kernel " << w.kernel
        << " (a window would lie wholly in the padding)";
    fail(c, why.str());
  }
  return window_output_size(op, input, dim, w, ceil_mode);
}

void check_output_padding(const char* op, const Shape& input, int dim, const WindowDim& w,
                          int64_t output_pad) {
  const Context c{op, input, dim, w, {}};
  check_window(c);
  if (output_pad < 0 || (output_pad >= w.stride && output_pad >= w.dilation)) {
    std::ostringstream why;
    why << "output padding " << output_pad
        << " must be non-negative and smaller than either the stride " << w.stride
        << " or the dilation " << w.dilation;
    fail(c, why.str());
  }
}

int64_t transposed_output_size(const char* op, const Shape& input, int dim, const WindowDim& w,
                               int64_t output_pad, const Shape& weight) {
  const Context c{op, input, dim, w, weight};
  const int64_t dk = dilated(c);
  check_output_padding(op, input, dim, w, output_pad);
  const int64_t in = input_size(c);
  if (in <= 0) fail(c, std::string("the input's ") + axis_name(dim) + " is empty");
  // (in - 1) stride + dk + output_pad - 2 pad: every partial sum is non-negative but the last.
  const int64_t full = add(c, add(c, mul(c, in - 1, w.stride), dk), output_pad);
  const int64_t out = full - mul(c, 2, w.pad);
  if (out <= 0) {
    std::ostringstream why;
    why << "padding " << w.pad << " crops the whole output " << axis_name(dim) << " " << full
        << " (size " << out << ")";
    fail(c, why.str());
  }
  return out;
}

int64_t same_padding_total(const char* op, const Shape& input, int dim, const WindowDim& w) {
  const Context c{op, input, dim, w, {}};
  const int64_t dk = dilated(c);
  const int64_t in = input_size(c);
  if (in <= 0) fail(c, std::string("the input's ") + axis_name(dim) + " is empty");
  const int64_t out = in / w.stride + (in % w.stride != 0);  // ceil(in / stride)
  // (out - 1) stride < in, so only adding the kernel can overflow.
  const int64_t total = add(c, (out - 1) * w.stride, dk) - in;
  return total > 0 ? total : 0;
}

}  // namespace encore
