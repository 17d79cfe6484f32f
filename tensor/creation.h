// Creating tensors: constant fills, ranges, from C++ data, and random (with a Generator).
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core.h"
#include "generator.h"

namespace encore {

Tensor empty(const Shape& shape, DType dtype = DType::f32);
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
/// A 0-dimensional tensor holding value.
Tensor scalar(double value, DType dtype = DType::f32);
/// The *_like family: a new tensor with t's shape and dtype (values not shared with t).
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// Uniform in [low, high) with t's shape and dtype (f32 or f64).
Tensor rand_like(const Tensor& t, Generator& gen = default_generator(), double low = 0,
                 double high = 1);
/// Normal(mean, stddev^2) with t's shape and dtype (f32 or f64), e.g. the reparameterisation
/// mu + randn_like(mu, gen) * exp(0.5 * logvar).
Tensor randn_like(const Tensor& t, Generator& gen = default_generator(), double mean = 0,
                  double stddev = 1);
/// [start, end) in steps of step; ceil((end - start) / step) elements, each start + i * step.
/// The dtype, unless given, follows NumPy's rule: all arguments integers -> i64, any
/// floating-point argument -> f32 (the default float). So arange(10) and arange(0, 10) are i64,
/// arange(0, 1, 0.25) and arange(0.0, 10) are f32, and arange(0, 10, 1, DType::f32) asks.
Tensor arange(double start, double end, double step, DType dtype);
/// [0, n) in steps of 1, in the given dtype.
Tensor arange(int64_t n, DType dtype);

namespace detail {
template <class T>
concept RangeNumber = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;
template <class... T>
constexpr DType arange_dtype() {
  return (std::is_integral_v<T> && ...) ? DType::i64 : DType::f32;
}
}  // namespace detail

/// [0, end): i64 for an integer end, f32 for a floating one.
template <detail::RangeNumber E>
Tensor arange(E end) {
  return arange(0, double(end), 1, detail::arange_dtype<E>());
}
/// [start, end) in steps of step: i64 when all three are integers, else f32.
template <detail::RangeNumber S, detail::RangeNumber E, detail::RangeNumber P = int>
Tensor arange(S start, E end, P step = 1) {
  return arange(double(start), double(end), double(step), detail::arange_dtype<S, E, P>());
}
/// n points from start to end inclusive.
Tensor linspace(double start, double end, int64_t n, DType dtype = DType::f32);
/// (n, m) identity (m = n when m < 0).
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::f32);

/// Copies values into a new tensor of the given shape (numel must match); dtype from T.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape);
/// A 1-D tensor, e.g. tensor({1, 2, 3}); f32 unless dtype says otherwise.
Tensor tensor(std::initializer_list<double> values, DType dtype = DType::f32);
/// Copies numel(shape) elements of dtype from a flat buffer.
Tensor from_buffer(const void* data, const Shape& shape, DType dtype);

// Random tensors take (shape, dtype, generator) like the other creation functions (dtype
// right after the shape); the older (shape, generator, dtype) order is kept as well.

/// Uniform in [low, high).
Tensor rand(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32,
            double low = 0, double high = 1);
Tensor rand(const Shape& shape, DType dtype, Generator& gen = default_generator(), double low = 0,
            double high = 1);
/// Normal with the given mean and standard deviation.
Tensor randn(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32,
             double mean = 0, double stddev = 1);
Tensor randn(const Shape& shape, DType dtype, Generator& gen = default_generator(), double mean = 0,
             double stddev = 1);
/// 1 with probability p, else 0.
Tensor bernoulli(const Shape& shape, double p, Generator& gen = default_generator(),
                 DType dtype = DType::f32);
Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& gen = default_generator());
/// A random permutation of 0..n-1 (i64), Fisher-Yates.
Tensor permutation(int64_t n, Generator& gen = default_generator());
/// Uniform integers in [low, high) (i64).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen = default_generator());

}  // namespace encore
