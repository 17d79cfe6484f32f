// Shape and strides: small inline vectors of int64 (no heap), printed one way: [128, 784].
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "error.h"

namespace encore {

/// The most dimensions a tensor may have.
inline constexpr int kMaxDims = 8;

/// A fixed-capacity vector of up to kMaxDims int64 values, used for shapes and strides.
class Dims {
 public:
  Dims() = default;
  Dims(std::initializer_list<int64_t> v) { assign(v.begin(), v.end()); }
  Dims(const std::vector<int64_t>& v) { assign(v.begin(), v.end()); }  // NOLINT: implicit
  template <class It>
  Dims(It first, It last) {
    assign(first, last);
  }
  /// n copies of value.
  static Dims filled(int n, int64_t value);

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int i) { return d_[i]; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t* begin() { return d_; }
  int64_t* end() { return d_ + n_; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  const int64_t* data() const { return d_; }
  int64_t back() const { return d_[n_ - 1]; }
  void push_back(int64_t v);
  void insert(int pos, int64_t v);
  void erase(int pos);
  void pop_back() { --n_; }
  void resize(int n, int64_t fill = 0);
  std::vector<int64_t> vec() const { return {d_, d_ + n_}; }

  friend bool operator==(const Dims& a, const Dims& b) {
    return a.n_ == b.n_ && std::equal(a.d_, a.d_ + a.n_, b.d_);
  }
  friend bool operator!=(const Dims& a, const Dims& b) { return !(a == b); }

 private:
  template <class It>
  void assign(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

using Shape = Dims;
using Strides = Dims;

std::ostream& operator<<(std::ostream& os, const Dims& d);
std::string to_string(const Dims& d);

/// Product of the sizes (1 for a scalar's empty shape).
int64_t numel(const Shape& s);
/// numel with checks: throws naming op for a negative size or a product past 2^62.
int64_t checked_numel(const char* op, const Shape& s);
/// Row-major (C-order) strides, in elements.
Strides contiguous_strides(const Shape& s);
/// Maps a possibly negative dim into [0, ndim); throws naming op when out of range.
int normalize_dim(const char* op, int64_t dim, int ndim);
/// NumPy broadcasting of two shapes; throws naming op and both shapes when incompatible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

}  // namespace encore
