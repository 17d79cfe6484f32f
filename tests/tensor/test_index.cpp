// Tests of joining, splitting and indexing: concat, stack, split, pad, index_select,
// index_add, gather, scatter_add against hand-worked and naive results, and their errors.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

using namespace encore;

namespace {

std::string index_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor ids(std::vector<int64_t> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return from_vector<int64_t>(v, {n});
}

/// 0, 1, 2, ... as an f32 tensor of the given shape.
Tensor iota(const Shape& shape, DType dt = DType::f32) {
  return raw::reshape(arange(0, double(numel(shape)), 1, dt), shape);
}

using F = std::vector<float>;

}  // namespace

TEST_CASE("concat: hand-worked joins along every dim") {
  Tensor a = iota({2, 3}), b = raw::reshape(arange(10, 16, 1, DType::f32), {2, 3});
  Tensor c0 = raw::concat({a, b}, 0);
  CHECK(c0.shape() == Shape{4, 3});
  CHECK(c0.to_vector<float>() == F{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15});
  Tensor c1 = raw::concat({a, b, a}, -1);
  CHECK(c1.shape() == Shape{2, 9});
  CHECK(c1.to_vector<float>() == F{0, 1, 2, 10, 11, 12, 0, 1, 2, 3, 4, 5, 13, 14, 15, 3, 4, 5});
  // Different sizes along dim, a transposed (non-contiguous) piece and an empty piece.
  Tensor t = raw::transpose(iota({2, 2}), 0, 1);  // [[0, 2], [1, 3]]
  Tensor c2 = raw::concat({a, zeros({2, 0}), t}, 1);
  CHECK(c2.shape() == Shape{2, 5});
  CHECK(c2.to_vector<float>() == F{0, 1, 2, 0, 2, 3, 4, 5, 1, 3});
  // A single tensor, i64, 3-D along the middle dim.
  CHECK(raw::concat({a}, 0).to_vector<float>() == a.to_vector<float>());
  Tensor i3 = raw::concat({iota({2, 1, 2}, DType::i64), iota({2, 2, 2}, DType::i64)}, 1);
  CHECK(i3.dtype() == DType::i64);
  CHECK(i3.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 6, 7});
  // A fresh tensor: writing to it leaves the inputs alone.
  c0.fill_(7);
  CHECK(a.to_vector<float>() == F{0, 1, 2, 3, 4, 5});
}

TEST_CASE("concat and stack: errors") {
  CHECK(index_error([] { raw::concat({}, 0); }) == "concat: needs at least one tensor");
  CHECK(index_error([] {
          raw::concat({zeros({2, 3}), zeros({3, 3})}, 1);
        }) ==
        "concat: tensor 1 of shape [3, 3] does not match tensor 0 of shape [2, 3] outside dim 1");
  CHECK(index_error([] {
          raw::concat({zeros({2, 3}), zeros({2, 3, 1})}, 0);
        }) ==
        "concat: tensor 1 of shape [2, 3, 1] does not match tensor 0 of shape [2, 3] outside "
        "dim 0");
  CHECK(index_error([] {
          raw::concat({zeros({2}), zeros({2}, DType::f64)}, 0);
        }) == "concat: tensor 1 of shape [2] has dtype f64, tensor 0 of shape [2] has f32");
  CHECK_THROWS_AS(raw::concat({zeros({2}), zeros({2})}, 1), Error);
  CHECK_THROWS_AS(raw::concat({scalar(1), scalar(2)}, 0), Error);
  CHECK(index_error([] { raw::stack({}, 0); }) == "stack: needs at least one tensor");
  CHECK(index_error([] {
          raw::stack({zeros({2, 3}), zeros({3, 2})}, 0);
        }) == "stack: tensor 1 of shape [3, 2] differs from tensor 0 of shape [2, 3]");
  CHECK_THROWS_AS(raw::stack({zeros({2}), zeros({2}, DType::i64)}, 0), Error);
  CHECK_THROWS_AS(raw::stack({zeros({2}), zeros({2})}, 3), Error);
}

TEST_CASE("stack: along a new dim at every position") {
  Tensor a = iota({2, 2}), b = raw::reshape(arange(4, 8, 1, DType::f32), {2, 2});
  Tensor s0 = raw::stack({a, b}, 0);
  CHECK(s0.shape() == Shape{2, 2, 2});
  CHECK(s0.to_vector<float>() == F{0, 1, 2, 3, 4, 5, 6, 7});
  Tensor s1 = raw::stack({a, b}, 1);
  CHECK(s1.shape() == Shape{2, 2, 2});
  CHECK(s1.to_vector<float>() == F{0, 1, 4, 5, 2, 3, 6, 7});
  Tensor s2 = raw::stack({a, b, a}, -1);
  CHECK(s2.shape() == Shape{2, 2, 3});
  CHECK(s2.to_vector<float>() == F{0, 4, 0, 1, 5, 1, 2, 6, 2, 3, 7, 3});
  Tensor sc = raw::stack({scalar(1), scalar(2), scalar(3)}, 0);
  CHECK(sc.shape() == Shape{3});
  CHECK(sc.to_vector<float>() == F{1, 2, 3});
}

TEST_CASE("split: views of consecutive pieces") {
  Tensor x = iota({3, 5});
  auto parts = raw::split(x, {2, 0, 3}, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == Shape{3, 2});
  CHECK(parts[1].shape() == Shape{3, 0});
  CHECK(parts[2].shape() == Shape{3, 3});
  CHECK(parts[0].to_vector<float>() == F{0, 1, 5, 6, 10, 11});
  CHECK(parts[2].to_vector<float>() == F{2, 3, 4, 7, 8, 9, 12, 13, 14});
  // Views: same storage, writes show through.
  CHECK(parts[2].storage() == x.storage());
  parts[2].fill_(-1);
  CHECK(x.to_vector<float>()[4] == -1);
  auto rows = raw::split(x, {1, 2}, 0);
  CHECK(rows[1].to_vector<float>() == F{5, 6, -1, -1, -1, 10, 11, -1, -1, -1});
  CHECK(index_error([&] {
          raw::split(x, {2, 2}, 1);
        }) == "split: sizes sum to 4, not to dim 1 of shape [3, 5]");
  CHECK_THROWS_AS(raw::split(x, {6, -1}, 1), Error);
  CHECK_THROWS_AS(raw::split(x, {3, 3}, 1), Error);
  CHECK_THROWS_AS(raw::split(x, {5}, 2), Error);
  CHECK_THROWS_AS(raw::split(scalar(1), {1}, 0), Error);
}

TEST_CASE("pad: torch ordering from the last dim, constant value, negative crops") {
  Tensor x = iota({2, 3});
  Tensor p1 = raw::pad(x, {1, 2});  // last dim: 1 before, 2 after
  CHECK(p1.shape() == Shape{2, 6});
  CHECK(p1.to_vector<float>() == F{0, 0, 1, 2, 0, 0, 0, 3, 4, 5, 0, 0});
  Tensor p2 = raw::pad(x, {0, 1, 1, 0}, -1);  // last dim (0, 1), first dim (1, 0)
  CHECK(p2.shape() == Shape{3, 4});
  CHECK(p2.to_vector<float>() == F{-1, -1, -1, -1, 0, 1, 2, -1, 3, 4, 5, -1});
  Tensor crop = raw::pad(x, {-1, 1, 0, -1});  // drop column 0, add one column, drop row 1
  CHECK(crop.shape() == Shape{1, 3});
  CHECK(crop.to_vector<float>() == F{1, 2, 0});
  Tensor all = raw::pad(x, {-3, 2}, 9);  // every source column cropped away
  CHECK(all.to_vector<float>() == F{9, 9, 9, 9});
  // Non-contiguous input, i64, and a fresh result.
  Tensor t = raw::transpose(x, 0, 1);  // (3, 2)
  CHECK(raw::pad(t, {1, 0}).to_vector<float>() == F{0, 0, 3, 0, 1, 4, 0, 2, 5});
  Tensor pi = raw::pad(iota({2}, DType::i64), {2, 1}, 7);
  CHECK(pi.to_vector<int64_t>() == std::vector<int64_t>{7, 7, 0, 1, 7});
  Tensor same = raw::pad(x, {});
  CHECK(same.to_vector<float>() == x.to_vector<float>());
  CHECK(same.storage() != x.storage());
  CHECK(index_error([&] { raw::pad(x, {1}); }).rfind("pad: 1 pad values for shape [2, 3]", 0) == 0);
  CHECK_THROWS_AS(raw::pad(x, {1, 1, 1, 1, 1, 1}), Error);
  CHECK(index_error([&] {
          raw::pad(x, {-2, -2});
        }) == "pad: pads (-2, -2) on dim 1 of shape [2, 3] give a negative or too large size");
  CHECK_THROWS_AS(raw::pad(x, {-4, 5}), Error);
  CHECK_THROWS_AS(raw::pad(x, {INT64_MAX, 1}), Error);
  CHECK_THROWS_AS(raw::pad(x, {INT64_MAX / 4, 0, INT64_MAX / 4, 0}), Error);
}

TEST_CASE("index_select: rows and columns, repeats, any strides") {
  Tensor x = iota({3, 4});
  Tensor r = raw::index_select(x, 0, ids({2, 0, 2}));
  CHECK(r.shape() == Shape{3, 4});
  CHECK(r.to_vector<float>() == F{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  Tensor c = raw::index_select(x, -1, ids({3, 1}));
  CHECK(c.shape() == Shape{3, 2});
  CHECK(c.to_vector<float>() == F{3, 1, 7, 5, 11, 9});
  Tensor t = raw::index_select(raw::transpose(x, 0, 1), 1, ids({1}));  // column 1 of x^T
  CHECK(t.to_vector<float>() == F{4, 5, 6, 7});
  CHECK(raw::index_select(x, 0, ids({})).shape() == Shape{0, 4});
  // A strided index and an i64 input (embedding-style lookup of a 3-D table).
  Tensor idx = raw::slice(ids({1, 9, 0, 9}), 0, 0, 4, 2);  // {1, 0}
  Tensor table = iota({2, 2, 2}, DType::i64);
  CHECK(raw::index_select(table, 0, idx).to_vector<int64_t>() ==
        std::vector<int64_t>{4, 5, 6, 7, 0, 1, 2, 3});
}

TEST_CASE("index_select: errors name the op, the index and the shape") {
  Tensor x = iota({3, 4});
  CHECK(index_error([&] {
          raw::index_select(x, 0, ids({0, 3}));
        }) == "index_select: index 3 is out of range for dim 0 of shape [3, 4]");
  CHECK(index_error([&] { raw::index_select(x, 1, ids({-1})); }) ==
        "index_select: index -1 is out of range for dim 1 of shape [3, 4]");
  CHECK(index_error([&] {
          raw::index_select(x, 0, tensor({0, 1}));
        }) == "index_select: index must be i64, got f32 (index shape [2], input shape [3, 4])");
  CHECK_THROWS_AS(raw::index_select(x, 0, zeros({1, 1}, DType::i64)), Error);
  CHECK_THROWS_AS(raw::index_select(x, 2, ids({0})), Error);
  CHECK_THROWS_AS(raw::index_select(scalar(1), 0, ids({0})), Error);
}

TEST_CASE("index_add: accumulates repeated indices, out of place") {
  Tensor base = ones({3, 2});
  Tensor src = from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor out = raw::index_add(base, 0, ids({2, 0, 2}), src);
  CHECK(out.to_vector<float>() == F{4, 5, 1, 1, 7, 9});
  CHECK(base.to_vector<float>() == F{1, 1, 1, 1, 1, 1});
  Tensor cols = raw::index_add(zeros({2, 3}), 1, ids({1, 1}), ones({2, 2}));
  CHECK(cols.to_vector<float>() == F{0, 2, 0, 0, 2, 0});
  // Adjoint of index_select: <index_select(x, i), y> == <x, index_add(0, i, y)>.
  Generator gen(21);
  Tensor x = randn({5, 3}, gen, DType::f64), y = randn({4, 3}, gen, DType::f64);
  Tensor i = ids({4, 1, 1, 0});
  std::vector<double> sel = raw::index_select(x, 0, i).to_vector<double>(),
                      add = raw::index_add(zeros({5, 3}, DType::f64), 0, i, y).to_vector<double>(),
                      xv = x.to_vector<double>(), yv = y.to_vector<double>();
  double lhs = 0, rhs = 0;
  for (size_t k = 0; k < sel.size(); ++k) lhs += sel[k] * yv[k];
  for (size_t k = 0; k < xv.size(); ++k) rhs += xv[k] * add[k];
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  // A transposed src is read through its strides.
  Tensor st = raw::transpose(from_vector<float>({1, 3, 5, 2, 4, 6}, {2, 3}), 0, 1);
  CHECK(raw::index_add(base, 0, ids({2, 0, 2}), st).to_vector<float>() == F{4, 5, 1, 1, 7, 9});
  // Errors.
  CHECK(index_error([&] {
          raw::index_add(base, 0, ids({0, 3, 1}), src);
        }) == "index_add: index 3 is out of range for dim 0 of shape [3, 2]");
  CHECK(index_error([&] {
          raw::index_add(base, 0, ids({0, 1}), src);
        }) ==
        "index_add: src of shape [3, 2] does not match base [3, 2] with 2 indices along dim 0 "
        "(expected [2, 2])");
  CHECK_THROWS_AS(raw::index_add(base, 0, ids({0, 1, -1}), src), Error);
  CHECK(index_error([&] {
          raw::index_add(base, 0, ids({0, 1, 2}), src.to(DType::f64));
        }) == "index_add: src of shape [3, 2] has dtype f64, base of shape [3, 2] has f32");
}

TEST_CASE("gather: against a naive loop along each dim") {
  Tensor x = iota({3, 4});
  // dim 0: out[i][j] = x[index[i][j]][j]
  Tensor i0 = from_vector<int64_t>({2, 0, 1, 2, 0, 0, 0, 1}, {2, 4});
  CHECK(raw::gather(x, 0, i0).to_vector<float>() == F{8, 1, 6, 11, 0, 1, 2, 7});
  // dim 1 with a smaller index (2 of 4 columns, 2 of 3 rows): out[i][j] = x[i][index[i][j]]
  Tensor i1 = from_vector<int64_t>({3, 3, 0, 2}, {2, 2});
  Tensor g1 = raw::gather(x, 1, i1);
  CHECK(g1.shape() == Shape{2, 2});
  CHECK(g1.to_vector<float>() == F{3, 3, 4, 6});
  // A 3-D case against a naive loop, through a permuted x.
  Generator gen(22);
  Tensor base = randn({4, 2, 3}, gen, DType::f64);
  Tensor xp = raw::permute(base, {1, 2, 0});  // (2, 3, 4)
  for (int d = 0; d < 3; ++d) {
    Tensor id = randint(0, xp.shape()[d], {2, 2, 3}, gen);
    Tensor g = raw::gather(xp, d, id);
    std::vector<double> gv = g.to_vector<double>(), xv = xp.to_vector<double>();
    std::vector<int64_t> iv = id.to_vector<int64_t>();
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t c = 0; c < 3; ++c) {
          int64_t k = (a * 2 + b) * 3 + c, pos[3] = {a, b, c};
          pos[d] = iv[k];
          CHECK(gv[k] == xv[(pos[0] * 3 + pos[1]) * 4 + pos[2]]);
        }
  }
  // Errors: bad index, shape mismatch, ndim mismatch, dtype.
  CHECK(index_error([&] {
          raw::gather(x, 1, from_vector<int64_t>({0, 4}, {1, 2}));
        }) == "gather: index 4 is out of range for dim 1 of shape [3, 4]");
  CHECK(index_error([&] {
          raw::gather(x, 1, from_vector<int64_t>({0, -2}, {1, 2}));
        }) == "gather: index -2 is out of range for dim 1 of shape [3, 4]");
  CHECK(index_error([&] {
          raw::gather(x, 1, zeros({4, 1}, DType::i64));
        }) == "gather: index of shape [4, 1] is larger than the input of shape [3, 4] in dim 0");
  CHECK_THROWS_AS(raw::gather(x, 1, ids({0})), Error);
  CHECK_THROWS_AS(raw::gather(x, 1, zeros({1, 1})), Error);
  CHECK_THROWS_AS(raw::gather(x, 2, zeros({1, 1}, DType::i64)), Error);
}

TEST_CASE("scatter_add: hand-worked, adjoint of gather, errors") {
  // dim 1: out[i][index[i][j]] += src[i][j]
  Tensor base = zeros({2, 4});
  Tensor src = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor index = from_vector<int64_t>({0, 0, 3, 1, 2, 1}, {2, 3});
  Tensor out = raw::scatter_add(base, 1, index, src);
  CHECK(out.to_vector<float>() == F{3, 0, 0, 3, 0, 10, 5, 0});
  CHECK(base.to_vector<float>() == F(8, 0.0f));
  // dim 0 with an index smaller than src: only src[:1, :2] is used.
  Tensor o0 = raw::scatter_add(ones({3, 2}), 0, from_vector<int64_t>({2, 2}, {1, 2}), src);
  CHECK(o0.to_vector<float>() == F{1, 1, 1, 1, 2, 3});
  // <gather(x, d, i), y> == <x, scatter_add(0, d, i, y)> for each dim of a 3-D case.
  Generator gen(23);
  Tensor x = randn({3, 4, 2}, gen, DType::f64);
  for (int d = 0; d < 3; ++d) {
    Shape is{2, 3, 2};
    Tensor i = randint(0, x.shape()[d], is, gen);
    Tensor y = randn(is, gen, DType::f64);
    std::vector<double> g = raw::gather(x, d, i).to_vector<double>(), yv = y.to_vector<double>();
    std::vector<double> s =
        raw::scatter_add(zeros(x.shape(), DType::f64), d, i, y).to_vector<double>();
    std::vector<double> xv = x.to_vector<double>();
    double lhs = 0, rhs = 0;
    for (size_t k = 0; k < g.size(); ++k) lhs += g[k] * yv[k];
    for (size_t k = 0; k < xv.size(); ++k) rhs += xv[k] * s[k];
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
  // A transposed src and base give the same answer as contiguous ones.
  Tensor bt = raw::transpose(zeros({4, 2}), 0, 1);
  Tensor srct = raw::transpose(from_vector<float>({1, 4, 2, 5, 3, 6}, {3, 2}), 0, 1);
  CHECK(raw::scatter_add(bt, 1, index, srct).to_vector<float>() == F{3, 0, 0, 3, 0, 10, 5, 0});
  // Errors.
  CHECK(index_error([&] {
          raw::scatter_add(base, 1, from_vector<int64_t>({0, 4, 0, 0, 0, 0}, {2, 3}), src);
        }) == "scatter_add: index 4 is out of range for dim 1 of shape [2, 4]");
  CHECK_THROWS_AS(raw::scatter_add(base, 1, from_vector<int64_t>({0, -1, 0, 0, 0, 0}, {2, 3}), src),
                  Error);
  CHECK(index_error([&] {
          raw::scatter_add(base, 1, zeros({2, 4}, DType::i64), src);
        }) == "scatter_add: index of shape [2, 4] is larger than src of shape [2, 3] in dim 1");
  CHECK(
      index_error([&] {
        raw::scatter_add(base, 1, zeros({3, 1}, DType::i64), ones({3, 1}));
      }).rfind("scatter_add: index of shape [3, 1] is larger than the input of shape [2, 4]", 0) ==
      0);
  CHECK_THROWS_AS(raw::scatter_add(base, 1, index, src.to(DType::f64)), Error);
  CHECK_THROWS_AS(raw::scatter_add(base, 1, index, zeros({2, 3, 1})), Error);
  CHECK_THROWS_AS(raw::scatter_add(base, 1, index.to(DType::f32), src), Error);
}
