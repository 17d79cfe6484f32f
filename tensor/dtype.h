// The closed set of runtime element types and the one helper that dispatches on them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string_view>
#include <type_traits>

#include "error.h"

namespace encore {

/// Element types: f32 is the default, f64 serves gradcheck and PCA, i64 labels and indices.
enum class DType : uint8_t { f32, f64, i64 };

constexpr size_t dtype_size(DType dt) { return dt == DType::f32 ? 4 : 8; }
constexpr std::string_view dtype_name(DType dt) {
  return dt == DType::f32 ? "f32" : dt == DType::f64 ? "f64" : "i64";
}
constexpr bool is_floating(DType dt) { return dt != DType::i64; }
inline std::ostream& operator<<(std::ostream& os, DType dt) { return os << dtype_name(dt); }

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}

/// static_cast with the undefined cases defined: a floating value converted to an integer
/// truncates toward zero, saturates at the limits, and NaN becomes 0.
template <class D, class S>
constexpr D value_cast(S v) {
  if constexpr (std::is_integral_v<D> && std::is_floating_point_v<S>) {
    if (!(v == v)) return 0;
    if (v >= static_cast<S>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    if (v <= static_cast<S>(std::numeric_limits<D>::min())) return std::numeric_limits<D>::min();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

/// Calls f.template operator()<T>() with T the C++ type of dt:
///   dispatch(x.dtype(), [&]<class T>() { ... });
template <class F>
decltype(auto) dispatch(DType dt, F&& f) {
  switch (dt) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    case DType::i64:
      return f.template operator()<int64_t>();
  }
  ENCORE_FAIL("dispatch", "unknown dtype ", int(dt));
}

/// As dispatch, for kernels defined on floating types only; i64 throws naming the op.
template <class F>
decltype(auto) dispatch_float(const char* op, DType dt, F&& f) {
  switch (dt) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    case DType::i64:
      break;
  }
  ENCORE_FAIL(op, "dtype ", dt, " is not supported (needs f32 or f64)");
}

}  // namespace encore
