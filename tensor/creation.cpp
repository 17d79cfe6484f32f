// Tensor creation: fills, ranges, copies from C++ data, random tensors.
#include "tensor/creation.h"

#include <cmath>
#include <cstring>

#include "tensor/kernels.h"

namespace encore {

namespace {
Tensor filled(const char* op, const Shape& shape, double value, DType dtype) {
  Tensor t(shape, dtype, op);
  dispatch(dtype, [&]<class T>() {
    T v = value_cast<T>(value);
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = v;
  });
  return t;
}
}  // namespace

Tensor empty(const Shape& shape, DType dtype) { return Tensor(shape, dtype, "empty"); }

Tensor full(const Shape& shape, double value, DType dtype) {
  return filled("full", shape, value, dtype);
}

Tensor zeros(const Shape& shape, DType dtype) {
  Tensor t(shape, dtype, "zeros");
  std::memset(t.raw_data(), 0, static_cast<size_t>(t.numel()) * dtype_size(dtype));
  return t;
}
Tensor ones(const Shape& shape, DType dtype) { return filled("ones", shape, 1.0, dtype); }
Tensor scalar(double value, DType dtype) { return full({}, value, dtype); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor rand_like(const Tensor& t, Generator& gen, double low, double high) {
  return rand(t.shape(), gen, t.dtype(), low, high);
}
Tensor randn_like(const Tensor& t, Generator& gen, double mean, double stddev) {
  return randn(t.shape(), gen, t.dtype(), mean, stddev);
}
Tensor rand(const Shape& shape, DType dtype, Generator& gen, double low, double high) {
  return rand(shape, gen, dtype, low, high);
}
Tensor randn(const Shape& shape, DType dtype, Generator& gen, double mean, double stddev) {
  return randn(shape, gen, dtype, mean, stddev);
}
Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& gen) {
  return bernoulli(shape, p, gen, dtype);
}

Tensor arange(double start, double end, double step, DType dtype) {
  ENCORE_CHECK(step != 0 && std::isfinite(step) && std::isfinite(start) && std::isfinite(end),
               "arange", "invalid range start=", start, " end=", end, " step=", step);
  ENCORE_CHECK((end - start) * step >= 0, "arange", "step ", step, " points away from end ", end,
               " (start ", start, "): the range would be empty");
  double span = std::ceil((end - start) / step);
  ENCORE_CHECK(span < 1e12, "arange", "range start=", start, " end=", end, " step=", step,
               " is too long");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(span));
  Tensor t({n}, dtype, "arange");
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = value_cast<T>(start + double(i) * step);
  });
  return t;
}

Tensor arange(int64_t n, DType dtype) { return arange(0, double(n), 1, dtype); }

Tensor linspace(double start, double end, int64_t n, DType dtype) {
  ENCORE_CHECK(n >= 0, "linspace", "negative count ", n);
  Tensor t({n}, dtype, "linspace");
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    double step = n > 1 ? (end - start) / double(n - 1) : 0;
    for (int64_t i = 0; i < n; ++i) p[i] = value_cast<T>(start + double(i) * step);
    if (n > 1) p[n - 1] = value_cast<T>(end);
  });
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  ENCORE_CHECK(n >= 0, "eye", "negative size ", n);
  Tensor t = zeros({n, m}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  ENCORE_CHECK(static_cast<int64_t>(values.size()) == numel(shape), "from_vector", values.size(),
               " values do not fill shape ", shape);
  return from_buffer(values.data(), shape, dtype_of<T>());
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);

Tensor tensor(std::initializer_list<double> values, DType dtype) {
  Tensor t({static_cast<int64_t>(values.size())}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (double v : values) *p++ = value_cast<T>(v);
  });
  return t;
}

Tensor from_buffer(const void* data, const Shape& shape, DType dtype) {
  Tensor t(shape, dtype, "from_buffer");
  ENCORE_CHECK(data != nullptr || t.numel() == 0, "from_buffer", "data is a null pointer for ",
               t.numel(), " elements of shape ", shape);
  if (t.numel() > 0)
    std::memcpy(t.raw_data(), data, static_cast<size_t>(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype, double low, double high) {
  ENCORE_CHECK(std::isfinite(low) && std::isfinite(high) && low <= high, "rand", "range [", low,
               ", ", high, ") must be finite with low <= high");
  Tensor t(shape, dtype, "rand");
  dispatch_float("rand", dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      p[i] = static_cast<T>(low + (high - low) * gen.uniform());
  });
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, double mean, double stddev) {
  ENCORE_CHECK(std::isfinite(mean) && std::isfinite(stddev) && stddev >= 0, "randn", "mean ", mean,
               " and stddev ", stddev, " must be finite with stddev >= 0");
  Tensor t(shape, dtype, "randn");
  dispatch_float("randn", dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      p[i] = static_cast<T>(mean + stddev * gen.normal());
  });
  return t;
}

Tensor bernoulli(const Shape& shape, double p, Generator& gen, DType dtype) {
  ENCORE_CHECK(p >= 0 && p <= 1, "bernoulli", "probability ", p, " is not in [0, 1]");
  Tensor t(shape, dtype, "bernoulli");
  dispatch(dtype, [&]<class T>() {
    T* q = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) q[i] = gen.uniform() < p ? T(1) : T(0);
  });
  return t;
}

Tensor permutation(int64_t n, Generator& gen) {
  ENCORE_CHECK(n >= 0, "permutation", "negative size ", n);
  Tensor t = arange(n, DType::i64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[i], p[static_cast<int64_t>(gen.below(static_cast<uint64_t>(i + 1)))]);
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen) {
  ENCORE_CHECK(high > low, "randint", "empty range [", low, ", ", high, ")");
  Tensor t(shape, DType::i64, "randint");
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    p[i] = low + static_cast<int64_t>(gen.below(static_cast<uint64_t>(high - low)));
  return t;
}

}  // namespace encore
