// Tests for the text form of tensors (tensor/print.cpp): exact strings for small tensors of each
// dtype, alignment, scientific notation, special values, nesting, views, and the summarised
// form of large tensors.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/tensor.h"

using namespace encore;

namespace {
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST_CASE("print: small tensors print whole, aligned") {
  CHECK(to_string(from_vector<float>({1, -2.5, 3, 4}, {2, 2})) ==
        "tensor([[ 1.0000, -2.5000],\n"
        "        [ 3.0000,  4.0000]], dtype=f32)");
  CHECK(to_string(from_vector<int64_t>({1, -2, 30}, {3})) == "tensor([ 1, -2, 30], dtype=i64)");
  CHECK(to_string(tensor({0.5}, DType::f64)) == "tensor([0.5000], dtype=f64)");
  CHECK(to_string(scalar(3.5)) == "tensor(3.5000, dtype=f32)");
  CHECK(to_string(scalar(-7, DType::i64)) == "tensor(-7, dtype=i64)");
  CHECK(to_string(Tensor()) == "tensor(undefined)");
  CHECK(to_string(zeros({0, 3})) == "tensor([], shape=[0, 3], dtype=f32)");
  std::ostringstream os;
  os << from_vector<int64_t>({4}, {1, 1});
  CHECK(os.str() == "tensor([[4]], dtype=i64)");
}

TEST_CASE("print: scientific notation and special values") {
  CHECK(to_string(tensor({1e9, 1, -2})) ==
        "tensor([ 1.0000e+09,  1.0000e+00, -2.0000e+00], dtype=f32)");
  CHECK(to_string(tensor({1e-5, 1})) == "tensor([1.0000e-05, 1.0000e+00], dtype=f32)");
  CHECK(to_string(tensor({NAN, INFINITY, -INFINITY, 1.5})) ==
        "tensor([   nan,    inf,   -inf, 1.5000], dtype=f32)");
  // Zero does not force scientific notation.
  CHECK(to_string(tensor({0, 0.25})) == "tensor([0.0000, 0.2500], dtype=f32)");
}

TEST_CASE("print: nesting and views") {
  Tensor x = raw::view(arange(8), {2, 2, 2});
  CHECK(to_string(x) ==
        "tensor([[[0, 1],\n"
        "         [2, 3]],\n"
        "\n"
        "        [[4, 5],\n"
        "         [6, 7]]], dtype=i64)");
  Tensor t = raw::transpose(from_vector<int64_t>({1, 2, 3, 4}, {2, 2}), 0, 1);
  CHECK(to_string(t) ==
        "tensor([[1, 3],\n"
        "        [2, 4]], dtype=i64)");
  Tensor s = raw::slice(arange(10), 0, 1, 10, 3);  // 1, 4, 7
  CHECK(to_string(s) == "tensor([1, 4, 7], dtype=i64)");
}

TEST_CASE("print: large tensors are summarised with the shape") {
  Tensor v = arange(0, 1001, 1, DType::f32);
  CHECK(to_string(v) ==
        "tensor([   0.0000,    1.0000,    2.0000, ...,  998.0000,  999.0000, 1000.0000], "
        "shape=[1001], dtype=f32)");

  Tensor m = raw::view(arange(0, 2000, 1, DType::f32), {40, 50});
  auto lines = lines_of(to_string(m));
  REQUIRE(lines.size() == 7);
  CHECK(lines[0] ==
        "tensor([[   0.0000,    1.0000,    2.0000, ...,   47.0000,   48.0000,   49.0000],");
  CHECK(lines[1] ==
        "        [  50.0000,   51.0000,   52.0000, ...,   97.0000,   98.0000,   99.0000],");
  CHECK(lines[3] == "        ...,");
  CHECK(lines[4] ==
        "        [1850.0000, 1851.0000, 1852.0000, ..., 1897.0000, 1898.0000, 1899.0000],");
  CHECK(lines[6] ==
        "        [1950.0000, 1951.0000, 1952.0000, ..., 1997.0000, 1998.0000, 1999.0000]], "
        "shape=[40, 50], dtype=f32)");

  // Exactly 1000 elements still print whole.
  std::string whole = to_string(zeros({10, 100}));
  CHECK(whole.find("...") == std::string::npos);
  CHECK(lines_of(whole).size() == 10);
  CHECK(whole.find("shape=") == std::string::npos);

  // 3-D: each dim is cut to 3 + "..." + 3; blocks are separated by blank lines.
  auto cube = lines_of(to_string(zeros({10, 10, 20}, DType::i64)));
  REQUIRE(cube.size() == 49);  // 6 blocks of 7 lines, 6 blank lines, one "...," line
  CHECK(cube[0] == "tensor([[[0, 0, 0, ..., 0, 0, 0],");
  CHECK(cube[3] == "         ...,");
  CHECK(cube[7].empty());
  CHECK(cube[24] == "        ...,");
  CHECK(cube[48] == "         [0, 0, 0, ..., 0, 0, 0]]], shape=[10, 10, 20], dtype=i64)");
}
