// Tests of the convolution helpers: im2col + matmul against a direct 7-loop convolution,
// col2im as the exact adjoint of im2col, max_pool2d against a naive loop, and the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tensor/tensor.h"

using namespace encore;
using raw::Conv2dGeometry;

namespace {

/// window_output_size along the height of a (1, 1, in, 1) input.
int64_t out_size(const char* op, int64_t in, int64_t k, int64_t stride, int64_t pad,
                 int64_t dilation, bool ceil_mode = false) {
  return window_output_size(op, {1, 1, in, 1}, 2, {k, stride, pad, dilation}, ceil_mode);
}

std::string conv_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// The geometries every test walks: plain, strided, padded, dilated, asymmetric, mixed.
std::vector<Conv2dGeometry> geometries() {
  return {
      {.kernel_h = 3, .kernel_w = 3},
      {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2},
      {.kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1},
      {.kernel_h = 3, .kernel_w = 3, .dilation_h = 2, .dilation_w = 2},
      {.kernel_h = 2, .kernel_w = 3, .stride_h = 1, .stride_w = 2, .pad_h = 1, .pad_w = 0},
      {.kernel_h = 3,
       .kernel_w = 2,
       .stride_h = 2,
       .stride_w = 3,
       .pad_h = 2,
       .pad_w = 1,
       .dilation_h = 2,
       .dilation_w = 3},
      {.kernel_h = 1, .kernel_w = 1, .stride_h = 2, .stride_w = 2},
      {.kernel_h = 4, .kernel_w = 4, .stride_h = 4, .stride_w = 4, .pad_h = 1, .pad_w = 2},
  };
}

std::string geo_text(const Conv2dGeometry& g) {
  return "k " + std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) + " s " +
         std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) + " p " +
         std::to_string(g.pad_h) + "x" + std::to_string(g.pad_w) + " d " +
         std::to_string(g.dilation_h) + "x" + std::to_string(g.dilation_w);
}

/// Direct convolution x (N, C, H, W) * w (F, C, kh, kw) -> (N, F, Ho, Wo), zero padding.
std::vector<double> direct_conv(const Tensor& x, const Tensor& w, const Conv2dGeometry& g,
                                int64_t Ho, int64_t Wo) {
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), F = w.size(0);
  std::vector<double> out(N * F * Ho * Wo, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < g.kernel_h; ++i)
              for (int64_t j = 0; j < g.kernel_w; ++j) {
                int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;
                int64_t iw = ow * g.stride_w - g.pad_w + j * g.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += xv[((n * C + c) * H + ih) * W + iw] *
                     wv[((f * C + c) * g.kernel_h + i) * g.kernel_w + j];
              }
          out[((n * F + f) * Ho + oh) * Wo + ow] = s;
        }
  return out;
}

/// Direct im2col: x (N, C, H, W) -> (N, C*kh*kw, Ho*Wo) values, zero padding.
std::vector<double> naive_im2col(const Tensor& x, const Conv2dGeometry& g, int64_t Ho, int64_t Wo) {
  std::vector<double> xv = x.to_vector<double>(), out;
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < g.kernel_h; ++i)
        for (int64_t j = 0; j < g.kernel_w; ++j)
          for (int64_t oh = 0; oh < Ho; ++oh)
            for (int64_t ow = 0; ow < Wo; ++ow) {
              int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;
              int64_t iw = ow * g.stride_w - g.pad_w + j * g.dilation_w;
              bool in = ih >= 0 && ih < H && iw >= 0 && iw < W;
              out.push_back(in ? xv[((n * C + c) * H + ih) * W + iw] : 0.0);
            }
  return out;
}

/// Naive max pooling: values and argmax (h * W + w) per output, padding skipped.
void naive_max_pool(const Tensor& x, const Conv2dGeometry& g, int64_t Ho, int64_t Wo,
                    std::vector<double>& values, std::vector<int64_t>& indices) {
  std::vector<double> xv = x.to_vector<double>();
  int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t arg = -1;
        for (int64_t i = 0; i < g.kernel_h; ++i)
          for (int64_t j = 0; j < g.kernel_w; ++j) {
            int64_t ih = oh * g.stride_h - g.pad_h + i * g.dilation_h;
            int64_t iw = ow * g.stride_w - g.pad_w + j * g.dilation_w;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            double v = xv[p * H * W + ih * W + iw];
            if (v > best) {
              best = v;
              arg = ih * W + iw;
            }
          }
        values.push_back(best);
        indices.push_back(arg);
      }
}

double dot(const Tensor& a, const Tensor& b) {
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  REQUIRE(av.size() == bv.size());
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += av[i] * bv[i];
  return s;
}

}  // namespace

TEST_CASE("window_output_size: the floor formula and its errors") {
  CHECK(out_size("conv2d", 28, 3, 1, 0, 1) == 26);
  CHECK(out_size("conv2d", 28, 3, 2, 1, 1) == 14);
  CHECK(out_size("conv2d", 7, 3, 1, 0, 3) == 1);
  CHECK(out_size("conv2d", 5, 2, 3, 0, 1) == 2);
  CHECK(out_size("conv2d", 1, 3, 1, 1, 1) == 1);
  CHECK(conv_error([] { out_size("conv2d", 2, 3, 1, 0, 1); }) ==
        "conv2d: input [1, 1, 2, 1]: the height 2 with padding 0 on each side is smaller than the "
        "kernel 3 (height: kernel 3, stride 1, padding 0, dilation 1)");
  CHECK(conv_error([] { out_size("conv2d", 5, 0, 1, 0, 1); }).rfind("conv2d: ", 0) == 0);
  CHECK_THROWS_AS(out_size("pool", 5, 2, 0, 0, 1), Error);
  CHECK_THROWS_AS(out_size("pool", 5, 2, 1, -1, 1), Error);
  CHECK_THROWS_AS(out_size("pool", 5, 2, 1, 0, 0), Error);
  CHECK_THROWS_AS(out_size("pool", 5, INT64_MAX, 1, INT64_MAX, INT64_MAX), Error);
}

TEST_CASE("im2col: hand-worked columns of a 3x3 image") {
  // x = 1..9 as (1, 1, 3, 3), kernel 2x2: columns (1, 4, 4).
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor cols = raw::im2col(x, {.kernel_h = 2, .kernel_w = 2});
  CHECK(cols.shape() == Shape{1, 4, 4});
  CHECK(cols.to_vector<float>() ==
        std::vector<float>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  // Padding 1, kernel 3, stride 2: 2x2 outputs; the centre tap reads pixels 1, 3, 7, 9.
  Tensor padded = raw::im2col(
      x, {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1});
  CHECK(padded.shape() == Shape{1, 9, 4});
  std::vector<float> p = padded.to_vector<float>();
  CHECK(std::vector<float>(p.begin() + 16, p.begin() + 20) == std::vector<float>{1, 3, 7, 9});
  CHECK(std::vector<float>(p.begin(), p.begin() + 4) == std::vector<float>{0, 0, 0, 5});
}

TEST_CASE("im2col + matmul equals a direct convolution") {
  Generator gen(11);
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Conv2dGeometry& g : geometries()) {
      INFO(geo_text(g), " ", dtype_name(dt));
      int64_t N = 2, C = 3, H = 9, W = 8, F = 4;
      Tensor x = randn({N, C, H, W}, gen, dt), w = randn({F, C, g.kernel_h, g.kernel_w}, gen, dt);
      int64_t Ho = out_size("conv", H, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
      int64_t Wo = out_size("conv", W, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
      Tensor cols = raw::im2col(x, g);  // (N, C*kh*kw, Ho*Wo)
      REQUIRE(cols.shape() == Shape{N, C * g.kernel_h * g.kernel_w, Ho * Wo});
      // (F, C*kh*kw) @ (N, C*kh*kw, Ho*Wo) -> (N, F, Ho*Wo)
      Tensor out = raw::matmul(raw::view(w, {F, -1}), cols);
      std::vector<double> got = out.to_vector<double>();
      std::vector<double> want = direct_conv(x, w, g, Ho, Wo);
      REQUIRE(got.size() == want.size());
      double tol = dt == DType::f32 ? 1e-4 : 1e-12;
      for (size_t i = 0; i < got.size(); ++i)
        CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
    }
  }
}

TEST_CASE("im2col against a direct loop for every geometry") {
  Generator gen(15);
  for (const Conv2dGeometry& g : geometries()) {
    INFO(geo_text(g));
    Tensor x = randn({2, 3, 9, 8}, gen, DType::f64);
    int64_t Ho = out_size("conv", 9, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
    int64_t Wo = out_size("conv", 8, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
    CHECK(raw::im2col(x, g).to_vector<double>() == naive_im2col(x, g, Ho, Wo));
  }
}

TEST_CASE("im2col, col2im and max_pool2d on inputs large enough to use threads") {
  Generator gen(16);
  Conv2dGeometry g{.kernel_h = 3,
                   .kernel_w = 3,
                   .stride_h = 1,
                   .stride_w = 2,
                   .pad_h = 1,
                   .pad_w = 1,
                   .dilation_h = 2,
                   .dilation_w = 1};
  Tensor x = randn({4, 6, 30, 28}, gen, DType::f32);
  int64_t Ho = out_size("conv", 30, 3, 1, 1, 2);
  int64_t Wo = out_size("conv", 28, 3, 2, 1, 1);
  Tensor cols = raw::im2col(x, g);
  REQUIRE(cols.numel() > 2 * kParallelGrain);
  CHECK(cols.to_vector<double>() == naive_im2col(x, g, Ho, Wo));
  Tensor y = randn(cols.shape(), gen, DType::f64);
  Tensor x64 = x.to(DType::f64);
  CHECK(dot(raw::im2col(x64, g), y) ==
        doctest::Approx(dot(x64, raw::col2im(y, x.shape(), g))).epsilon(1e-12));
  auto [values, indices] = raw::max_pool2d(x, g);
  std::vector<double> want_v;
  std::vector<int64_t> want_i;
  naive_max_pool(x, g, Ho, Wo, want_v, want_i);
  CHECK(values.to_vector<double>() == want_v);
  CHECK(indices.to_vector<int64_t>() == want_i);
}

TEST_CASE("im2col: a non-contiguous input gives the same columns") {
  Generator gen(12);
  Tensor base = randn({2, 7, 6, 3}, gen, DType::f64);  // (N, H, W, C)
  Tensor x = raw::permute(base, {0, 3, 1, 2});         // (N, C, H, W) view
  Conv2dGeometry g{.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .pad_h = 1, .dilation_w = 2};
  CHECK(raw::im2col(x, g).to_vector<double>() == raw::im2col(x.clone(), g).to_vector<double>());
}

TEST_CASE("col2im is the adjoint of im2col") {
  Generator gen(13);
  for (const Conv2dGeometry& g : geometries()) {
    INFO(geo_text(g));
    Shape shape{2, 3, 9, 8};
    Tensor x = randn(shape, gen, DType::f64);
    Tensor cols = raw::im2col(x, g);
    Tensor y = randn(cols.shape(), gen, DType::f64);
    Tensor back = raw::col2im(y, shape, g);
    REQUIRE(back.shape() == shape);
    // <im2col(x), y> == <x, col2im(y)>
    double lhs = dot(cols, y), rhs = dot(x, back);
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
    // f32 agrees with f64 to rounding.
    Tensor back32 = raw::col2im(y.to(DType::f32), shape, g);
    std::vector<double> b64 = back.to_vector<double>(), b32 = back32.to_vector<double>();
    for (size_t i = 0; i < b64.size(); ++i) CHECK(std::abs(b64[i] - b32[i]) < 1e-4);
  }
}

TEST_CASE("col2im: overlapping windows accumulate") {
  // All-ones columns for a 3x3 image and a 2x2 kernel count how many windows cover a pixel.
  Conv2dGeometry g{.kernel_h = 2, .kernel_w = 2};
  Tensor img = raw::col2im(ones({1, 4, 4}), {1, 1, 3, 3}, g);
  CHECK(img.to_vector<float>() == std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  // With padding 1 and stride 2 (kernel 3) each pixel is covered once or more; padding drops.
  Conv2dGeometry gp{
      .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
  Tensor img2 = raw::col2im(ones({1, 9, 4}), {1, 1, 3, 3}, gp);
  CHECK(img2.to_vector<float>() == std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  // A non-contiguous columns tensor is read through its strides.
  Tensor y = randn({1, 4, 4});
  Tensor yt = raw::transpose(raw::transpose(y, 1, 2).contiguous(), 1, 2);
  CHECK(raw::col2im(yt, {1, 1, 3, 3}, g).to_vector<float>() ==
        raw::col2im(y, {1, 1, 3, 3}, g).to_vector<float>());
}

TEST_CASE("im2col and col2im: errors name the op, the shape and the geometry") {
  Tensor x = zeros({1, 2, 4, 4});
  CHECK(conv_error([&] {
          raw::im2col(zeros({2, 4, 4}), {.kernel_h = 2, .kernel_w = 2});
        }) == "im2col: input [2, 4, 4] must be 4-D (N, C, H, W)");
  CHECK(conv_error([&] { raw::im2col(x, {.kernel_h = 5, .kernel_w = 2}); }) ==
        "im2col: input [1, 2, 4, 4]: the height 4 with padding 0 on each side is smaller than "
        "the kernel 5 (height: kernel 5, stride 1, padding 0, dilation 1)");
  std::string e = conv_error([&] { raw::im2col(x, {.kernel_h = 0, .kernel_w = 2}); });
  CHECK(e ==
        "im2col: input [1, 2, 4, 4]: kernel, stride and dilation must be positive and "
        "padding non-negative (height: kernel 0, stride 1, padding 0, dilation 1)");
  CHECK_THROWS_AS(raw::im2col(x, {.stride_h = 0}), Error);
  CHECK_THROWS_AS(raw::im2col(x, {.pad_w = -1}), Error);
  CHECK_THROWS_AS(raw::im2col(x, {.dilation_h = -2}), Error);
  CHECK_THROWS_AS(raw::im2col(x, {.kernel_h = 3, .kernel_w = 3, .dilation_h = 2}), Error);
  CHECK(conv_error([&] {
          raw::im2col(zeros({1, 2, 4, 4}, DType::i64), {});
        }) == "im2col: dtype i64 of input [1, 2, 4, 4] is not supported (needs f32 or f64)");
  CHECK_THROWS_AS(raw::col2im(zeros({1, 2, 16}, DType::i64), {1, 2, 4, 4}, {}), Error);
  CHECK_THROWS_AS(raw::im2col(x, {.kernel_h = INT64_MAX / 2, .pad_h = INT64_MAX / 2}), Error);
  CHECK(conv_error([&] {
          raw::col2im(zeros({1, 8, 8}), {1, 2, 4, 4}, {.kernel_h = 2, .kernel_w = 2});
        }) ==
        "col2im: columns [1, 8, 8] do not match image [1, 2, 4, 4] with kernel (2, 2), "
        "stride (1, 1), padding (0, 0), dilation (1, 1) (expected [1, 8, 9])");
  CHECK_THROWS_AS(raw::col2im(zeros({1, 8, 9}), {2, 4, 4}, {.kernel_h = 2, .kernel_w = 2}), Error);
  CHECK_THROWS_AS(raw::col2im(zeros({1, 8, 9}), {1, -2, 4, 4}, {}), Error);
  // Empty batches are fine.
  CHECK(raw::im2col(zeros({0, 2, 4, 4}), {.kernel_h = 2}).shape() == Shape{0, 4, 12});
  CHECK(raw::col2im(zeros({0, 4, 12}), {0, 2, 4, 4}, {.kernel_h = 2}).shape() == Shape{0, 2, 4, 4});
}

TEST_CASE("max_pool2d against a naive loop") {
  Generator gen(14);
  std::vector<Conv2dGeometry> gs = {
      {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2},
      {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1},
      {.kernel_h = 3,
       .kernel_w = 2,
       .stride_h = 1,
       .stride_w = 2,
       .pad_h = 1,
       .pad_w = 1,
       .dilation_h = 2,
       .dilation_w = 1},
      {.kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1, .dilation_h = 2, .dilation_w = 3},
  };
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Conv2dGeometry& g : gs) {
      INFO(geo_text(g));
      int64_t N = 2, C = 3, H = 7, W = 9;
      Tensor x = randn({N, C, H, W}, gen, dt);
      auto [values, indices] = raw::max_pool2d(x, g);
      int64_t Ho = out_size("p", H, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
      int64_t Wo = out_size("p", W, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
      REQUIRE(values.shape() == Shape{N, C, Ho, Wo});
      REQUIRE(indices.shape() == Shape{N, C, Ho, Wo});
      CHECK(values.dtype() == dt);
      CHECK(indices.dtype() == DType::i64);
      std::vector<double> want_v;
      std::vector<int64_t> want_i;
      naive_max_pool(x, g, Ho, Wo, want_v, want_i);
      CHECK(values.to_vector<double>() == want_v);
      CHECK(indices.to_vector<int64_t>() == want_i);
    }
  }
}

TEST_CASE("max_pool2d: padding is -inf, ties pick the first, NaN propagates") {
  // All-negative input with padding: a zero pad would win; -inf padding must not.
  Tensor x = from_vector<float>({-1, -2, -3, -4}, {1, 1, 2, 2});
  auto r = raw::max_pool2d(x, {.kernel_h = 2, .kernel_w = 2, .pad_h = 1, .pad_w = 1});
  CHECK(r.values.shape() == Shape{1, 1, 3, 3});
  CHECK(r.values.to_vector<float>() == std::vector<float>{-1, -1, -2, -1, -1, -2, -3, -3, -4});
  CHECK(r.indices.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 0, 0, 1, 2, 2, 3});
  // Ties: the first maximum in window order wins.
  Tensor t = from_vector<double>({5, 5, 5, 5}, {1, 1, 2, 2});
  CHECK(raw::max_pool2d(t, {.kernel_h = 2, .kernel_w = 2}).indices.item<int64_t>() == 0);
  // NaN wins over numbers.
  Tensor n = from_vector<float>({1, std::nanf(""), 3, 2}, {1, 1, 2, 2});
  auto rn = raw::max_pool2d(n, {.kernel_h = 2, .kernel_w = 2});
  CHECK(std::isnan(rn.values.item<float>()));
  CHECK(rn.indices.item<int64_t>() == 1);
  // A strided (non-contiguous) input.
  Tensor big = from_vector<float>({1, 9, 2, 8, 3, 7, 4, 6}, {1, 1, 2, 4});
  Tensor odd = raw::slice(big, 3, 0, 4, 2);  // columns 0 and 2: [[1, 2], [3, 4]]
  auto ro = raw::max_pool2d(odd, {.kernel_h = 2, .kernel_w = 2});
  CHECK(ro.values.item<float>() == 4);
  CHECK(ro.indices.item<int64_t>() == 3);
}

TEST_CASE("max_pool2d: errors") {
  Tensor x = zeros({1, 1, 4, 4});
  CHECK(conv_error([&] {
          raw::max_pool2d(zeros({4, 4}), {.kernel_h = 2, .kernel_w = 2});
        }) == "max_pool2d: input [4, 4] must be 4-D (N, C, H, W)");
  CHECK(conv_error([&] {
          raw::max_pool2d(zeros({1, 1, 4, 4}, DType::i64), {});
        }) == "max_pool2d: dtype i64 of input [1, 1, 4, 4] is not supported (needs f32 or f64)");
  // Padding 2 with kernel 2: the first window holds only padding.
  std::string e =
      conv_error([&] { raw::max_pool2d(x, {.kernel_h = 2, .kernel_w = 2, .pad_h = 2}); });
  CHECK(e.rfind("max_pool2d: input [1, 1, 4, 4] with kernel (2, 2)", 0) == 0);
  CHECK(e.find("entirely in the padding") != std::string::npos);
  CHECK_THROWS_AS(raw::max_pool2d(x, {.kernel_h = 5, .kernel_w = 5}), Error);
  CHECK_THROWS_AS(raw::max_pool2d(x, {.kernel_h = 2, .kernel_w = 2, .stride_w = 0}), Error);
  CHECK(raw::max_pool2d(zeros({0, 3, 4, 4}), {.kernel_h = 2}).values.shape() == Shape{0, 3, 3, 4});
}

TEST_CASE("window geometry: checked arithmetic, ceil_mode, pooling and transposed sizes") {
  const int64_t big = int64_t(1) << 62;
  const Shape x{1, 1, 5, 4};
  auto msg = [](const std::function<void()>& f) { return conv_error(f); };
  // Overflow anywhere throws encore::Error naming the op and the input.
  for (WindowDim w :
       {WindowDim{3, 1, big, 1}, WindowDim{3, 1, INT64_MAX, 1}, WindowDim{INT64_MAX, 1, 0, 2},
        WindowDim{3, 1, 0, INT64_MAX}, WindowDim{2, 1, 0, big}}) {
    std::string m = msg([&] { window_output_size("conv2d", x, 2, w); });
    CHECK_MESSAGE(m.rfind("conv2d: input [1, 1, 5, 4]", 0) == 0, m);
  }
  CHECK(window_output_size("conv2d", x, 2, {3, INT64_MAX, 0, 1}) == 1);
  CHECK(window_output_size("conv2d", x, 2, {3, INT64_MAX, 0, 1}, true) == 1);
  CHECK(window_output_size("conv2d", x, 2, {1, 1, (INT64_MAX - 5) / 2, 1}) == INT64_MAX);
  // ceil_mode (PyTorch): 5 with kernel 2, stride 2 -> 3; 4 with kernel 2, stride 3, padding 1
  // -> 2, as a third window would start in the right padding; exact fits are unchanged.
  CHECK(out_size("pool", 5, 2, 2, 0, 1, true) == 3);
  CHECK(out_size("pool", 4, 2, 3, 1, 1, true) == 2);
  CHECK(out_size("pool", 6, 3, 3, 1, 1, true) == 3);
  CHECK(out_size("pool", 7, 3, 2, 1, 1, true) == 4);
  CHECK(out_size("pool", 6, 2, 2, 0, 1, true) == 3);
  // pooling: padding at most half the kernel.
  CHECK(pool_output_size("max_pool2d", x, 2, {3, 2, 1, 1}) == 3);
  CHECK(msg([&] {
          pool_output_size("max_pool2d", x, 3, {2, 2, 2, 1});
        }) ==
        "max_pool2d: input [1, 1, 5, 4]: padding 2 is more than half the kernel 2 (a window would "
        "lie wholly in the padding) (width: kernel 2, stride 2, padding 2, dilation 1)");
  // transposed: (in - 1) s - 2p + d (k - 1) + output_pad + 1, checked.
  CHECK(transposed_output_size("t", x, 2, {3, 2, 1, 1}, 1) == 10);
  CHECK(msg([&] {
          transposed_output_size("t", x, 2, {3, big, 0, 1}, 0);
        }).rfind("t: input", 0) == 0);
  CHECK(msg([&] {
          transposed_output_size("t", x, 2, {3, 2, 0, 1}, 2);
        }).find("output padding") != std::string::npos);
  CHECK(msg([&] {
          transposed_output_size("t", x, 2, {3, 1, 4, 1}, 0);
        }).find("crops") != std::string::npos);
  // Keras 'same'.
  CHECK(same_padding_total("c", x, 2, {3, 2, 0, 1}) == 2);  // out 3: 2 * 2 + 3 - 5
  CHECK(same_padding_total("c", x, 2, {1, 3, 0, 1}) == 0);
  CHECK_THROWS_AS(same_padding_total("c", x, 2, {3, 1, 0, INT64_MAX}), Error);
  CHECK(dilated_kernel("c", {}, 2, {3, 1, 0, 2}) == 5);
  CHECK(msg([&] {
          dilated_kernel("c", {}, 2, {3, 1, 0, INT64_MAX});
        }).rfind("c: the output", 0) == 0);
  // The raw kernels size themselves the same way: huge geometry throws.
  Tensor t = zeros({1, 1, 5, 4});
  CHECK_THROWS_AS(raw::im2col(t, {.kernel_h = 2, .pad_h = big}), Error);
  CHECK_THROWS_AS(raw::max_pool2d(t, {.kernel_h = 2, .dilation_h = INT64_MAX}), Error);
  CHECK(raw::max_pool2d(
            t, {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2, .ceil_mode = true})
            .values.shape() == Shape{1, 1, 3, 2});
}
