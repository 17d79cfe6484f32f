// Creation functions: the *_like family and the (shape, dtype, generator) order of the random
// ones, against the functions they are defined by.
#include <doctest/doctest.h>

#include <vector>

#include "tensor/tensor.h"

using namespace encore;

TEST_CASE("creation: the *_like family takes the shape and dtype of its argument") {
  Tensor t = zeros({2, 3}, DType::f64);
  for (const Tensor& like : {empty_like(t), zeros_like(t), ones_like(t), full_like(t, 2.5),
                             rand_like(t), randn_like(t)}) {
    CHECK(like.shape() == Shape{2, 3});
    CHECK(like.dtype() == DType::f64);
    CHECK_FALSE(like.storage() == t.storage());
  }
  CHECK(full_like(t, 2.5).to_vector<double>() == std::vector<double>(6, 2.5));
  CHECK(ones_like(zeros({4}, DType::i64)).to_vector<int64_t>() == std::vector<int64_t>(4, 1));
}

TEST_CASE("creation: randn_like and rand_like draw what randn and rand draw") {
  Tensor mu = zeros({3, 4});
  Generator g1(7), g2(7);
  CHECK(randn_like(mu, g1, 1.0, 2.0).to_vector<float>() ==
        randn({3, 4}, g2, DType::f32, 1.0, 2.0).to_vector<float>());
  Generator g3(8), g4(8);
  CHECK(rand_like(mu, g3, -1.0, 1.0).to_vector<float>() ==
        rand({3, 4}, g4, DType::f32, -1.0, 1.0).to_vector<float>());
}

TEST_CASE("creation: random tensors also take (shape, dtype, generator)") {
  Generator a(3), b(3);
  Tensor x = randn({5}, DType::f64, a);
  CHECK(x.dtype() == DType::f64);
  CHECK(x.to_vector<double>() == randn({5}, b, DType::f64).to_vector<double>());
  Tensor u = rand({5}, DType::f64, a, 2.0, 3.0);
  CHECK(u.to_vector<double>() == rand({5}, b, DType::f64, 2.0, 3.0).to_vector<double>());
  Tensor m = bernoulli({6}, 0.5, DType::f64, a);
  CHECK(m.to_vector<double>() == bernoulli({6}, 0.5, b, DType::f64).to_vector<double>());
  // The shorter forms keep working and default to f32.
  CHECK(randn({2}).dtype() == DType::f32);
  CHECK(randn({2}, a).dtype() == DType::f32);
}
