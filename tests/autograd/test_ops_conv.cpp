// Convolution and pooling: forward values against direct loops, gradcheck (f64) with
// stride/padding/dilation, conv_transpose2d with output padding, pooling (inputs without ties
// for max_pool2d), gradgradcheck of conv2d, conv_transpose2d and max_pool2d, and error
// messages. PyTorch's own values are checked in test_golden.cpp.
#include <doctest/doctest.h>

#include <string>

#include "autograd/autograd.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_grad;
using encore::testing::check_gradgrad;
using encore::testing::error_of;

namespace {

Tensor rn(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return randn(s, gen, DType::f64);
}

/// Distinct values 0.01 apart in random order: no ties, and no argmax can flip under a
/// finite-difference step.
Tensor distinct(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return reshape(permutation(numel(s), gen).to(DType::f64) * 0.01, s);
}

/// Direct-loop conv2d: x (N, C, H, W), w (F, C, kh, kw), b (F) -> (N, F, Ho, Wo).
std::vector<double> naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& b,
                                 const Conv2dOptions& o, int64_t Ho, int64_t Wo) {
  auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  int64_t F = w.size(0), kh = w.size(2), kw = w.size(3);
  std::vector<double> y(N * F * Ho * Wo);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = bv[f];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                int64_t ih = oh * o.stride_h - o.pad_h + i * o.dilation_h;
                int64_t iw = ow * o.stride_w - o.pad_w + j * o.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += xv[((n * C + c) * H + ih) * W + iw] * wv[((f * C + c) * kh + i) * kw + j];
              }
          y[((n * F + f) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

/// Direct-loop conv_transpose2d: every input pixel scatters weight * value into the output.
std::vector<double> naive_conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b,
                                           const ConvTranspose2dOptions& o, int64_t Ho,
                                           int64_t Wo) {
  auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  int64_t F = w.size(1), kh = w.size(2), kw = w.size(3);
  std::vector<double> y(N * F * Ho * Wo);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t p = 0; p < Ho * Wo; ++p) y[(n * F + f) * Ho * Wo + p] = bv[f];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t v = 0; v < W; ++v)
          for (int64_t f = 0; f < F; ++f)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                int64_t oh = h * o.stride_h - o.pad_h + i * o.dilation_h;
                int64_t ow = v * o.stride_w - o.pad_w + j * o.dilation_w;
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                y[((n * F + f) * Ho + oh) * Wo + ow] +=
                    xv[((n * C + c) * H + h) * W + v] * wv[((c * F + f) * kh + i) * kw + j];
              }
  return y;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
}

const Conv2dOptions kConvVariants[] = {
    {},
    {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1},
    {.stride_h = 2, .stride_w = 1, .pad_h = 0, .pad_w = 2},
    {.pad_h = 1, .pad_w = 1, .dilation_h = 2, .dilation_w = 2},
    {.stride_h = 1, .stride_w = 2, .pad_h = 2, .pad_w = 1, .dilation_h = 2, .dilation_w = 1},
};

}  // namespace

TEST_CASE("conv2d: values against direct loops") {
  Tensor x = rn({2, 3, 7, 6}, 1), w = rn({4, 3, 3, 2}, 2), b = rn({4}, 3);
  for (const Conv2dOptions& o : kConvVariants) {
    Tensor y = conv2d(x, w, b, o);
    check_close(y.to_vector<double>(), naive_conv2d(x, w, b, o, y.size(2), y.size(3)));
  }
  // no bias = zero bias
  Tensor y = conv2d(x, w);
  check_close(y.to_vector<double>(), naive_conv2d(x, w, zeros({4}, DType::f64), {}, 5, 5));
}

TEST_CASE("conv2d: gradcheck with stride, padding, dilation") {
  GradcheckFn f_bias = [](const Tensors& x) { return conv2d(x[0], x[1], x[2]); };
  check_grad(f_bias, {rn({2, 2, 4, 4}, 10), rn({3, 2, 3, 2}, 11), rn({3}, 12)});
  for (size_t k = 1; k < std::size(kConvVariants); ++k) {
    Conv2dOptions o = kConvVariants[k];
    check_grad([o](const Tensors& x) { return conv2d(x[0], x[1], x[2], o); },
               {rn({1, 2, 5, 4}, 13 + k), rn({2, 2, 2, 3}, 20 + k), rn({2}, 30 + k)});
  }
  // no bias, 1x1 kernel
  check_grad([](const Tensors& x) { return conv2d(x[0], x[1]); },
             {rn({2, 3, 3, 2}, 40), rn({2, 3, 1, 1}, 41)});
  // a non-contiguous (permuted) input
  check_grad(
      [](const Tensors& x) {
        return conv2d(permute(x[0], {0, 3, 1, 2}), x[1]);
      },
      {rn({1, 4, 3, 2}, 42), rn({2, 2, 2, 2}, 43)});
}

TEST_CASE("conv2d: gradgradcheck") {
  Conv2dOptions o{.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 1};
  check_gradgrad([o](const Tensors& x) { return conv2d(x[0], x[1], x[2], o); },
                 {rn({1, 2, 3, 3}, 50), rn({2, 2, 2, 2}, 51), rn({2}, 52)});
}

TEST_CASE("conv_transpose2d: values against direct loops") {
  Tensor x = rn({2, 3, 4, 3}, 60), w = rn({3, 2, 3, 2}, 61), b = rn({2}, 62);
  const ConvTranspose2dOptions variants[] = {
      {},
      {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .output_pad_h = 1, .output_pad_w = 1},
      {.stride_h = 2, .stride_w = 3, .pad_h = 0, .pad_w = 1, .output_pad_h = 1, .output_pad_w = 2},
      // output padding >= stride but < dilation: output positions past every column
      {.pad_h = 1, .output_pad_h = 1, .output_pad_w = 1, .dilation_h = 2, .dilation_w = 3},
  };
  for (const ConvTranspose2dOptions& o : variants) {
    Tensor y = conv_transpose2d(x, w, b, o);
    int64_t Ho = (4 - 1) * o.stride_h - 2 * o.pad_h + o.dilation_h * 2 + o.output_pad_h + 1;
    int64_t Wo = (3 - 1) * o.stride_w - 2 * o.pad_w + o.dilation_w * 1 + o.output_pad_w + 1;
    CHECK(y.shape() == Shape{2, 2, Ho, Wo});
    check_close(y.to_vector<double>(), naive_conv_transpose2d(x, w, b, o, Ho, Wo));
  }
}

TEST_CASE("conv_transpose2d: is the adjoint of conv2d w.r.t. its input") {
  // <conv2d(u, W), v> == <u, conv_transpose2d(v, W)> for matching geometry.
  Conv2dOptions c{
      .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 0, .dilation_h = 1, .dilation_w = 2};
  Tensor u = rn({2, 3, 7, 8}, 70), w = rn({4, 3, 3, 2}, 71);
  Tensor cu = conv2d(u, w, Tensor(), c);
  Tensor v = rn(cu.shape(), 72);
  ConvTranspose2dOptions t{.stride_h = 2,
                           .stride_w = 2,
                           .pad_h = 1,
                           .pad_w = 0,
                           .output_pad_h = 0,
                           .output_pad_w = 1,
                           .dilation_h = 1,
                           .dilation_w = 2};
  Tensor tv = conv_transpose2d(v, w, Tensor(), t);
  REQUIRE(tv.shape() == u.shape());
  CHECK(sum(cu * v).item() == doctest::Approx(sum(u * tv).item()).epsilon(1e-12));
}

TEST_CASE("conv_transpose2d: gradcheck with output padding") {
  ConvTranspose2dOptions o{
      .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 0, .output_pad_h = 1, .output_pad_w = 1};
  check_grad([o](const Tensors& x) { return conv_transpose2d(x[0], x[1], x[2], o); },
             {rn({2, 2, 2, 3}, 80), rn({2, 3, 3, 2}, 81), rn({3}, 82)});
  ConvTranspose2dOptions d{.output_pad_h = 1, .dilation_h = 2};
  check_grad([d](const Tensors& x) { return conv_transpose2d(x[0], x[1], Tensor(), d); },
             {rn({1, 2, 3, 2}, 83), rn({2, 2, 2, 2}, 84)});
}

TEST_CASE("conv_transpose2d: gradgradcheck") {
  ConvTranspose2dOptions o{.stride_h = 2, .stride_w = 1, .pad_h = 0, .pad_w = 1, .output_pad_h = 1};
  check_gradgrad([o](const Tensors& x) { return conv_transpose2d(x[0], x[1], x[2], o); },
                 {rn({1, 2, 2, 2}, 85), rn({2, 1, 2, 3}, 86), rn({1}, 87)});
}

TEST_CASE("max_pool2d: values and gradcheck") {
  Tensor x = from_vector<double>({1, 5, 2, 0, 3, 4, 9, 8, 7, 6, 1, 2, 0, 3, 4, 5}, {1, 1, 4, 4});
  CHECK(max_pool2d(x, 2, 2).to_vector<double>() == std::vector<double>{5, 9, 7, 5});
  check_grad([](const Tensors& x) { return max_pool2d(x[0], 2, 2); }, {distinct({2, 2, 4, 5}, 90)});
  check_grad([](const Tensors& x) { return max_pool2d(x[0], 3, 3, 2, 2, 1, 1); },
             {distinct({1, 2, 5, 6}, 91)});
  check_grad([](const Tensors& x) { return max_pool2d(x[0], 3, 2, 1, 2, 1, 0); },
             {distinct({1, 2, 4, 4}, 92)});
  // second order: max_pool2d's vjp is a scatter whose own vjp gathers
  check_gradgrad(
      [](const Tensors& x) {
        Tensor p = reshape(max_pool2d(x[0], 2, 2), {2, 2});
        return matmul(p, p);
      },
      {distinct({1, 1, 4, 4}, 93)});
}

TEST_CASE("avg_pool2d: values and gradcheck") {
  Tensor x = arange(0, 16, 1, DType::f64);
  x = reshape(x, {1, 1, 4, 4});
  CHECK(avg_pool2d(x, 2, 2).to_vector<double>() == std::vector<double>{2.5, 4.5, 10.5, 12.5});
  // count_include_pad: the corner window of a 3x3 kernel with padding 1 averages 4 pixels
  // over 9 taps.
  Tensor y = avg_pool2d(x, 3, 3, 2, 2, 1, 1);
  CHECK(y.to_vector<double>()[0] == doctest::Approx((0 + 1 + 4 + 5) / 9.0));
  check_grad([](const Tensors& x) { return avg_pool2d(x[0], 2, 2); }, {rn({2, 2, 4, 5}, 100)});
  check_grad([](const Tensors& x) { return avg_pool2d(x[0], 3, 3, 2, 2, 1, 1); },
             {rn({1, 2, 5, 6}, 101)});
  check_grad([](const Tensors& x) { return avg_pool2d(x[0], 3, 2, 2, 1, 1, 0); },
             {rn({1, 1, 5, 4}, 102)});
}

TEST_CASE("upsample_nearest2d: values and gradcheck") {
  Tensor x = from_vector<double>({1, 2, 3, 4}, {1, 1, 2, 2});
  CHECK(upsample_nearest2d(x, 2, 3).to_vector<double>() ==
        std::vector<double>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,  //
                            3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  check_grad([](const Tensors& x) { return upsample_nearest2d(x[0], 2, 3); },
             {rn({2, 2, 2, 3}, 110)});
}

TEST_CASE("conv and pooling: errors name the op and the shapes") {
  auto has = [](const std::string& m, const char* op, const char* shape) {
    return m.find(op) == 0 && m.find(shape) != std::string::npos;
  };
  // weight (F, C, kh, kw) with C = 4 against an input with 3 channels
  std::string m = error_of([] { conv2d(zeros({2, 3, 8, 8}), zeros({5, 4, 3, 3})); });
  CHECK_MESSAGE(has(m, "conv2d", "[5, 4, 3, 3]"), m);
  CHECK_MESSAGE(has(m, "conv2d", "[2, 3, 8, 8]"), m);
  m = error_of([] { conv2d(zeros({3, 8, 8}), zeros({5, 3, 3, 3})); });
  CHECK_MESSAGE(has(m, "conv2d", "[3, 8, 8]"), m);
  m = error_of([] { conv2d(zeros({1, 3, 8, 8}), zeros({5, 3, 3})); });
  CHECK_MESSAGE(has(m, "conv2d", "[5, 3, 3]"), m);
  m = error_of([] { conv2d(zeros({1, 3, 8, 8}), zeros({5, 3, 3, 3}), zeros({4})); });
  CHECK_MESSAGE(has(m, "conv2d", "[4]"), m);
  m = error_of([] { conv2d(zeros({1, 3, 2, 8}), zeros({5, 3, 3, 3})); });
  CHECK_MESSAGE(has(m, "conv2d", "[1, 3, 2, 8]"), m);
  m = error_of([] { conv2d(zeros({1, 3, 8, 8}), zeros({5, 3, 3, 3}), Tensor(), {.stride_h = 0}); });
  CHECK_MESSAGE(has(m, "conv2d", "[1, 3, 8, 8]"), m);
  m = error_of([] { conv2d(zeros({1, 3, 8, 8}), zeros({5, 3, 3, 3}, DType::f64)); });
  CHECK_MESSAGE(has(m, "conv2d", "f64"), m);
  // conv_transpose2d: weight (C, F, kh, kw) must match the input's channels; output padding
  // must be below the stride or the dilation.
  m = error_of([] { conv_transpose2d(zeros({1, 3, 4, 4}), zeros({2, 3, 3, 3})); });
  CHECK_MESSAGE(has(m, "conv_transpose2d", "[2, 3, 3, 3]"), m);
  m = error_of([] {
    conv_transpose2d(zeros({1, 3, 4, 4}), zeros({3, 2, 3, 3}), Tensor(),
                     {.stride_h = 2, .stride_w = 2, .output_pad_h = 2});
  });
  CHECK_MESSAGE(has(m, "conv_transpose2d", "[1, 3, 4, 4]"), m);
  CHECK(m.find("output padding") != std::string::npos);
  m = error_of([] { max_pool2d(zeros({1, 2, 3}), 2, 2); });
  CHECK_MESSAGE(has(m, "max_pool2d", "[1, 2, 3]"), m);
  m = error_of([] { max_pool2d(zeros({1, 1, 1, 4}), 2, 2); });
  CHECK_MESSAGE(has(m, "max_pool2d", "[1, 1, 1, 4]"), m);
  m = error_of([] { avg_pool2d(zeros({1, 1, 4, 4}), 0, 2); });
  CHECK_MESSAGE(has(m, "avg_pool2d", "[1, 1, 4, 4]"), m);
  m = error_of([] { upsample_nearest2d(zeros({1, 1, 4, 4}), 0, 2); });
  CHECK_MESSAGE(has(m, "upsample_nearest2d", "[1, 1, 4, 4]"), m);
}

TEST_CASE("pooling: Pool2dOptions, ceil_mode and PyTorch's padding rule") {
  Tensor x = reshape(arange(0, 25, 1, DType::f64), {1, 1, 5, 5});
  // The options form equals the positional one.
  CHECK(max_pool2d(x, {.kernel_h = 2, .kernel_w = 2}).to_vector<double>() ==
        max_pool2d(x, 2, 2).to_vector<double>());
  CHECK(avg_pool2d(
            x, {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1})
            .to_vector<double>() == avg_pool2d(x, 3, 3, 2, 2, 1, 1).to_vector<double>());
  // 5 with kernel 2, stride 2: floor gives 2 windows, ceil_mode 3, the last reading row 4 only.
  Pool2dOptions ceil{.kernel_h = 2, .kernel_w = 2, .ceil_mode = true};
  Tensor m = max_pool2d(x, ceil);
  CHECK(m.shape() == Shape{1, 1, 3, 3});
  CHECK(m.to_vector<double>() == std::vector<double>{6, 8, 9, 16, 18, 19, 21, 23, 24});
  // avg: the last window averages the taps inside the (unpadded) input: 1 or 2 or 4 of them.
  Tensor a = avg_pool2d(x, ceil);
  CHECK(a.to_vector<double>() == std::vector<double>{3, 5, 6.5, 13, 15, 16.5, 20.5, 22.5, 24});
  // A window that would start in the right padding is dropped (PyTorch): 4 with kernel 2,
  // stride 3, padding 1 has 2 windows, not 3.
  CHECK(max_pool2d(zeros({1, 1, 4, 4}), {.kernel_h = 2,
                                         .kernel_w = 2,
                                         .stride_h = 3,
                                         .stride_w = 3,
                                         .pad_h = 1,
                                         .pad_w = 1,
                                         .ceil_mode = true})
            .shape() == Shape{1, 1, 2, 2});
  check_grad(
      [](const Tensors& x) {
        return max_pool2d(x[0], {.kernel_h = 3,
                                 .kernel_w = 2,
                                 .stride_h = 2,
                                 .stride_w = 3,
                                 .pad_h = 1,
                                 .ceil_mode = true});
      },
      {distinct({1, 2, 6, 7}, 120)});
  check_grad(
      [](const Tensors& x) {
        return avg_pool2d(x[0], {.kernel_h = 3,
                                 .kernel_w = 2,
                                 .stride_h = 2,
                                 .stride_w = 3,
                                 .pad_h = 1,
                                 .ceil_mode = true});
      },
      {rn({1, 2, 6, 7}, 121)});
  // Padding more than half the kernel would make a window lie wholly in the padding.
  std::string e = error_of([] { max_pool2d(zeros({1, 1, 4, 4}), 2, 2, 1, 1, 2, 0); });
  CHECK_MESSAGE(
      e.rfind("max_pool2d: input [1, 1, 4, 4]: padding 2 is more than half the kernel 2", 0) == 0,
      e);
  e = error_of([] { avg_pool2d(zeros({1, 1, 4, 4}), {.kernel_h = 3, .kernel_w = 3, .pad_w = 2}); });
  CHECK_MESSAGE(
      e.rfind("avg_pool2d: input [1, 1, 4, 4]: padding 2 is more than half the kernel 3", 0) == 0,
      e);
  CHECK(error_of([] {
          max_pool2d(zeros({1, 1, 4, 4}), 2, 2, -1, 1);
        }).rfind("max_pool2d: ", 0) == 0);
}

TEST_CASE("conv and pooling: huge geometry throws naming the op, never overflows") {
  const int64_t big = int64_t(1) << 62;
  const Tensor x = zeros({1, 1, 4, 4}), w = zeros({1, 1, 3, 3});
  auto named = [](const std::string& m, const char* op) {
    return m.rfind(std::string(op) + ": input [1, 1, 4, 4]", 0) == 0;
  };
  // conv2d: padding so large that 2 pad overflows, a dilation whose span overflows; a huge
  // stride is fine (one window).
  std::string m = error_of([&] { conv2d(x, w, Tensor(), {.pad_h = big}); });
  CHECK_MESSAGE((named(m, "conv2d") && m.find("[1, 1, 3, 3]") != std::string::npos), m);
  CHECK_MESSAGE(m.find("overflows") != std::string::npos, m);
  m = error_of([&] { conv2d(x, w, Tensor(), {.dilation_w = INT64_MAX}); });
  CHECK_MESSAGE(named(m, "conv2d"), m);
  CHECK(conv2d(x, w, Tensor(), {.stride_h = INT64_MAX, .stride_w = INT64_MAX}).shape() ==
        Shape{1, 1, 1, 1});
  // conv_transpose2d: (H - 1) stride and dilation (k - 1) overflow.
  m = error_of([&] { conv_transpose2d(x, w, Tensor(), {.stride_h = big}); });
  CHECK_MESSAGE(named(m, "conv_transpose2d"), m);
  m = error_of([&] { conv_transpose2d(x, w, Tensor(), {.dilation_w = big}); });
  CHECK_MESSAGE(named(m, "conv_transpose2d"), m);
  m = error_of([&] {
    conv_transpose2d(x, w, Tensor(), {.stride_h = 2, .pad_h = INT64_MAX, .output_pad_h = 1});
  });
  CHECK_MESSAGE(named(m, "conv_transpose2d"), m);
  // pooling: huge kernel, stride or padding.
  m = error_of([&] { max_pool2d(x, INT64_MAX, 2); });
  CHECK_MESSAGE(named(m, "max_pool2d"), m);
  m = error_of([&] { avg_pool2d(x, INT64_MAX, INT64_MAX, 1, 1, INT64_MAX / 2, 0); });
  CHECK_MESSAGE(named(m, "avg_pool2d"), m);
  CHECK(max_pool2d(x, {.kernel_h = 2, .kernel_w = 2, .stride_h = INT64_MAX, .ceil_mode = true})
            .shape() == Shape{1, 1, 1, 2});
  // upsample_nearest2d: H * scale overflows, or the output is too large to represent.
  m = error_of([&] { upsample_nearest2d(x, big, 1); });
  CHECK_MESSAGE(named(m, "upsample_nearest2d"), m);
  m = error_of([&] { upsample_nearest2d(x, int64_t(1) << 31, int64_t(1) << 31); });
  CHECK_MESSAGE(named(m, "upsample_nearest2d"), m);
}
