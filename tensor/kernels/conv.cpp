// Convolution helpers: im2col and its adjoint col2im (the data movement that turns conv2d and
// conv_transpose2d into gemm), and max_pool2d with argmax indices. All support stride, padding
// and dilation in f32 and f64; work is split over the N*C image planes when it is large.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/creation.h"
#include "tensor/kernels.h"
#include "tensor/threads.h"

namespace encore::raw {
namespace {

/// floor(a / b) and ceil(a / b) for b > 0.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

std::string describe(const Conv2dGeometry& g) {
  std::ostringstream os;
  os << "kernel (" << g.kernel_h << ", " << g.kernel_w << "), stride (" << g.stride_h << ", "
     << g.stride_w << "), padding (" << g.pad_h << ", " << g.pad_w << "), dilation ("
     << g.dilation_h << ", " << g.dilation_w << ")";
  if (g.ceil_mode) os << ", ceil_mode";
  return os.str();
}

/// Throws unless x is f32 or f64.
void check_float(const char* op, const Tensor& x) {
  ENCORE_CHECK(is_floating(x.dtype()), op, "dtype ", x.dtype(), " of input ", x.shape(),
               " is not supported (needs f32 or f64)");
}

/// Sizes of a validated (N, C, H, W) -> (N, C, Ho, Wo) window operation.
struct PlaneDims {
  int64_t N, C, H, W, Ho, Wo;
};

/// Checks a 4-D input shape and the geometry for op (window_output_size along H and W);
/// returns the sizes.
PlaneDims plane_dims(const char* op, const Shape& x, const Conv2dGeometry& g) {
  ENCORE_CHECK(x.size() == 4 && x[0] >= 0 && x[1] >= 0 && x[2] >= 0 && x[3] >= 0, op, "input ", x,
               " must be 4-D (N, C, H, W)");
  const int64_t ho = window_output_size(op, x, 2, g.along_h(), g.ceil_mode);
  const int64_t wo = window_output_size(op, x, 3, g.along_w(), g.ceil_mode);
  // Every tensor this op allocates (columns N * C * kh * kw * Ho * Wo at most) must have a
  // representable size: each partial product (zeros counted as one) stays below 2^60.
  int64_t total = 1;
  for (int64_t f : {x[0], x[1], g.kernel_h, g.kernel_w, ho, wo}) {
    bool overflow = __builtin_mul_overflow(total, std::max<int64_t>(f, 1), &total);
    ENCORE_CHECK(!overflow && total < (int64_t(1) << 60), op, "input ", x, " with ", describe(g),
                 " gives a result too large to allocate");
  }
  return {x[0], x[1], x[2], x[3], ho, wo};
}

/// The output columns [lo, hi) whose tap at offset `off` (= tap * dilation - pad) lands inside
/// [0, size): positions o * stride + off.
void valid_range(int64_t off, int64_t stride, int64_t size, int64_t n_out, int64_t& lo,
                 int64_t& hi) {
  lo = std::clamp<int64_t>(ceil_div(-off, stride), 0, n_out);
  hi = std::clamp<int64_t>(floor_div(size - 1 - off, stride) + 1, lo, n_out);
}

/// The walk shared by im2col and col2im: calls f(tap, oh, ih, lo, hi, off_w) for every kernel
/// tap (i * kw + j) and output row oh, where ih is the input row the tap reads (-1 in the
/// padding) and output columns [lo, hi) read input columns ow * stride_w + off_w in bounds.
template <class F>
void for_each_tap(const PlaneDims& d, const Conv2dGeometry& g, F&& f) {
  for (int64_t i = 0; i < g.kernel_h; ++i)
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      int64_t off_w = j * g.dilation_w - g.pad_w, lo, hi;
      valid_range(off_w, g.stride_w, d.W, d.Wo, lo, hi);
      for (int64_t oh = 0; oh < d.Ho; ++oh) {
        int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;
        f(i * g.kernel_w + j, oh, (ih >= 0 && ih < d.H) ? ih : -1, lo, hi, off_w);
      }
    }
}

}  // namespace

Tensor im2col(const Tensor& x, const Conv2dGeometry& g) {
  check_defined("im2col", x);
  PlaneDims d = plane_dims("im2col", x.shape(), g);
  check_float("im2col", x);
  int64_t taps = g.kernel_h * g.kernel_w, L = d.Ho * d.Wo, planes = d.N * d.C;
  Tensor cols({d.N, d.C * taps, L}, x.dtype());
  dispatch_float("im2col", x.dtype(), [&]<class T>() {
    Tensor xc = x.contiguous();
    const T* xp = xc.data<T>();
    T* cp = cols.data<T>();
    // plane p = (n, c): image (H, W) -> rows c*taps .. c*taps + taps of cols[n], each (Ho*Wo).
#pragma omp parallel for schedule(static) if (planes * taps * L > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p) {
      const T* src = xp + p * d.H * d.W;
      T* dst = cp + p * taps * L;
      for_each_tap(d, g,
                   [&](int64_t tap, int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t off_w) {
                     T* r = dst + tap * L + oh * d.Wo;  // (Wo) output row
                     if (ih < 0) {
                       std::fill(r, r + d.Wo, T(0));
                       return;
                     }
                     const T* s = src + ih * d.W;  // (W) input row
                     std::fill(r, r + lo, T(0));
                     for (int64_t ow = lo; ow < hi; ++ow) r[ow] = s[ow * g.stride_w + off_w];
                     std::fill(r + hi, r + d.Wo, T(0));
                   });
    }
  });
  return cols;
}

Tensor col2im(const Tensor& cols, const Shape& image_shape, const Conv2dGeometry& g) {
  check_defined("col2im", cols);
  PlaneDims d = plane_dims("col2im", image_shape, g);
  check_float("col2im", cols);
  int64_t taps = g.kernel_h * g.kernel_w, L = d.Ho * d.Wo, planes = d.N * d.C;
  Shape want{d.N, d.C * taps, L};
  ENCORE_CHECK(cols.shape() == want, "col2im", "columns ", cols.shape(), " do not match image ",
               image_shape, " with ", describe(g), " (expected ", want, ")");
  Tensor img = zeros(image_shape, cols.dtype());
  dispatch_float("col2im", cols.dtype(), [&]<class T>() {
    Tensor cc = cols.contiguous();
    const T* cp = cc.data<T>();
    T* ip = img.data<T>();
    // plane p = (n, c): rows c*taps .. c*taps + taps of cols[n] summed into image (H, W).
#pragma omp parallel for schedule(static) if (planes * taps * L > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p) {
      const T* src = cp + p * taps * L;
      T* dst = ip + p * d.H * d.W;
      for_each_tap(d, g,
                   [&](int64_t tap, int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t off_w) {
                     if (ih < 0) return;                      // padding rows receive nothing
                     const T* r = src + tap * L + oh * d.Wo;  // (Wo) column row
                     T* s = dst + ih * d.W;                   // (W) image row
                     for (int64_t ow = lo; ow < hi; ++ow) s[ow * g.stride_w + off_w] += r[ow];
                   });
    }
  });
  return img;
}

MaxPoolResult max_pool2d(const Tensor& x, const Conv2dGeometry& g) {
  check_defined("max_pool2d", x);
  PlaneDims d = plane_dims("max_pool2d", x.shape(), g);
  check_float("max_pool2d", x);
  int64_t planes = d.N * d.C, L = d.Ho * d.Wo;
  MaxPoolResult res{Tensor({d.N, d.C, d.Ho, d.Wo}, x.dtype()),
                    Tensor({d.N, d.C, d.Ho, d.Wo}, DType::i64)};
  if (planes == 0) return res;
  // Taps [lo, hi) of each output row (column) that land inside the input; a window that lies
  // wholly in the padding has no maximum, so it is an error rather than a -inf output.
  std::vector<int64_t> i_lo(d.Ho), i_hi(d.Ho), j_lo(d.Wo), j_hi(d.Wo);
  auto taps_in = [](int64_t start, int64_t dil, int64_t k, int64_t size, int64_t& lo, int64_t& hi) {
    lo = std::clamp<int64_t>(ceil_div(-start, dil), 0, k);
    hi = std::clamp<int64_t>(floor_div(size - 1 - start, dil) + 1, lo, k);
  };
  for (int64_t oh = 0; oh < d.Ho; ++oh) {
    taps_in(oh * g.stride_h - g.pad_h, g.dilation_h, g.kernel_h, d.H, i_lo[oh], i_hi[oh]);
    ENCORE_CHECK(i_lo[oh] < i_hi[oh], "max_pool2d", "input ", x.shape(), " with ", describe(g),
                 ": the window of output row ", oh, " lies entirely in the padding");
  }
  for (int64_t ow = 0; ow < d.Wo; ++ow) {
    taps_in(ow * g.stride_w - g.pad_w, g.dilation_w, g.kernel_w, d.W, j_lo[ow], j_hi[ow]);
    ENCORE_CHECK(j_lo[ow] < j_hi[ow], "max_pool2d", "input ", x.shape(), " with ", describe(g),
                 ": the window of output column ", ow, " lies entirely in the padding");
  }
  dispatch_float("max_pool2d", x.dtype(), [&]<class T>() {
    Tensor xc = x.contiguous();
    const T* xp = xc.data<T>();
    T* vp = res.values.data<T>();
    int64_t* ip = res.indices.data<int64_t>();
    // plane p: image (H, W) -> values, indices (Ho, Wo)
#pragma omp parallel for schedule(static) if (planes * L * g.kernel_h * g.kernel_w > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p) {
      const T* src = xp + p * d.H * d.W;
      T* vrow = vp + p * L;
      int64_t* irow = ip + p * L;
      for (int64_t oh = 0; oh < d.Ho; ++oh) {
        // The in-bounds taps i_lo .. i_hi - 1 read input rows h0 + i dh (always at least one);
        // indexing by tap keeps every row and column computed inside the input.
        const int64_t dh = g.dilation_h, dw = g.dilation_w;
        const int64_t h0 = oh * g.stride_h - g.pad_h;
        for (int64_t ow = 0; ow < d.Wo; ++ow, ++vrow, ++irow) {
          const int64_t w0 = ow * g.stride_w - g.pad_w;
          int64_t arg = (h0 + i_lo[oh] * dh) * d.W + (w0 + j_lo[ow] * dw);
          T best = src[arg];
          for (int64_t i = i_lo[oh]; i < i_hi[oh]; ++i)
            for (int64_t j = j_lo[ow]; j < j_hi[ow]; ++j) {
              const int64_t at = (h0 + i * dh) * d.W + (w0 + j * dw);
              const T v = src[at];
              // NaN wins, as in NumPy/PyTorch: a NaN input gives a NaN maximum.
              if (v > best || std::isnan(v)) {
                best = v;
                arg = at;
              }
            }
          *vrow = best;
          *irow = arg;
        }
      }
    }
  });
  return res;
}

}  // namespace encore::raw
