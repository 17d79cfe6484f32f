// Views share storage and have the strides we expect; creation ops fill what they say.
#include <doctest/doctest.h>

#include <string>

#include "tensor/tensor.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::error_of;

TEST_CASE("views: shape, strides and shared storage") {
  Tensor x = arange(0, 24, 1, DType::f32);
  Tensor a = raw::view(x, {2, 3, 4});
  CHECK(a.shape() == Shape{2, 3, 4});
  CHECK(a.strides() == Strides{12, 4, 1});
  CHECK(a.storage() == x.storage());
  CHECK(a.is_contiguous());

  Tensor t = raw::transpose(a, 0, 2);  // (4, 3, 2)
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.strides() == Strides{1, 4, 12});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.storage() == x.storage());

  Tensor p = raw::permute(a, {1, 2, 0});  // (3, 4, 2)
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.strides() == Strides{4, 1, 12});

  Tensor s = raw::slice(a, 2, 1, 4, 2);  // elements 1, 3 of the last dim
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.strides() == Strides{12, 4, 2});
  CHECK(s.offset() == 1);
  CHECK(s.to_vector<float>() == std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});

  Tensor sel = raw::select(a, 1, -1);  // a[:, 2, :]
  CHECK(sel.shape() == Shape{2, 4});
  CHECK(sel.offset() == 8);
  CHECK(sel.to_vector<float>() == std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23});

  Tensor n = raw::narrow(a, 0, 1, 1);
  CHECK(n.shape() == Shape{1, 3, 4});
  CHECK(n.offset() == 12);

  Tensor e = raw::expand(raw::view(arange(0, 3, 1, DType::f32), {3, 1}), {2, 3, 4});
  CHECK(e.strides() == Strides{0, 1, 0});
  CHECK(e.to_vector<float>()[5] == 1.0f);  // [0][1][1]

  Tensor u = raw::unsqueeze(a, 1);
  CHECK(u.shape() == Shape{2, 1, 3, 4});
  Tensor sq = raw::squeeze(u, 1);
  CHECK(sq.shape() == a.shape());
  CHECK(raw::squeeze(raw::view(x, {1, 24, 1})).shape() == Shape{24});
  CHECK(raw::flatten(a, 1).shape() == Shape{2, 12});
  CHECK(raw::flatten(a).shape() == Shape{24});
}

TEST_CASE("views: writes through a view reach the base") {
  Tensor x = zeros({3, 4});
  Tensor col = raw::select(x, 1, 2);
  col.fill_(7);
  std::vector<float> v = x.to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) CHECK(v[i * 4 + j] == (j == 2 ? 7.0f : 0.0f));
}

TEST_CASE("views: reshape copies only when the strides do not allow a view") {
  Tensor a = raw::view(arange(0, 12, 1, DType::f32), {3, 4});
  Tensor t = raw::transpose(a, 0, 1);  // (4, 3), not contiguous
  // Splitting a dim of a transposed tensor is still a view.
  Tensor v = raw::view(t, {2, 2, 3});
  CHECK(v.storage() == a.storage());
  CHECK(v.strides() == Strides{2, 1, 4});
  // Merging the two transposed dims needs a copy: view throws, reshape copies.
  std::string msg = error_of([&] { raw::view(t, {12}); });
  CHECK(msg.find("view") == 0);
  CHECK(msg.find("[4, 3]") != std::string::npos);
  Tensor r = raw::reshape(t, {12});
  CHECK(r.storage() != a.storage());
  CHECK(r.to_vector<float>() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  // -1 is inferred.
  CHECK(raw::reshape(a, {-1, 6}).shape() == Shape{2, 6});
  // A sliced tensor with gaps merges only where it can.
  // (4, 3), strides (6, 2)
  Tensor s = raw::slice(raw::view(arange(0, 24, 1, DType::f32), {4, 6}), 1, 0, 6, 2);
  CHECK(raw::view(s, {2, 2, 3}).strides() == Strides{12, 6, 2});
}

TEST_CASE("views: contiguous and clone") {
  Tensor a = raw::view(arange(0, 6, 1, DType::f32), {2, 3});
  CHECK(a.contiguous().same(a));
  Tensor t = raw::transpose(a, 0, 1);
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor k = a.clone();
  CHECK(k.storage() != a.storage());
  k.fill_(1);
  CHECK(a.to_vector<float>()[0] == 0.0f);
}

TEST_CASE("views: errors name the op and the shape") {
  Tensor a = zeros({2, 3});
  CHECK(error_of([&] { raw::transpose(a, 0, 2); }).find("transpose: dim 2") == 0);
  CHECK(error_of([&] { raw::view(a, {4, 2}); }).find("[2, 3]") != std::string::npos);
  CHECK(error_of([&] { raw::select(a, 0, 2); }).find("select: index 2") == 0);
  CHECK(error_of([&] { raw::narrow(a, 1, 2, 2); }).find("narrow") == 0);
  CHECK(error_of([&] { raw::expand(a, {2, 4}); }).find("expand: cannot expand shape [2, 3]") == 0);
  CHECK(error_of([&] { raw::squeeze(a, 0); }).find("squeeze") == 0);
  CHECK(error_of([&] { raw::permute(a, {0, 0}); }).find("permute") == 0);
  CHECK(error_of([&] { raw::slice(a, 1, 0, 3, 0); }).find("slice: step") == 0);
  CHECK(error_of([&] {
          raw::as_strided(a, {3, 3}, {3, 1}, 0);
        }).find("outside its storage") != std::string::npos);
  CHECK(error_of([&] {
          zeros({1, 1, 1, 1, 1, 1, 1, 1, 1});
        }).find("more than 8") != std::string::npos);
  CHECK(error_of([&] {
          Tensor u;
          u.shape();
        }).find("undefined") != std::string::npos);
  CHECK(error_of([&] { a.item(); }).find("item") == 0);
  CHECK(error_of([&] { a.data<double>(); }).find("f32") != std::string::npos);
}

TEST_CASE("slice clamps like Python") {
  Tensor a = arange(0, 10, 1, DType::f32);
  CHECK(raw::slice(a, 0, -3, 100).to_vector<float>() == std::vector<float>{7, 8, 9});
  CHECK(raw::slice(a, 0, 5, 2).numel() == 0);
  CHECK(raw::slice(a, 0, 0, 10, 3).to_vector<float>() == std::vector<float>{0, 3, 6, 9});
}

TEST_CASE("slice: extreme start, end and step do not overflow") {
  Tensor a = arange(0, 10, 1, DType::f32);
  CHECK(raw::slice(a, 0, INT64_MIN, INT64_MAX).to_vector<float>() == a.to_vector<float>());
  CHECK(raw::slice(a, 0, INT64_MIN, INT64_MAX, INT64_MAX).to_vector<float>() ==
        std::vector<float>{0});
  CHECK(raw::slice(a, 0, 3, INT64_MAX, INT64_MAX).to_vector<float>() == std::vector<float>{3});
  CHECK(raw::slice(a, 0, INT64_MAX, INT64_MIN).numel() == 0);
  CHECK(raw::slice(a, 0, INT64_MAX, INT64_MAX, INT64_MAX).numel() == 0);
  CHECK(raw::slice(a, 0, INT64_MIN, INT64_MIN).numel() == 0);
  CHECK(raw::slice(a, 0, -1, INT64_MAX, INT64_MAX).to_vector<float>() == std::vector<float>{9});
  CHECK_THROWS_AS(raw::slice(a, 0, 0, 10, INT64_MIN), Error);
  // A strided view sliced with a huge step keeps a usable stride.
  Tensor m = raw::view(arange(0, 12, 1, DType::f32), {3, 4});
  Tensor s = raw::slice(m, 1, 1, INT64_MAX, INT64_MAX);  // (3, 1): column 1
  CHECK(s.shape() == Shape{3, 1});
  CHECK(s.contiguous().to_vector<float>() == std::vector<float>{1, 5, 9});
}

TEST_CASE("creation") {
  CHECK(zeros({2, 2}).to_vector<float>() == std::vector<float>(4, 0.0f));
  CHECK(ones({3}, DType::f64).to_vector<double>() == std::vector<double>(3, 1.0));
  CHECK(full({2}, 2.5).to_vector<float>() == std::vector<float>{2.5f, 2.5f});
  CHECK(scalar(3).dim() == 0);
  CHECK(scalar(3).item() == 3.0);
  CHECK(arange(0, 1, 0.25, DType::f64).to_vector<double>() ==
        std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(arange(5).dtype() == DType::i64);
}

TEST_CASE("arange: one dtype rule, NumPy's (integers -> i64, any floating argument -> f32)") {
  CHECK(arange(5).dtype() == DType::i64);
  CHECK(arange(int64_t(5)).dtype() == DType::i64);
  CHECK(arange(0, 5).dtype() == DType::i64);
  CHECK(arange(0, 10, 3).dtype() == DType::i64);
  CHECK(arange(0, 10, 3).to_vector<int64_t>() == std::vector<int64_t>{0, 3, 6, 9});
  CHECK(arange(5.0).dtype() == DType::f32);
  CHECK(arange(0.0, 5).dtype() == DType::f32);
  CHECK(arange(0, 5.0).dtype() == DType::f32);
  CHECK(arange(0, 1, 0.25).dtype() == DType::f32);
  CHECK(arange(0, 1, 0.25).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(arange(0.5f).dtype() == DType::f32);
  // An explicit dtype wins.
  CHECK(arange(0, 5, 1, DType::f64).dtype() == DType::f64);
  CHECK(arange(5, DType::f32).dtype() == DType::f32);
  CHECK(arange(0.0, 3.0, 1.0, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  CHECK(linspace(0, 1, 5, DType::f64).to_vector<double>() ==
        std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(eye(2, 3).to_vector<float>() == std::vector<float>{1, 0, 0, 0, 1, 0});
  CHECK(tensor({1, 2, 3}).shape() == Shape{3});
  CHECK(from_vector<int64_t>({1, 2, 3, 4}, {2, 2}).dtype() == DType::i64);
  CHECK_THROWS_AS(from_vector<float>({1, 2, 3}, {2, 2}), Error);
  CHECK(Tensor(ones({2}, DType::i64)).to(DType::f64).to_vector<double>() ==
        std::vector<double>{1, 1});
}

TEST_CASE("random: seeded, reproducible, right moments") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = randn({10000}, g1), b = randn({10000}, g2), c = randn({10000}, g3);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a.to_vector<float>() != c.to_vector<float>());
  double s = 0, s2 = 0;
  for (float v : a.to_vector<float>()) {
    s += v;
    s2 += double(v) * v;
  }
  CHECK(std::abs(s / 10000) < 0.05);
  CHECK(std::abs(s2 / 10000 - 1) < 0.05);
  Tensor u = rand({10000}, g1, DType::f64, -1, 3);
  for (double v : u.to_vector<double>()) {
    REQUIRE(v >= -1);
    REQUIRE(v < 3);
  }
  Tensor m = bernoulli({10000}, 0.3, g1);
  double ones_count = 0;
  for (float v : m.to_vector<float>()) ones_count += v;
  CHECK(std::abs(ones_count / 10000 - 0.3) < 0.03);
  Tensor p = permutation(100, g1);
  std::vector<int64_t> pv = p.to_vector<int64_t>();
  std::sort(pv.begin(), pv.end());
  for (int i = 0; i < 100; ++i) CHECK(pv[i] == i);
  // State save/restore resumes the same sequence.
  Generator g(7);
  g.next_u64();
  Generator::State st = g.state();
  uint64_t x = g.next_u64();
  g.set_state(st);
  CHECK(g.next_u64() == x);
  CHECK_THROWS_AS(bernoulli({2}, 1.5), Error);
  CHECK_THROWS_AS(randn({2}, g, DType::i64), Error);
}

TEST_CASE("creation: absurd shapes throw instead of overflowing") {
  CHECK_THROWS_AS(zeros({int64_t(1) << 40, int64_t(1) << 40}), Error);
  CHECK_THROWS_AS(empty({-1, 3}), Error);
}
