// Creating tensors: constant fills, ranges, from C++ data, and random (with a Generator).
#pragma once

#include <cstdint>
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
/// [start, end) in steps of step; (end - start) / step elements, rounded up.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::f32);
inline Tensor arange(int64_t n, DType dtype = DType::i64) { return arange(0, double(n), 1, dtype); }
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
