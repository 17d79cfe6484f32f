// matmul and linear: values on small exact cases, gradcheck (f64) over batched, broadcast,
// 1-D and transposed operands, gradgradcheck, only-needed products, and error messages.
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

const GradcheckFn mm = [](const Tensors& x) { return matmul(x[0], x[1]); };

}  // namespace

TEST_CASE("matmul: values") {
  Tensor a = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<double>({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(matmul(a, b).to_vector<double>() == std::vector<double>{4, 5, 10, 11});
  // 1-D @ 1-D is a dot product with shape [].
  Tensor d = matmul(from_vector<double>({1, 2, 3}, {3}), from_vector<double>({4, 5, 6}, {3}));
  CHECK(d.dim() == 0);
  CHECK(d.item() == 32);
}

TEST_CASE("matmul: gradcheck 2-D, batched and broadcast") {
  check_grad(mm, {rn({3, 4}, 1), rn({4, 5}, 2)});
  check_grad(mm, {rn({2, 3, 4}, 3), rn({2, 4, 2}, 4)});
  // batch dims broadcast: (2, 1) with (3) -> (2, 3)
  check_grad(mm, {rn({2, 1, 3, 4}, 5), rn({3, 4, 2}, 6)});
  // a 2-D b shared by a batched a (one-gemm db path), and the converse
  check_grad(mm, {rn({2, 3, 4}, 7), rn({4, 2}, 8)});
  check_grad(mm, {rn({3, 4}, 9), rn({2, 4, 2}, 10)});
}

TEST_CASE("matmul: gradcheck 1-D operands") {
  check_grad(mm, {rn({4}, 11), rn({4, 3}, 12)});
  check_grad(mm, {rn({3, 4}, 13), rn({4}, 14)});
  check_grad(mm, {rn({4}, 15), rn({4}, 16)});
  check_grad(mm, {rn({4}, 17), rn({2, 4, 3}, 18)});
  check_grad(mm, {rn({2, 3, 4}, 19), rn({4}, 20)});
}

TEST_CASE("matmul: gradcheck transposed (non-contiguous) operands") {
  // Both operands reach BLAS as transposed views; so do the vjp's transposes of them.
  check_grad([](const Tensors& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); },
             {rn({4, 3}, 21), rn({5, 4}, 22)});
  check_grad([](const Tensors& x) { return matmul(transpose(x[0], -1, -2), x[1]); },
             {rn({2, 4, 3}, 23), rn({4, 2}, 24)});
  // A strided slice is neither row- nor column-major: copied before BLAS.
  check_grad([](const Tensors& x) { return matmul(slice(x[0], 1, 0, 8, 2), x[1]); },
             {rn({3, 8}, 25), rn({4, 2}, 26)});
}

TEST_CASE("matmul: expanded (stride-0) operands and empty shapes") {
  // An expanded batch reaches BLAS without being materialised; its gradient is summed back.
  check_grad(
      [](const Tensors& x) {
        return matmul(expand(x[0], {3, 2, 4}), x[1]);
      },
      {rn({2, 4}, 27), rn({3, 4, 5}, 28)});
  Tensor a = zeros({0, 3}, DType::f64), b = rn({3, 2}, 29);
  GradientTape tape;
  tape.watch(a);
  tape.watch(b);
  Tensors g = tape.gradient(sum(matmul(a, b)), {a, b});
  CHECK(g[0].shape() == Shape{0, 3});
  CHECK(g[1].shape() == Shape{3, 2});
  CHECK(g[1].to_vector<double>() == std::vector<double>(6, 0.0));
}

TEST_CASE("matmul: gradgradcheck") {
  check_gradgrad(mm, {rn({3, 4}, 31), rn({4, 2}, 32)});
  check_gradgrad(mm, {rn({2, 1, 2, 3}, 33), rn({3, 3, 2}, 34)});
  check_gradgrad(mm, {rn({2, 3, 4}, 35), rn({4, 2}, 36)});
  check_gradgrad(mm, {rn({3}, 37), rn({3, 2}, 38)});
  check_gradgrad(mm, {rn({3}, 39), rn({3}, 40)});
  // x^T x: both operands are the same tensor
  check_gradgrad([](const Tensors& x) { return matmul(transpose(x[0], 0, 1), x[0]); },
                 {rn({3, 2}, 41)});
}

TEST_CASE("matmul: a constant operand") {
  // Only the watched operand's product is computed; the result still matches.
  GradcheckOptions o;
  o.constant_inputs = {1};
  check_grad(mm, {rn({3, 4}, 51), rn({4, 5}, 52)}, o);
  o.constant_inputs = {0};
  check_grad(mm, {rn({2, 3, 4}, 53), rn({4, 5}, 54)}, o);
}

TEST_CASE("matmul: errors name the op and the shapes") {
  std::string m = error_of([] { matmul(zeros({128, 784}), zeros({400, 784})); });
  CHECK(m.find("matmul") == 0);
  CHECK(m.find("[128, 784]") != std::string::npos);
  CHECK(m.find("[400, 784]") != std::string::npos);
  m = error_of([] { matmul(zeros({2, 3, 4}), zeros({3, 4, 5})); });
  CHECK(m.find("matmul") == 0);
  CHECK(m.find("[2, 3, 4]") != std::string::npos);
}

TEST_CASE("linear: values") {
  Tensor x = from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor w = from_vector<double>({1, 0, 1, 1, 0, 2}, {3, 2});
  Tensor b = from_vector<double>({10, 20, 30}, {3});
  CHECK(linear(x, w, b).to_vector<double>() == std::vector<double>{11, 23, 34, 13, 27, 38});
  CHECK(linear(x, w).to_vector<double>() == std::vector<double>{1, 3, 4, 3, 7, 8});
}

TEST_CASE("linear: gradcheck") {
  GradcheckFn lin = [](const Tensors& x) { return linear(x[0], x[1], x[2]); };
  GradcheckFn lin_nb = [](const Tensors& x) { return linear(x[0], x[1]); };
  check_grad(lin, {rn({5, 4}, 61), rn({3, 4}, 62), rn({3}, 63)});
  check_grad(lin, {rn({2, 3, 4}, 64), rn({3, 4}, 65), rn({3}, 66)});  // leading dims flattened
  check_grad(lin, {rn({4}, 67), rn({3, 4}, 68), rn({3}, 69)});        // 1-D input
  check_grad(lin_nb, {rn({5, 4}, 70), rn({2, 4}, 71)});
  // a transposed input and a transposed weight
  check_grad([](const Tensors& x) { return linear(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); },
             {rn({4, 5}, 72), rn({4, 3}, 73)});
  // constant input (the usual first layer) and constant weight
  GradcheckOptions o;
  o.constant_inputs = {0};
  check_grad(lin, {rn({5, 4}, 74), rn({3, 4}, 75), rn({3}, 76)}, o);
  o.constant_inputs = {1, 2};
  check_grad(lin, {rn({5, 4}, 77), rn({3, 4}, 78), rn({3}, 79)}, o);
}

TEST_CASE("linear: gradgradcheck") {
  GradcheckFn lin = [](const Tensors& x) { return linear(x[0], x[1], x[2]); };
  check_gradgrad(lin, {rn({3, 4}, 81), rn({2, 4}, 82), rn({2}, 83)});
  check_gradgrad(lin, {rn({2, 2, 3}, 84), rn({2, 3}, 85), rn({2}, 86)});
}

TEST_CASE("linear: keeps only what its vjp reads") {
  // W is a constant here, so dW is not needed and x is not kept: modifying x in place after
  // the op is harmless, while modifying W (read by dx) makes gradient() throw.
  Tensor x = rn({3, 4}, 91), w = rn({2, 4}, 92);
  std::vector<double> col_sums = sum(w, {0}).to_vector<double>();  // d sum(x W^T) / dx[i]
  {
    GradientTape tape;
    tape.watch(x);
    Tensor y = sum(linear(x, w));
    x.fill_(0);
    std::vector<double> dx = tape.gradient(y, x).to_vector<double>();
    REQUIRE(dx.size() == 12);
    for (size_t i = 0; i < dx.size(); ++i) CHECK(dx[i] == doctest::Approx(col_sums[i % 4]));
  }
  {
    GradientTape tape;
    tape.watch(x);
    Tensor y = sum(linear(x, w));
    w.fill_(1);
    std::string m = error_of([&] { tape.gradient(y, x); });
    CHECK(m.find("modified in place") != std::string::npos);
  }
}

TEST_CASE("linear: errors name the op and the shapes") {
  std::string m = error_of([] { linear(zeros({8, 5}), zeros({3, 4})); });
  CHECK(m.find("linear") == 0);
  CHECK(m.find("[8, 5]") != std::string::npos);
  CHECK(m.find("[3, 4]") != std::string::npos);
  m = error_of([] { linear(zeros({8, 4}), zeros({3, 4}), zeros({4})); });
  CHECK(m.find("linear") == 0);
  CHECK(m.find("[4]") != std::string::npos);
}
