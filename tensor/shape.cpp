// Shape helpers: printing, element counts, contiguous strides, dim checks, broadcasting.
#include "tensor/shape.h"

#include <sstream>

namespace encore {

Dims Dims::filled(int n, int64_t value) {
  Dims d;
  d.resize(n, value);
  return d;
}

void Dims::push_back(int64_t v) {
  ENCORE_CHECK(n_ < kMaxDims, "shape", "more than ", kMaxDims, " dimensions are not supported");
  d_[n_++] = v;
}

void Dims::insert(int pos, int64_t v) {
  ENCORE_CHECK(n_ < kMaxDims, "shape", "more than ", kMaxDims, " dimensions are not supported");
  for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}

void Dims::erase(int pos) {
  for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

void Dims::resize(int n, int64_t fill) {
  ENCORE_CHECK(n >= 0 && n <= kMaxDims, "shape", "more than ", kMaxDims,
               " dimensions are not supported");
  for (int i = n_; i < n; ++i) d_[i] = fill;
  n_ = n;
}

std::ostream& operator<<(std::ostream& os, const Dims& d) {
  os << '[';
  for (int i = 0; i < d.size(); ++i) os << (i ? ", " : "") << d[i];
  return os << ']';
}

std::string to_string(const Dims& d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

int64_t checked_numel(const char* op, const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) {
    ENCORE_CHECK(v >= 0, op, "negative size in shape ", s);
    ENCORE_CHECK(v == 0 || n <= (int64_t(1) << 62) / v, op, "shape ", s, " has too many elements");
    n *= v;
  }
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st = Dims::filled(s.size(), 1);
  for (int i = s.size() - 2; i >= 0; --i) st[i] = st[i + 1] * std::max<int64_t>(s[i + 1], 1);
  return st;
}

int normalize_dim(const char* op, int64_t dim, int ndim) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  ENCORE_CHECK(d >= 0 && d < std::max(ndim, 1) && (ndim > 0 || d == 0), op, "dim ", dim,
               " is out of range for a tensor with ", ndim, " dimensions");
  return static_cast<int>(d);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  int n = std::max(a.size(), b.size());
  Shape out = Dims::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    int ia = a.size() - n + i, ib = b.size() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    ENCORE_CHECK(da == db || da == 1 || db == 1, op, "shapes ", a, " and ", b,
                 " cannot be broadcast (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace encore
