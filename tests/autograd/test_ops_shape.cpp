// Shape ops: views share storage (no copy), gradcheck (f64) of every op including slices with
// a step, a three-way concat, a multi-output split and repeated indices, gradgradcheck of the
// vjps (which are themselves shape ops), and error messages.
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

Tensor idx(std::initializer_list<int64_t> v, const Shape& s) {
  return from_vector<int64_t>(std::vector<int64_t>(v), s);
}

/// The outer product of t with itself, (n, 1) @ (1, n): a quadratic, so second derivatives
/// flow through the vjp of the shape op that made t.
Tensor quad(const Tensor& t) {
  Tensor f = reshape(t, {-1, 1});
  return matmul(f, transpose(f, 0, 1));
}

}  // namespace

TEST_CASE("shape ops: views share storage") {
  Tensor x = rn({2, 3, 4}, 1);
  auto shares = [&](const Tensor& v) { return v.storage() == x.storage(); };
  CHECK(shares(reshape(x, {6, 4})));
  CHECK(shares(view(x, {2, 12})));
  CHECK(shares(transpose(x, 0, 2)));
  CHECK(shares(permute(x, {2, 0, 1})));
  CHECK(shares(slice(x, 2, 0, 4, 2)));
  CHECK(shares(select(x, 1, -1)));
  CHECK(shares(narrow(x, 2, 1, 2)));
  CHECK(shares(expand(unsqueeze(x, 0), {5, 2, 3, 4})));
  CHECK(shares(squeeze(unsqueeze(x, 1), 1)));
  CHECK(shares(flatten(x, 1)));
  for (const Tensor& piece : split(x, {1, 2}, 1)) CHECK(shares(piece));
}

TEST_CASE("shape ops: values") {
  Tensor x = arange(0, 12, 1, DType::f64);
  Tensor m = reshape(x, {3, 4});
  CHECK(slice(m, 1, 1, 4, 2).to_vector<double>() == std::vector<double>{1, 3, 5, 7, 9, 11});
  CHECK(select(m, 0, -1).to_vector<double>() == std::vector<double>{8, 9, 10, 11});
  CHECK(transpose(m, 0, 1).to_vector<double>()[1] == 4);
  CHECK(pad(from_vector<double>({1, 2}, {2}), {1, 2}, 7).to_vector<double>() ==
        std::vector<double>{7, 1, 2, 7, 7});
  CHECK(index_select(m, 0, idx({2, 0, 2}, {3})).to_vector<double>() ==
        std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  CHECK(gather(m, 1, idx({3, 0, 1, 1, 2, 2}, {3, 2})).to_vector<double>() ==
        std::vector<double>{3, 0, 5, 5, 10, 10});
  Tensors parts = split(m, {1, 3}, 1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].shape() == Shape{3, 3});
  CHECK(concat({m, m, m}, 1).shape() == Shape{3, 12});
  CHECK(stack({m, m}, 1).shape() == Shape{3, 2, 4});
}

TEST_CASE("shape ops: gradcheck views") {
  check_grad([](const Tensors& x) { return reshape(x[0], {4, -1}); }, {rn({2, 3, 2}, 10)});
  check_grad([](const Tensors& x) { return view(x[0], {6, 2}); }, {rn({2, 3, 2}, 11)});
  // reshape of a non-contiguous view copies
  check_grad([](const Tensors& x) { return reshape(transpose(x[0], 0, 1), {-1}); },
             {rn({3, 4}, 12)});
  check_grad([](const Tensors& x) { return flatten(x[0], 1, 2); }, {rn({2, 3, 2, 2}, 13)});
  check_grad([](const Tensors& x) { return transpose(x[0], 0, 2); }, {rn({2, 3, 4}, 14)});
  check_grad([](const Tensors& x) { return permute(x[0], {2, 0, 1}); }, {rn({2, 3, 4}, 15)});
  check_grad([](const Tensors& x) { return permute(x[0], {1, -1, 0}); }, {rn({2, 3, 4}, 16)});
  check_grad([](const Tensors& x) { return squeeze(x[0], 1); }, {rn({3, 1, 2}, 17)});
  check_grad([](const Tensors& x) { return unsqueeze(x[0], -1); }, {rn({3, 2}, 18)});
}

TEST_CASE("shape ops: gradcheck slice, select, narrow") {
  check_grad([](const Tensors& x) { return slice(x[0], 1, 1, 4); }, {rn({3, 5}, 20)});
  check_grad([](const Tensors& x) { return slice(x[0], 1, 0, 5, 2); }, {rn({3, 5}, 21)});
  // step 3 from a negative start: the last gap is cropped, not padded
  check_grad([](const Tensors& x) { return slice(x[0], 0, -5, 100, 3); }, {rn({7, 2}, 22)});
  check_grad([](const Tensors& x) { return slice(x[0], -1, 1, 6, 2); }, {rn({2, 2, 6}, 23)});
  check_grad([](const Tensors& x) { return select(x[0], 1, -1); }, {rn({2, 3, 2}, 24)});
  check_grad([](const Tensors& x) { return select(x[0], 0, 0); }, {rn({3, 2}, 25)});
  check_grad([](const Tensors& x) { return narrow(x[0], 0, 1, 2); }, {rn({4, 3}, 26)});
  // a slice of a slice of a transpose
  check_grad(
      [](const Tensors& x) { return slice(slice(transpose(x[0], 0, 1), 0, 1, 5, 2), 1, 0, 3, 2); },
      {rn({3, 6}, 27)});
}

TEST_CASE("shape ops: slice with extreme start, end and step") {
  // One row taken with a huge step: the gradient embeds it without padding out the step.
  check_grad([](const Tensors& x) { return slice(x[0], 0, 2, INT64_MAX, INT64_MAX); },
             {rn({5, 2}, 28)});
  check_grad([](const Tensors& x) { return slice(x[0], 1, INT64_MIN, INT64_MAX); },
             {rn({2, 4}, 29)});
  check_grad([](const Tensors& x) { return slice(x[0], 1, INT64_MIN, INT64_MAX, INT64_MAX); },
             {rn({2, 4}, 30)});
  GradientTape tape;
  Tensor x = rn({4}, 31);
  tape.watch(x);
  Tensor y = slice(x, 0, INT64_MAX, INT64_MIN);  // empty
  CHECK(y.numel() == 0);
  CHECK(tape.gradient(sum(y), x).to_vector<double>() == std::vector<double>(4, 0.0));
}

TEST_CASE("shape ops: gradcheck expand") {
  check_grad([](const Tensors& x) { return expand(x[0], {2, 3, 4}); }, {rn({3, 1}, 30)});
  check_grad([](const Tensors& x) { return expand(x[0], {-1, 3}); }, {rn({2, 1}, 31)});
}

TEST_CASE("shape ops: gradcheck concat, stack, split, pad") {
  check_grad(
      [](const Tensors& x) {
        return concat({x[0], x[1], x[2]}, 1);
      },
      {rn({2, 1, 3}, 40), rn({2, 2, 3}, 41), rn({2, 3, 3}, 42)});
  check_grad(
      [](const Tensors& x) {
        return concat({x[0], x[1], x[0]}, -1);
      },
      {rn({2, 2}, 43), rn({2, 1}, 44)});
  check_grad(
      [](const Tensors& x) {
        return stack({x[0], x[1], x[2]}, 1);
      },
      {rn({2, 3}, 45), rn({2, 3}, 46), rn({2, 3}, 47)});
  // Multi-output split; the middle piece is unused, so the tape feeds zeros for it.
  check_grad(
      [](const Tensors& x) {
        Tensors p = split(x[0], {1, 2, 2}, 1);
        return concat({reshape(p[2], {-1}), reshape(p[0], {-1}), reshape(p[2], {-1})}, 0);
      },
      {rn({2, 5}, 48)});
  check_grad([](const Tensors& x) { return pad(x[0], {1, 2}); }, {rn({2, 3}, 49)});
  check_grad([](const Tensors& x) { return pad(x[0], {1, 0, 0, 2}, 3.5); }, {rn({2, 3}, 50)});
  check_grad([](const Tensors& x) { return pad(x[0], {-1, 2, 1, -1}); }, {rn({3, 4}, 51)});
}

TEST_CASE("shape ops: gradcheck index_select and gather") {
  Tensor i = idx({2, 0, 2, 1}, {4});
  check_grad([i](const Tensors& x) { return index_select(x[0], 0, i); }, {rn({3, 2}, 60)});
  check_grad([i](const Tensors& x) { return index_select(x[0], 1, i); }, {rn({2, 3, 2}, 61)});
  Tensor gi = idx({0, 0, 2, 1, 1, 1}, {2, 3});
  check_grad([gi](const Tensors& x) { return gather(x[0], 1, gi); }, {rn({2, 3}, 62)});
  Tensor g0 = idx({1, 0, 1, 1, 1, 0}, {3, 2});
  check_grad([g0](const Tensors& x) { return gather(x[0], 0, g0); }, {rn({2, 2}, 63)});
}

TEST_CASE("shape ops: gradgradcheck (vjps are differentiable)") {
  check_gradgrad([](const Tensors& x) { return quad(slice(x[0], 1, 0, 5, 2)); }, {rn({2, 5}, 70)});
  check_gradgrad([](const Tensors& x) { return quad(select(x[0], 0, 1)); }, {rn({3, 2}, 71)});
  check_gradgrad(
      [](const Tensors& x) {
        return quad(permute(x[0], {1, 0, 2}));
      },
      {rn({2, 2, 2}, 72)});
  check_gradgrad([](const Tensors& x) { return quad(expand(x[0], {2, 3})); }, {rn({1, 3}, 73)});
  check_gradgrad([](const Tensors& x) { return quad(pad(x[0], {1, -1})); }, {rn({2, 3}, 74)});
  check_gradgrad(
      [](const Tensors& x) {
        return quad(concat({x[0], x[1]}, 0));
      },
      {rn({2}, 75), rn({3}, 76)});
  check_gradgrad(
      [](const Tensors& x) {
        Tensors p = split(x[0], {1, 2}, 0);
        return matmul(reshape(p[0], {1, 1}), reshape(p[1], {1, 2}));
      },
      {rn({3}, 77)});
  Tensor i = idx({1, 1, 0}, {3});
  check_gradgrad([i](const Tensors& x) { return quad(index_select(x[0], 0, i)); },
                 {rn({2, 2}, 78)});
  Tensor gi = idx({1, 0, 1, 1}, {2, 2});
  check_gradgrad([gi](const Tensors& x) { return quad(gather(x[0], 1, gi)); }, {rn({2, 2}, 79)});
}

TEST_CASE("shape ops: errors name the op and the shapes") {
  std::string m = error_of([] { reshape(zeros({2, 3}), {4, 2}); });
  CHECK(m.find("reshape") == 0);
  CHECK(m.find("[2, 3]") != std::string::npos);
  m = error_of([] { view(transpose(zeros({2, 3}), 0, 1), {6}); });
  CHECK(m.find("view") == 0);
  m = error_of([] { concat({zeros({2, 3}), zeros({3, 3})}, 1); });
  CHECK(m.find("concat") == 0);
  m = error_of([] { concat({}, 0); });
  CHECK(m.find("concat") == 0);
  m = error_of([] { split(zeros({2, 5}), {2, 2}, 1); });
  CHECK(m.find("split") == 0);
  m = error_of([] { squeeze(zeros({2, 3}), 0); });
  CHECK(m.find("squeeze") == 0);
  m = error_of([] { select(zeros({2, 3}), 1, 3); });
  CHECK(m.find("select") == 0);
  CHECK(m.find("[2, 3]") != std::string::npos);
  m = error_of([] { expand(zeros({2, 3}), {4, 3}); });
  CHECK(m.find("expand") == 0);
  m = error_of([] { index_select(zeros({2, 3}), 0, idx({0, 2}, {2})); });
  CHECK(m.find("index_select") == 0);
}
