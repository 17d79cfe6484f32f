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

// ---------------------------------------------------------------------------------------------
// Sizes that do not fit: the element count and the byte size are computed with checked
// arithmetic, so a size whose bytes wrap (2^62 f32 elements are 2^64 bytes, 0 mod 2^64) throws
// naming the op and the bytes instead of returning a tensor over a tiny storage.

TEST_CASE("creation: sizes whose bytes pass 2^62 throw naming the op and the bytes") {
  using doctest::Contains;
  const int64_t big = int64_t{1} << 62, half = int64_t{1} << 31;
  CHECK_THROWS_WITH_AS(ones({big}), Contains("ones: a tensor of shape [4611686018427387904]"),
                       Error);
  CHECK_THROWS_WITH_AS(ones({big}), Contains("needs 18446744073709551616 bytes"), Error);
  CHECK_THROWS_WITH_AS(zeros({half, half}),
                       "zeros: a tensor of shape [2147483648, 2147483648] and dtype f32 needs "
                       "18446744073709551616 bytes, more than the limit of 4611686018427387904 "
                       "(2^62)",
                       Error);
  CHECK_THROWS_WITH_AS(empty({big}, DType::f64), Contains("empty: "), Error);
  CHECK_THROWS_WITH_AS(full({half, half}, 2.0), Contains("full: "), Error);
  CHECK_THROWS_WITH_AS(randint(0, 3, {half, half}, default_generator()), Contains("randint: "),
                       Error);
  CHECK_THROWS_WITH_AS(randn({half, half}), Contains("randn: "), Error);
  CHECK_THROWS_WITH_AS(rand({half, half}), Contains("rand: "), Error);
  CHECK_THROWS_WITH_AS(bernoulli({half, half}, 0.5), Contains("bernoulli: "), Error);
  // Past 2^62 elements (the product itself would wrap int64): rejected before any bytes.
  CHECK_THROWS_WITH_AS(zeros({big, 4, 4}), Contains("zeros: shape [4611686018427387904, 4, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(zeros({half, half, half, half}), Contains("too many elements"), Error);
  CHECK_THROWS_WITH_AS(zeros({-1, 3}), Contains("zeros: negative size"), Error);
  // At and under the limit the count is exact.
  CHECK(checked_nbytes("t", {big / 8}, DType::f64) == big);
  CHECK(checked_nbytes("t", {0, big, big}, DType::f64) == 0);
  CHECK(checked_nbytes("t", {}, DType::f32) == 4);
}

TEST_CASE("creation: an allocation the machine cannot serve is an encore::Error with the bytes") {
  using doctest::Contains;
  // 2^61 bytes: within the arithmetic limit, but beyond any x86-64 or arm64 address space, so
  // the allocation fails (std::bad_alloc inside) and comes out as an Error naming the bytes.
  CHECK_THROWS_WITH_AS(empty({int64_t{1} << 58}, DType::f64),
                       "empty: out of memory: cannot allocate 2305843009213693952 bytes for a "
                       "tensor of shape [288230376151711744] and dtype f64",
                       Error);
  CHECK_THROWS_WITH_AS(zeros({int64_t{1} << 30, int64_t{1} << 29}),
                       Contains("zeros: out of memory"), Error);
  // The failed allocation leaves the allocator usable and its statistics balanced.
  const AllocatorStats before = allocator::stats();
  CHECK_THROWS_AS(ones({int64_t{1} << 59}), Error);
  CHECK(allocator::stats().bytes_in_use == before.bytes_in_use);
  CHECK(ones({3}).to_vector<float>() == std::vector<float>{1, 1, 1});
}
