// Elementwise kernels: unary maps with scalar parameters, broadcasting binary ops (out of place
// and in place), where, and dtype promotion. Every loop runs over NdIter (kernels/iter.h): a
// contiguous operand set becomes one flat loop the compiler vectorises, anything else walks runs
// of the innermost coalesced dim. Loops above kParallelGrain elements split over OpenMP threads.
//
// Integer semantics (i64), chosen so that no input reaches undefined behaviour:
// - add, sub, mul, neg, abs, square and pow wrap around on overflow (two's complement), as
//   NumPy and PyTorch do in practice; abs(INT64_MIN) is INT64_MIN.
// - div is floor division (Python's //, NumPy floor_divide); a zero divisor throws, and
//   INT64_MIN / -1 wraps to INT64_MIN.
// - pow with a negative exponent throws (an integer result would be 0 or a division by zero).
// - scalar parameters must be integers for add_scalar and mul_scalar; clamp bounds are rounded
//   inward (ceil(a), floor(b)); comparisons with a scalar are exact for any double.
// Floating ops follow IEEE: division by zero gives inf or nan, nan propagates through
// maximum, minimum, clamp, relu and sign.
#include <cmath>
#include <limits>

#include "tensor/kernels.h"
#include "tensor/kernels/iter.h"

namespace encore::raw {

using detail::NdIter;
using detail::parallel_for_range;

namespace {

// ---- integer arithmetic without undefined behaviour --------------------------------------

inline int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
inline int64_t wrap_neg(int64_t a) { return static_cast<int64_t>(0 - static_cast<uint64_t>(a)); }

// Floor division, b != 0.
inline int64_t floor_div(int64_t a, int64_t b) {
  if (b == -1) return wrap_neg(a);
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// a^e for e >= 0 by squaring, wrapping on overflow.
inline int64_t int_pow(int64_t a, int64_t e) {
  int64_t r = 1;
  while (e > 0) {
    if (e & 1) r = wrap_mul(r, a);
    a = wrap_mul(a, a);
    e >>= 1;
  }
  return r;
}

template <class T>
inline T add_v(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return wrap_add(a, b);
  else
    return a + b;
}
template <class T>
inline T sub_v(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return wrap_sub(a, b);
  else
    return a - b;
}
template <class T>
inline T mul_v(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return wrap_mul(a, b);
  else
    return a * b;
}

// The i64 value of an integral double scalar; throws naming op otherwise.
int64_t int_scalar(const char* op, double a) {
  ENCORE_CHECK(std::isfinite(a) && a == std::floor(a) && a >= -9223372036854775808.0 &&
                   a < 9223372036854775808.0,
               op, "scalar ", a, " is not an integer; an i64 tensor needs an integral scalar");
  return static_cast<int64_t>(a);
}

// The integers x for which "x cmp a" holds form the range [lo, hi] (possibly empty), computed
// exactly for any double a, nan and infinities included.
struct IntRange {
  int64_t lo = std::numeric_limits<int64_t>::min();
  int64_t hi = std::numeric_limits<int64_t>::max();
  bool empty = false;
};

IntRange int_range(UnaryOp op, double a) {
  IntRange r;
  if (std::isnan(a)) {
    r.empty = true;
    return r;
  }
  // x > a  <=>  x >= floor(a) + 1;  x >= a  <=>  x >= ceil(a);  and mirrored for < and <=.
  auto lower = [&](double bound) {  // x >= bound
    if (bound >= 9223372036854775808.0)
      r.empty = true;
    else
      r.lo = detail::convert<int64_t>(bound);
  };
  auto upper = [&](double bound) {  // x <= bound
    if (bound < -9223372036854775808.0)
      r.empty = true;
    else
      r.hi = detail::convert<int64_t>(bound);
  };
  switch (op) {
    case UnaryOp::gt_scalar:
      lower(std::floor(a) + 1);
      break;
    case UnaryOp::ge_scalar:
      lower(std::ceil(a));
      break;
    case UnaryOp::lt_scalar:
      upper(std::ceil(a) - 1);
      break;
    case UnaryOp::le_scalar:
      upper(std::floor(a));
      break;
    default:  // eq_scalar
      if (a != std::floor(a) || std::isinf(a)) r.empty = true;
      lower(a);
      upper(a);
  }
  return r;
}

// ---- loops ---------------------------------------------------------------------------------

// out = f(x): out is fresh and contiguous with x's shape, x has any strides.
template <class T, class F>
void map_unary(const Tensor& x, Tensor& out, F f) {
  const T* p = x.data<T>();
  T* o = out.data<T>();
  NdIter<2> it(out.shape(), {out.strides(), x.strides()});
  if (it.contiguous()) {
    parallel_for_range(it.numel, kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = f(p[i]);
    });
    return;
  }
  const int64_t so = it.inner_stride(0), sp = it.inner_stride(1);
  parallel_for_range(it.numel, kParallelGrain, [&](int64_t b, int64_t e) {
    it.for_each_run(b, e, [&](int64_t n, const int64_t* off) {
      T* po = o + off[0];
      const T* pp = p + off[1];
      if (so == 1 && sp == 1)
        for (int64_t i = 0; i < n; ++i) po[i] = f(pp[i]);
      else
        for (int64_t i = 0; i < n; ++i) po[i * so] = f(pp[i * sp]);
    });
  });
}

// out = f(a, b) over an NdIter<3> of (out, a, b); out may be a (non-overlapping) view, and may
// be the same memory as a (in place), element for element.
template <class T, class F>
void map_binary(const NdIter<3>& it, T* o, const T* pa, const T* pb, F f) {
  if (it.contiguous()) {
    parallel_for_range(it.numel, kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = f(pa[i], pb[i]);
    });
    return;
  }
  const int64_t so = it.inner_stride(0), sa = it.inner_stride(1), sb = it.inner_stride(2);
  parallel_for_range(it.numel, kParallelGrain, [&](int64_t b, int64_t e) {
    it.for_each_run(b, e, [&](int64_t n, const int64_t* off) {
      T* po = o + off[0];
      const T* qa = pa + off[1];
      const T* qb = pb + off[2];
      if (so == 1 && sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; ++i) po[i] = f(qa[i], qb[i]);
      } else if (so == 1 && sa == 1 && sb == 0) {  // b broadcast along the run
        const T vb = qb[0];
        for (int64_t i = 0; i < n; ++i) po[i] = f(qa[i], vb);
      } else if (so == 1 && sa == 0 && sb == 1) {  // a broadcast along the run
        const T va = qa[0];
        for (int64_t i = 0; i < n; ++i) po[i] = f(va, qb[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) po[i * so] = f(qa[i * sa], qb[i * sb]);
      }
    });
  });
}

// True when pred holds for some element of t (a serial scan, used to reject bad i64 input
// before a parallel loop starts).
template <class T, class P>
bool any_element(const Tensor& t, P pred) {
  if (t.numel() == 0) return false;
  NdIter<1> it(t.shape(), {t.strides()});
  const T* p = t.data<T>();
  const int64_t s = it.inner_stride(0);
  bool found = false;
  it.for_each_run(0, it.numel, [&](int64_t n, const int64_t* off) {
    for (int64_t i = 0; i < n && !found; ++i) found = pred(p[off[0] + i * s]);
  });
  return found;
}

void unary_int(UnaryOp op, const Tensor& x, Tensor& out, double a, double b) {
  using T = int64_t;
  const char* name = unary_name(op);
  switch (op) {
    case UnaryOp::neg:
      return map_unary<T>(x, out, [](T v) { return wrap_neg(v); });
    case UnaryOp::abs:
      return map_unary<T>(x, out, [](T v) { return v < 0 ? wrap_neg(v) : v; });
    case UnaryOp::sign:
      return map_unary<T>(x, out, [](T v) { return T(v > 0) - T(v < 0); });
    case UnaryOp::square:
      return map_unary<T>(x, out, [](T v) { return wrap_mul(v, v); });
    case UnaryOp::relu:
      return map_unary<T>(x, out, [](T v) { return v < 0 ? T(0) : v; });
    case UnaryOp::clamp: {
      const T lo = std::isnan(a) ? std::numeric_limits<T>::min() : detail::convert<T>(std::ceil(a));
      const T hi =
          std::isnan(b) ? std::numeric_limits<T>::max() : detail::convert<T>(std::floor(b));
      return map_unary<T>(x, out, [lo, hi](T v) {
        T r = v < lo ? lo : v;
        return r > hi ? hi : r;
      });
    }
    case UnaryOp::add_scalar: {
      const T s = int_scalar(name, a);
      return map_unary<T>(x, out, [s](T v) { return wrap_add(v, s); });
    }
    case UnaryOp::mul_scalar: {
      const T s = int_scalar(name, a);
      return map_unary<T>(x, out, [s](T v) { return wrap_mul(v, s); });
    }
    case UnaryOp::gt_scalar:
    case UnaryOp::lt_scalar:
    case UnaryOp::ge_scalar:
    case UnaryOp::le_scalar:
    case UnaryOp::eq_scalar: {
      const IntRange r = int_range(op, a);
      if (r.empty) return map_unary<T>(x, out, [](T) { return T(0); });
      return map_unary<T>(x, out, [r](T v) { return T(v >= r.lo && v <= r.hi); });
    }
    default:
      ENCORE_FAIL(name, "dtype i64 is not supported (needs f32 or f64)");
  }
}

template <class T>
void unary_float(UnaryOp op, const Tensor& x, Tensor& out, double a, double b) {
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  switch (op) {
    case UnaryOp::neg:
      return map_unary<T>(x, out, [](T v) { return -v; });
    case UnaryOp::abs:
      return map_unary<T>(x, out, [](T v) { return std::abs(v); });
    case UnaryOp::sign:
      return map_unary<T>(x, out, [](T v) { return v > 0 ? T(1) : v < 0 ? T(-1) : v; });
    case UnaryOp::exp:
      return map_unary<T>(x, out, [](T v) { return std::exp(v); });
    case UnaryOp::log:
      return map_unary<T>(x, out, [](T v) { return std::log(v); });
    case UnaryOp::log1p:
      return map_unary<T>(x, out, [](T v) { return std::log1p(v); });
    case UnaryOp::expm1:
      return map_unary<T>(x, out, [](T v) { return std::expm1(v); });
    case UnaryOp::sqrt:
      return map_unary<T>(x, out, [](T v) { return std::sqrt(v); });
    case UnaryOp::rsqrt:
      return map_unary<T>(x, out, [](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::square:
      return map_unary<T>(x, out, [](T v) { return v * v; });
    case UnaryOp::reciprocal:
      return map_unary<T>(x, out, [](T v) { return T(1) / v; });
    case UnaryOp::sin:
      return map_unary<T>(x, out, [](T v) { return std::sin(v); });
    case UnaryOp::cos:
      return map_unary<T>(x, out, [](T v) { return std::cos(v); });
    case UnaryOp::tanh:
      return map_unary<T>(x, out, [](T v) { return std::tanh(v); });
    case UnaryOp::sigmoid: {
      // NOTE: one exp of -|x|, so neither side overflows and tiny values survive:
      // 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0. Two passes: the libm exp, then a
      // blend-and-divide loop the compiler vectorises (fused in one loop, the select after the
      // exp call made it 2.5x slower than the naive formula; see bench_tensor sigmoid_1M).
      map_unary<T>(x, out, [](T v) { return std::exp(-std::abs(v)); });
      Tensor xc = x.contiguous();  // out is fresh and contiguous
      const T* px = xc.data<T>();
      T* po = out.data<T>();
      for (int64_t i = 0, n = out.numel(); i < n; ++i) {
        T e = po[i];
        po[i] = (px[i] >= 0 ? T(1) : e) / (T(1) + e);
      }
      return;
    }
    case UnaryOp::relu:
      return map_unary<T>(x, out, [](T v) { return v < 0 ? T(0) : v; });
    case UnaryOp::softplus:
      // log(1 + e^x) = log1p(e^-|x|) + max(x, 0): no overflow for large x, no underflow to 0
      // for very negative x.
      return map_unary<T>(
          x, out, [](T v) { return std::log1p(std::exp(-std::abs(v))) + (v > 0 ? v : T(0)); });
    case UnaryOp::leaky_relu:
      return map_unary<T>(x, out, [ta](T v) { return v > 0 ? v : ta * v; });
    case UnaryOp::elu:
      return map_unary<T>(x, out, [ta](T v) { return v > 0 ? v : ta * std::expm1(v); });
    case UnaryOp::clamp:
      return map_unary<T>(x, out, [ta, tb](T v) {
        T r = v < ta ? ta : v;
        return r > tb ? tb : r;
      });
    case UnaryOp::add_scalar:
      return map_unary<T>(x, out, [ta](T v) { return v + ta; });
    case UnaryOp::mul_scalar:
      return map_unary<T>(x, out, [ta](T v) { return v * ta; });
    case UnaryOp::pow_scalar:
      // The common exponents take the cheap exact spellings (the same values std::pow gives,
      // without a libm call per element): x^2 is square's loop, x^1 a copy, x^0 one (also at
      // NaN, as pow says), x^0.5 sqrt with pow's two exceptions (pow(-0, 0.5) = +0 and
      // pow(-inf, 0.5) = +inf, where sqrt gives -0 and NaN).
      if (a == 2) return map_unary<T>(x, out, [](T v) { return v * v; });
      if (a == 1) return map_unary<T>(x, out, [](T v) { return v; });
      if (a == 0) return map_unary<T>(x, out, [](T) { return T(1); });
      if (a == 0.5)
        return map_unary<T>(x, out, [](T v) {
          return v == -std::numeric_limits<T>::infinity() ? -v : std::sqrt(v) + T(0);
        });
      return map_unary<T>(x, out, [ta](T v) { return std::pow(v, ta); });
    case UnaryOp::rpow_scalar:
      return map_unary<T>(x, out, [ta](T v) { return std::pow(ta, v); });
    case UnaryOp::gt_scalar:
      return map_unary<T>(x, out, [ta](T v) { return T(v > ta); });
    case UnaryOp::lt_scalar:
      return map_unary<T>(x, out, [ta](T v) { return T(v < ta); });
    case UnaryOp::ge_scalar:
      return map_unary<T>(x, out, [ta](T v) { return T(v >= ta); });
    case UnaryOp::le_scalar:
      return map_unary<T>(x, out, [ta](T v) { return T(v <= ta); });
    case UnaryOp::eq_scalar:
      return map_unary<T>(x, out, [ta](T v) { return T(v == ta); });
  }
  ENCORE_FAIL("unary", "unknown op ", int(op));
}

// out = a op b: a and b have out's dtype and broadcast to out's shape; out is non-overlapping
// and may be a itself (in place).
void binary_into(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  if (out.numel() == 0) return;
  if (out.dtype() == DType::i64) {
    if (op == BinaryOp::div)
      ENCORE_CHECK(!any_element<int64_t>(b, [](int64_t v) { return v == 0; }), name,
                   "integer division by zero (divisor of shape ", b.shape(), ", dtype i64)");
    if (op == BinaryOp::pow)
      ENCORE_CHECK(!any_element<int64_t>(b, [](int64_t v) { return v < 0; }), name,
                   "negative exponent for an integer power (exponent of shape ", b.shape(),
                   ", dtype i64); convert to f32 or f64 first");
  }
  Strides sa = detail::broadcast_strides(a.shape(), a.strides(), out.shape());
  Strides sb = detail::broadcast_strides(b.shape(), b.strides(), out.shape());
  NdIter<3> it(out.shape(), {out.strides(), sa, sb}, !out.is_contiguous());
  dispatch(out.dtype(), [&]<class T>() {
    T* o = out.data<T>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    switch (op) {
      case BinaryOp::add:
        return map_binary(it, o, pa, pb, [](T x, T y) { return add_v(x, y); });
      case BinaryOp::sub:
        return map_binary(it, o, pa, pb, [](T x, T y) { return sub_v(x, y); });
      case BinaryOp::mul:
        return map_binary(it, o, pa, pb, [](T x, T y) { return mul_v(x, y); });
      case BinaryOp::div:
        if constexpr (std::is_integral_v<T>)
          return map_binary(it, o, pa, pb, [](T x, T y) { return floor_div(x, y); });
        else
          return map_binary(it, o, pa, pb, [](T x, T y) { return x / y; });
      case BinaryOp::pow:
        if constexpr (std::is_integral_v<T>)
          return map_binary(it, o, pa, pb, [](T x, T y) { return int_pow(x, y); });
        else
          return map_binary(it, o, pa, pb, [](T x, T y) { return std::pow(x, y); });
      case BinaryOp::maximum:  // nan-propagating: x != x only for nan
        return map_binary(it, o, pa, pb, [](T x, T y) { return (x > y || x != x) ? x : y; });
      case BinaryOp::minimum:
        return map_binary(it, o, pa, pb, [](T x, T y) { return (x < y || x != x) ? x : y; });
      case BinaryOp::eq:
        return map_binary(it, o, pa, pb, [](T x, T y) { return T(x == y); });
      case BinaryOp::ne:
        return map_binary(it, o, pa, pb, [](T x, T y) { return T(x != y); });
      case BinaryOp::lt:
        return map_binary(it, o, pa, pb, [](T x, T y) { return T(x < y); });
      case BinaryOp::le:
        return map_binary(it, o, pa, pb, [](T x, T y) { return T(x <= y); });
      case BinaryOp::gt:
        return map_binary(it, o, pa, pb, [](T x, T y) { return T(x > y); });
      case BinaryOp::ge:
        return map_binary(it, o, pa, pb, [](T x, T y) { return T(x >= y); });
    }
  });
}

}  // namespace

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg:
      return "neg";
    case UnaryOp::abs:
      return "abs";
    case UnaryOp::sign:
      return "sign";
    case UnaryOp::exp:
      return "exp";
    case UnaryOp::log:
      return "log";
    case UnaryOp::log1p:
      return "log1p";
    case UnaryOp::expm1:
      return "expm1";
    case UnaryOp::sqrt:
      return "sqrt";
    case UnaryOp::rsqrt:
      return "rsqrt";
    case UnaryOp::square:
      return "square";
    case UnaryOp::reciprocal:
      return "reciprocal";
    case UnaryOp::sin:
      return "sin";
    case UnaryOp::cos:
      return "cos";
    case UnaryOp::tanh:
      return "tanh";
    case UnaryOp::sigmoid:
      return "sigmoid";
    case UnaryOp::relu:
      return "relu";
    case UnaryOp::softplus:
      return "softplus";
    case UnaryOp::leaky_relu:
      return "leaky_relu";
    case UnaryOp::elu:
      return "elu";
    case UnaryOp::clamp:
      return "clamp";
    case UnaryOp::add_scalar:
      return "add_scalar";
    case UnaryOp::mul_scalar:
      return "mul_scalar";
    case UnaryOp::pow_scalar:
      return "pow_scalar";
    case UnaryOp::rpow_scalar:
      return "rpow_scalar";
    case UnaryOp::gt_scalar:
      return "gt_scalar";
    case UnaryOp::lt_scalar:
      return "lt_scalar";
    case UnaryOp::ge_scalar:
      return "ge_scalar";
    case UnaryOp::le_scalar:
      return "le_scalar";
    case UnaryOp::eq_scalar:
      return "eq_scalar";
  }
  return "unary";
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return "add";
    case BinaryOp::sub:
      return "sub";
    case BinaryOp::mul:
      return "mul";
    case BinaryOp::div:
      return "div";
    case BinaryOp::pow:
      return "pow";
    case BinaryOp::maximum:
      return "maximum";
    case BinaryOp::minimum:
      return "minimum";
    case BinaryOp::eq:
      return "eq";
    case BinaryOp::ne:
      return "ne";
    case BinaryOp::lt:
      return "lt";
    case BinaryOp::le:
      return "le";
    case BinaryOp::gt:
      return "gt";
    case BinaryOp::ge:
      return "ge";
  }
  return "binary";
}

DType promote(DType a, DType b) {
  auto rank = [](DType d) { return d == DType::i64 ? 0 : d == DType::f32 ? 1 : 2; };
  return rank(a) >= rank(b) ? a : b;
}

Tensor unary(UnaryOp op, const Tensor& x, double a, double b) {
  check_defined(unary_name(op), x);
  Tensor out(x.shape(), x.dtype());
  if (x.dtype() == DType::i64) {
    unary_int(op, x, out, a, b);
    return out;
  }
  dispatch_float(unary_name(op), x.dtype(), [&]<class T>() { unary_float<T>(op, x, out, a, b); });
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_defined(name, a, "the first operand");
  check_defined(name, b, "the second operand");
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  DType dt = promote(a.dtype(), b.dtype());
  Tensor out(shape, dt);
  binary_into(op, out, a.to(dt), b.to(dt));
  return out;
}

void binary_(BinaryOp op, Tensor& dst, const Tensor& src) {
  std::string name = std::string(binary_name(op)) + "_";
  check_defined(name.c_str(), dst, "the destination");
  check_defined(name.c_str(), src, "the source");
  Shape shape = broadcast_shapes(name.c_str(), dst.shape(), src.shape());
  ENCORE_CHECK(shape == dst.shape(), name.c_str(), "cannot broadcast source of shape ", src.shape(),
               " to destination of shape ", dst.shape());
  ENCORE_CHECK(promote(dst.dtype(), src.dtype()) == dst.dtype(), name.c_str(), "result of dtype ",
               promote(dst.dtype(), src.dtype()),
               " cannot be written in place into a destination of dtype ", dst.dtype(), " (shapes ",
               dst.shape(), " and ", src.shape(), ")");
  ENCORE_CHECK(detail::is_non_overlapping(dst.shape(), dst.strides()), name.c_str(),
               "destination of shape ", dst.shape(), " and strides ", dst.strides(),
               " has elements that share memory (an expanded view?); clone it first");
  Tensor s = src.to(dst.dtype());
  // NOTE: a source sharing memory with dst in another layout (x += x.T) would be read after
  // being overwritten; the identical layout (x *= x) is safe element for element.
  if (s.storage() == dst.storage() &&
      (s.offset() != dst.offset() || s.strides() != dst.strides() || s.shape() != dst.shape()))
    s = s.clone();
  binary_into(op, dst, dst, s);
  dst.storage()->bump_version();
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "the condition");
  check_defined("where", a, "the first operand");
  check_defined("where", b, "the second operand");
  const Shape &sc = cond.shape(), &sa = a.shape(), &sb = b.shape();
  int n = std::max({sc.size(), sa.size(), sb.size()});
  Shape shape = Dims::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    for (const Shape* s : {&sc, &sa, &sb}) {
      int j = s->size() - n + i;
      int64_t d = j >= 0 ? (*s)[j] : 1;
      ENCORE_CHECK(d == shape[i] || d == 1 || shape[i] == 1, "where", "shapes ", sc, " (cond), ",
                   sa, " and ", sb, " cannot be broadcast together (dim ", i, ")");
      if (d != 1) shape[i] = d;
    }
  }
  DType dt = promote(a.dtype(), b.dtype());
  Tensor out(shape, dt);
  if (out.numel() == 0) return out;
  Tensor ca = a.to(dt), cb = b.to(dt);
  NdIter<4> it(shape, {out.strides(), detail::broadcast_strides(sc, cond.strides(), shape),
                       detail::broadcast_strides(sa, ca.strides(), shape),
                       detail::broadcast_strides(sb, cb.strides(), shape)});
  dispatch(dt, [&]<class T>() {
    dispatch(cond.dtype(), [&]<class C>() {
      T* o = out.data<T>();
      const C* pc = cond.data<C>();
      const T* pa = ca.data<T>();
      const T* pb = cb.data<T>();
      const int64_t s0 = it.inner_stride(0), s1 = it.inner_stride(1), s2 = it.inner_stride(2),
                    s3 = it.inner_stride(3);
      parallel_for_range(it.numel, kParallelGrain, [&](int64_t begin, int64_t end) {
        it.for_each_run(begin, end, [&](int64_t len, const int64_t* off) {
          T* qo = o + off[0];
          const C* qc = pc + off[1];
          const T* qa = pa + off[2];
          const T* qb = pb + off[3];
          if (s0 == 1 && s1 == 1 && s2 == 1 && s3 == 1)
            for (int64_t i = 0; i < len; ++i) qo[i] = qc[i] != C(0) ? qa[i] : qb[i];
          else
            for (int64_t i = 0; i < len; ++i)
              qo[i * s0] = qc[i * s1] != C(0) ? qa[i * s2] : qb[i * s3];
        });
      });
    });
  });
  return out;
}

}  // namespace encore::raw
