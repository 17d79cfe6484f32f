// dropout and embedding: exact small cases, mask statistics and reproducibility, gradcheck
// (f64), gradgradcheck of embedding, and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "autograd/autograd.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::error_of;

namespace {

Tensor rn(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return randn(s, gen, DType::f64);
}

}  // namespace

TEST_CASE("dropout: identity when not training or p = 0") {
  Tensor x = rn({3, 4}, 1);
  CHECK(dropout(x, 0.5, false).same(x));
  CHECK(dropout(x, 0.0, true).same(x));
}

TEST_CASE("dropout: mask statistics, scaling and reproducibility") {
  Tensor x = ones({200, 100});
  Generator g1(7), g2(7);
  std::vector<float> a = dropout(x, 0.3, true, g1).to_vector<float>();
  std::vector<float> b = dropout(x, 0.3, true, g2).to_vector<float>();
  CHECK(a == b);  // same seed, same mask
  int64_t zeros_seen = 0;
  for (float v : a) {
    if (v == 0) {
      ++zeros_seen;
    } else {
      CHECK(v == doctest::Approx(1 / 0.7));
    }
  }
  // 20000 Bernoulli(0.3) draws: the fraction is within 0.3 +- 0.02 (6 standard deviations).
  CHECK(std::abs(double(zeros_seen) / a.size() - 0.3) < 0.02);
}

TEST_CASE("dropout: gradcheck") {
  // A fresh generator per call gives every evaluation the same mask.
  GradcheckFn f = [](const Tensors& x) {
    Generator gen(42);
    return dropout(x[0], 0.4, true, gen);
  };
  GradcheckResult r = gradcheck(f, {rn({4, 5}, 2)});
  CHECK_MESSAGE(r.ok, r.message);
  // The gradient is the scaled mask itself.
  Tensor x = rn({4, 5}, 3);
  GradientTape tape;
  tape.watch(x);
  Generator gen(42);
  Tensor y = dropout(x, 0.4, true, gen);
  Tensor dx = tape.gradient(sum(y), x);
  std::vector<double> yv = y.to_vector<double>(), xv = x.to_vector<double>(),
                      dv = dx.to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) CHECK(yv[i] == doctest::Approx(xv[i] * dv[i]));
}

TEST_CASE("dropout: errors") {
  std::string m = error_of([] { dropout(zeros({2, 3}), 1.0); });
  CHECK(m.find("dropout") == 0);
  CHECK(m.find("[2, 3]") != std::string::npos);
  m = error_of([] { dropout(zeros({2, 3}), -0.1); });
  CHECK(m.find("dropout") == 0);
}

TEST_CASE("embedding: values") {
  Tensor w = reshape(arange(0, 8, 1, DType::f64), {4, 2});
  Tensor i = from_vector<int64_t>({3, 0, 3, 1, 2, 2}, {2, 3});
  Tensor y = embedding(w, i);
  CHECK(y.shape() == Shape{2, 3, 2});
  CHECK(y.to_vector<double>() == std::vector<double>{6, 7, 0, 1, 6, 7, 2, 3, 4, 5, 4, 5});
  // a 0-dim index gives one row
  CHECK(embedding(w, from_vector<int64_t>({2}, {})).shape() == Shape{2});
}

TEST_CASE("embedding: gradcheck with repeated indices") {
  Tensor i = from_vector<int64_t>({3, 0, 3, 1, 3, 0}, {3, 2});
  GradcheckResult r =
      gradcheck([i](const Tensors& x) { return embedding(x[0], i); }, {rn({5, 3}, 10)});
  CHECK_MESSAGE(r.ok, r.message);
  // rows looked up k times get k times the gradient; unused rows get zero
  Tensor w = rn({5, 3}, 11);
  GradientTape tape;
  tape.watch(w);
  Tensor dw = tape.gradient(sum(embedding(w, i)), w);
  std::vector<double> want = {2, 2, 2, 1, 1, 1, 0, 0, 0, 3, 3, 3, 0, 0, 0};
  CHECK(dw.to_vector<double>() == want);
  // second order through index_select's vjp (an index_add)
  r = gradgradcheck(
      [i](const Tensors& x) {
        Tensor e = reshape(embedding(x[0], i), {6, 3});
        return matmul(e, transpose(e, 0, 1));
      },
      {rn({5, 3}, 12)});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("embedding: errors") {
  Tensor w = zeros({4, 2});
  std::string m = error_of([&] { embedding(w, from_vector<int64_t>({0, 4}, {2})); });
  CHECK(m.find("embedding") == 0);
  CHECK(m.find("[4, 2]") != std::string::npos);
  CHECK(m.find("index 4") != std::string::npos);
  m = error_of([&] { embedding(w, from_vector<int64_t>({-1}, {1})); });
  CHECK(m.find("index -1") != std::string::npos);
  m = error_of([&] { embedding(w, zeros({2})); });
  CHECK(m.find("embedding") == 0);
  m = error_of([] { embedding(zeros({4}), from_vector<int64_t>({0}, {1})); });
  CHECK(m.find("[4]") != std::string::npos);
}
