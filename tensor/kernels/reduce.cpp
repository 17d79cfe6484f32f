// Reduction kernels: sum/mean/max/min/prod over any set of dims, argmax/argmin, var,
// logsumexp, softmax/log_softmax along a dim, and sum_to (the adjoint of broadcasting).
//
// A reduction splits x's dims into kept dims (one output each, NdIter "kept" over (out, x)) and
// reduced dims (NdIter "red" over x, sorted so its innermost dim has the smallest stride). Then:
// - column path: when x's innermost kept dim has stride 1 (column sums over a batch, the bias
//   gradient), blocks of up to 256 outputs are accumulated together, row by row, in a loop
//   the compiler vectorises across the outputs;
// - line path otherwise: each output reduces its own line; a contiguous line (row sums,
//   reduced dims innermost) is a vectorised simd reduction. Lines longer than kChunk are cut
//   into fixed chunks whose partial results combine in order, so a full reduction of a large
//   tensor runs in parallel and gives bitwise the same result for any thread count.
// f32 sums, means and products accumulate in f64; i64 sums and products wrap around on
// overflow. max/min propagate nan. Reducing over an empty dim gives 0 for sum, 1 for prod,
// -inf for logsumexp, and throws for mean, max, min, var, argmax and argmin.
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/kernels/iter.h"
#include "tensor/view.h"

namespace encore::raw {

using detail::NdIter;
using detail::parallel_for_range;

namespace {

constexpr int64_t kChunk = 16384;      // reduced elements per partial result on long lines
constexpr int64_t kColumnBlock = 256;  // outputs accumulated together on the column path

std::string dims_text(const std::vector<int64_t>& dims) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? ", " : "") << dims[i];
  os << ']';
  return os.str();
}

// How x splits into kept and reduced dims. The output is contiguous with out_shape.
struct Plan {
  Shape out_shape;
  Shape kept_shape;
  Strides kept_out, kept_x;
  Shape red_shape;
  Strides red_x;
  int64_t M = 1;  ///< outputs
  int64_t K = 1;  ///< elements reduced into each output
};

Plan make_plan(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const int nd = x.dim();
  bool reduced[kMaxDims] = {};
  if (dims.empty()) {
    for (int d = 0; d < nd; ++d) reduced[d] = true;
  } else {
    for (int64_t v : dims) {
      int d = normalize_dim(op, v, nd);
      if (nd == 0) continue;  // a 0-d tensor accepts dim 0 and has nothing to reduce
      ENCORE_CHECK(!reduced[d], op, "dim ", v, " is repeated in dims ", dims_text(dims),
                   " for shape ", x.shape());
      reduced[d] = true;
    }
  }
  Plan p;
  for (int d = 0; d < nd; ++d)
    if (!reduced[d] || keepdim) p.out_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
  Strides os = contiguous_strides(p.out_shape);
  for (int d = 0, j = 0; d < nd; ++d) {
    if (reduced[d]) {
      p.red_shape.push_back(x.shape()[d]);
      p.red_x.push_back(x.strides()[d]);
      if (keepdim) ++j;
    } else {
      p.kept_shape.push_back(x.shape()[d]);
      p.kept_x.push_back(x.strides()[d]);
      p.kept_out.push_back(os[j++]);
    }
  }
  p.M = numel(p.kept_shape);
  p.K = numel(p.red_shape);
  return p;
}

// Calls f(offset, n, stride) for the runs of one reduced line (offsets relative to its base).
template <class F>
inline void line_runs(const NdIter<1>& red, int64_t k0, int64_t k1, F&& f) {
  if (red.ndim == 1) {
    if (k1 > k0) f(k0 * red.strides[0][0], k1 - k0, red.strides[0][0]);
    return;
  }
  const int64_t s = red.inner_stride(0);
  red.for_each_run(k0, k1, [&](int64_t n, const int64_t* off) { f(off[0], n, s); });
}

// Calls f(x_base, out_offset) for every output, in parallel when the work is large.
template <class T, class F>
void for_each_output(const Plan& p, const NdIter<2>& kept, const T* px, F&& f) {
  const int64_t so = kept.inner_stride(0), sx = kept.inner_stride(1);
  parallel_for_range(p.M, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(p.K, 1)),
                     [&](int64_t b, int64_t e) {
                       kept.for_each_run(b, e, [&](int64_t n, const int64_t* off) {
                         for (int64_t i = 0; i < n; ++i) f(px + off[1] + i * sx, off[0] + i * so);
                       });
                     });
}

// ---- accumulators: init, step (one element), run (a strided run), combine, finish -----------

template <class T>
using wide_t = std::conditional_t<std::is_integral_v<T>, uint64_t, double>;

template <class T, bool Mean>
struct SumOp {
  using A = wide_t<T>;  // f64 for floats; u64 for i64 so overflow wraps instead of being UB
  static A init() { return 0; }
  static A step(A a, T v) { return a + static_cast<A>(v); }
  static A combine(A a, A b) { return a + b; }
  static A run(A a, const T* p, int64_t n, int64_t s) {
    A acc = 0;
    if (s == 1) {
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < n; ++i) acc += static_cast<A>(p[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) acc += static_cast<A>(p[i * s]);
    }
    return a + acc;
  }
  static T finish(A a, int64_t k) {
    if constexpr (Mean)
      return static_cast<T>(a / static_cast<A>(k));
    else
      return static_cast<T>(a);
  }
};

template <class T>
struct ProdOp {
  using A = wide_t<T>;
  static A init() { return 1; }
  static A step(A a, T v) { return a * static_cast<A>(v); }
  static A combine(A a, A b) { return a * b; }
  static A run(A a, const T* p, int64_t n, int64_t s) {
    for (int64_t i = 0; i < n; ++i) a *= static_cast<A>(p[i * s]);
    return a;
  }
  static T finish(A a, int64_t) { return static_cast<T>(a); }
};

// Max (IsMax) or min; nan wins over everything, as in NumPy and PyTorch.
template <class T, bool IsMax>
struct ExtremeOp {
  using A = T;
  static A init() {
    if constexpr (std::is_integral_v<T>)
      return IsMax ? std::numeric_limits<T>::min() : std::numeric_limits<T>::max();
    else
      return IsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  }
  static A step(A a, T v) {
    if constexpr (IsMax)
      return (v > a || v != v) ? v : a;
    else
      return (v < a || v != v) ? v : a;
  }
  static A combine(A a, A b) { return step(a, b); }
  static A run(A a, const T* p, int64_t n, int64_t s) {
    if (s != 1) {
      for (int64_t i = 0; i < n; ++i) a = step(a, p[i * s]);
      return a;
    }
    // NOTE: kLanes independent running extremes, merged at the end. The lane loop is a
    // compare-select per lane, which GCC and clang both vectorise; a `#pragma omp simd
    // reduction(max : m)` over the same select is vectorised by GCC only, and clang reports
    // the refused pragma as a warning (-Wpass-failed).
    constexpr int64_t kLanes = 16;
    T m[kLanes];
    int nan[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) {
      m[j] = init();
      nan[j] = 0;
    }
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int64_t j = 0; j < kLanes; ++j) {
        const T v = p[i + j];
        m[j] = (IsMax ? v > m[j] : v < m[j]) ? v : m[j];
        nan[j] |= v != v;
      }
    int nans = 0;
    for (; i < n; ++i) {
      m[0] = (IsMax ? p[i] > m[0] : p[i] < m[0]) ? p[i] : m[0];
      nans |= p[i] != p[i];
    }
    for (int64_t j = 0; j < kLanes; ++j) {
      a = (IsMax ? m[j] > a : m[j] < a) ? m[j] : a;
      nans |= nan[j];
    }
    if constexpr (!std::is_integral_v<T>)
      if (nans) return std::numeric_limits<T>::quiet_NaN();
    return a;
  }
  static T finish(A a, int64_t) { return a; }
};

template <class T, class Op>
void run_reduce(const Plan& p, const Tensor& x, Tensor& out) {
  using A = typename Op::A;
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const int64_t M = p.M, K = p.K;
  NdIter<2> kept(p.kept_shape, {p.kept_out, p.kept_x});
  NdIter<1> red(p.red_shape, {p.red_x}, true);

  // Column path: the innermost kept dim is contiguous in x (and in out).
  if (K > 1 && kept.inner_stride(1) == 1 && kept.inner_stride(0) == 1 && kept.inner_size() >= 8) {
    const int64_t C = kept.inner_size(), outer = M / C;
    const int64_t blocks = (C + kColumnBlock - 1) / kColumnBlock;
    parallel_for_range(outer * blocks, std::max<int64_t>(1, kParallelGrain / (K * kColumnBlock)),
                       [&](int64_t b, int64_t e) {
                         A acc[kColumnBlock];
                         for (int64_t t = b; t < e; ++t) {
                           const int64_t j0 = (t % blocks) * kColumnBlock;
                           const int64_t cn = std::min(kColumnBlock, C - j0);
                           const auto off = kept.offsets_at((t / blocks) * C + j0);
                           const T* base = px + off[1];
                           for (int64_t j = 0; j < cn; ++j) acc[j] = Op::init();
                           line_runs(red, 0, K, [&](int64_t roff, int64_t n, int64_t rs) {
                             for (int64_t r = 0; r < n; ++r) {
                               const T* row = base + roff + r * rs;
                               for (int64_t j = 0; j < cn; ++j) acc[j] = Op::step(acc[j], row[j]);
                             }
                           });
                           for (int64_t j = 0; j < cn; ++j) po[off[0] + j] = Op::finish(acc[j], K);
                         }
                       });
    return;
  }

  // Line path.
  auto line = [&](const T* base, int64_t k0, int64_t k1) {
    A a = Op::init();
    line_runs(red, k0, k1,
              [&](int64_t roff, int64_t n, int64_t rs) { a = Op::run(a, base + roff, n, rs); });
    return a;
  };
  const int64_t chunks = K > kChunk ? (K + kChunk - 1) / kChunk : 1;
  if (chunks == 1) {
    for_each_output(p, kept, px,
                    [&](const T* base, int64_t o) { po[o] = Op::finish(line(base, 0, K), K); });
    return;
  }
  std::vector<A> part(static_cast<size_t>(M * chunks));
  parallel_for_range(M * chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t c = t % chunks;
      const T* base = px + kept.offsets_at(t / chunks)[1];
      part[t] = line(base, c * kChunk, std::min(K, (c + 1) * kChunk));
    }
  });
  for (int64_t j = 0; j < M; ++j) {
    A a = part[j * chunks];
    for (int64_t c = 1; c < chunks; ++c) a = Op::combine(a, part[j * chunks + c]);
    po[kept.offsets_at(j)[0]] = Op::finish(a, K);
  }
}

// argmax (IsMax) or argmin along one dim: the first extreme wins; nan counts as the extreme.
template <class T, bool IsMax>
Tensor arg_extreme(const char* op, const Tensor& x, int64_t dim, bool keepdim) {
  Plan p = make_plan(op, x, {dim}, keepdim);
  Tensor out(p.out_shape, DType::i64);
  if (p.M == 0) return out;
  ENCORE_CHECK(p.K > 0, op, "cannot reduce over an empty dim: shape ", x.shape(), ", dim ", dim);
  const int64_t K = p.K;
  const int64_t s = p.red_x.empty() ? 0 : p.red_x[0];
  NdIter<2> kept(p.kept_shape, {p.kept_out, p.kept_x});
  int64_t* po = out.data<int64_t>();
  for_each_output(p, kept, x.data<T>(), [&](const T* base, int64_t o) {
    T best = base[0];
    int64_t at = 0;
    for (int64_t k = 1; k < K && best == best; ++k) {
      const T v = base[k * s];
      if ((IsMax ? v > best : v < best) || v != v) {
        best = v;
        at = k;
      }
    }
    po[o] = at;
  });
  return out;
}

// One softmax (or log-softmax) line of length L: y = exp(x - max) / sum, in T with the sum in
// f64. A line of all -inf gives nan (0 / 0), as in PyTorch.
template <class T, bool Log>
void softmax_line(const T* x, T* y, int64_t L, int64_t sx, int64_t sy) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < L; ++k) {
    const T v = x[k * sx];
    m = (v > m || v != v) ? v : m;
  }
  if (m == -std::numeric_limits<T>::infinity()) m = 0;
  double s = 0;
  if constexpr (Log) {
    for (int64_t k = 0; k < L; ++k) s += static_cast<double>(std::exp(x[k * sx] - m));
    const T shift = m + static_cast<T>(std::log(s));
    for (int64_t k = 0; k < L; ++k) y[k * sy] = x[k * sx] - shift;
  } else {
    for (int64_t k = 0; k < L; ++k) {
      const T e = std::exp(x[k * sx] - m);
      y[k * sy] = e;
      s += static_cast<double>(e);
    }
    const T inv = static_cast<T>(1.0 / s);
    for (int64_t k = 0; k < L; ++k) y[k * sy] *= inv;
  }
}

template <bool Log>
Tensor softmax_impl(const char* op, const Tensor& x, int64_t dim) {
  check_defined(op, x);
  const int d = normalize_dim(op, dim, x.dim());
  Tensor out(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    if (x.numel() == 0) return;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (x.dim() == 0) {  // one element: softmax 1, log_softmax 0 (nan stays nan)
      po[0] = px[0] == px[0] ? T(Log ? 0 : 1) : px[0];
      return;
    }
    const int64_t L = x.shape()[d], sx = x.strides()[d], sy = out.strides()[d];
    Shape ls = x.shape();
    ls[d] = 1;
    NdIter<2> lines(ls, {out.strides(), x.strides()});
    const int64_t lo = lines.inner_stride(0), lx = lines.inner_stride(1);
    parallel_for_range(
        lines.numel, std::max<int64_t>(1, kParallelGrain / (8 * L)), [&](int64_t b, int64_t e) {
          lines.for_each_run(b, e, [&](int64_t n, const int64_t* off) {
            for (int64_t i = 0; i < n; ++i)
              softmax_line<T, Log>(px + off[1] + i * lx, po + off[0] + i * lo, L, sx, sy);
          });
        });
  });
  return out;
}

}  // namespace

const char* reduce_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::mean:
      return "mean";
    case ReduceOp::max:
      return "max";
    case ReduceOp::min:
      return "min";
    case ReduceOp::prod:
      return "prod";
  }
  return "reduce";
}

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const char* name = reduce_name(op);
  check_defined(name, x);
  ENCORE_CHECK(op != ReduceOp::mean || is_floating(x.dtype()), name, "dtype ", x.dtype(),
               " is not supported (needs f32 or f64), shape ", x.shape());
  Plan p = make_plan(name, x, dims, keepdim);
  Tensor out(p.out_shape, x.dtype());
  if (p.M == 0) return out;
  ENCORE_CHECK(p.K > 0 || op == ReduceOp::sum || op == ReduceOp::prod, name,
               "cannot reduce over an empty dim: shape ", x.shape(), ", dims ",
               dims.empty() ? std::string("all") : dims_text(dims));
  dispatch(x.dtype(), [&]<class T>() {
    switch (op) {
      case ReduceOp::sum:
        return run_reduce<T, SumOp<T, false>>(p, x, out);
      case ReduceOp::mean:
        if constexpr (!std::is_integral_v<T>) run_reduce<T, SumOp<T, true>>(p, x, out);
        return;
      case ReduceOp::max:
        return run_reduce<T, ExtremeOp<T, true>>(p, x, out);
      case ReduceOp::min:
        return run_reduce<T, ExtremeOp<T, false>>(p, x, out);
      case ReduceOp::prod:
        return run_reduce<T, ProdOp<T>>(p, x, out);
    }
  });
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined("argmax", x);
  return dispatch(x.dtype(),
                  [&]<class T>() { return arg_extreme<T, true>("argmax", x, dim, keepdim); });
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined("argmin", x);
  return dispatch(x.dtype(),
                  [&]<class T>() { return arg_extreme<T, false>("argmin", x, dim, keepdim); });
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  check_defined("var", x);
  return dispatch_float("var", x.dtype(), [&]<class T>() {
    Plan p = make_plan("var", x, dims, keepdim);
    Tensor out(p.out_shape, x.dtype());
    if (p.M == 0) return out;
    ENCORE_CHECK(p.K > 0, "var", "cannot reduce over an empty dim: shape ", x.shape(), ", dims ",
                 dims.empty() ? std::string("all") : dims_text(dims));
    // NOTE: two passes (mean, then squared deviations) in f64: no catastrophic cancellation.
    // K <= correction divides by 0 and gives inf or nan (IEEE), as PyTorch does.
    const double denom = std::max<double>(0.0, static_cast<double>(p.K - correction));
    const int64_t K = p.K;
    NdIter<2> kept(p.kept_shape, {p.kept_out, p.kept_x});
    NdIter<1> red(p.red_shape, {p.red_x}, true);
    T* po = out.data<T>();
    for_each_output(p, kept, x.data<T>(), [&](const T* base, int64_t o) {
      double s = 0;
      line_runs(red, 0, K, [&](int64_t off, int64_t n, int64_t rs) {
        for (int64_t i = 0; i < n; ++i) s += static_cast<double>(base[off + i * rs]);
      });
      const double mean = s / static_cast<double>(K);
      double ss = 0;
      line_runs(red, 0, K, [&](int64_t off, int64_t n, int64_t rs) {
        for (int64_t i = 0; i < n; ++i) {
          const double dv = static_cast<double>(base[off + i * rs]) - mean;
          ss += dv * dv;
        }
      });
      po[o] = static_cast<T>(ss / denom);
    });
    return out;
  });
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined("logsumexp", x);
  return dispatch_float("logsumexp", x.dtype(), [&]<class T>() {
    Plan p = make_plan("logsumexp", x, dims, keepdim);
    Tensor out(p.out_shape, x.dtype());
    if (p.M == 0) return out;
    const int64_t K = p.K;
    NdIter<2> kept(p.kept_shape, {p.kept_out, p.kept_x});
    NdIter<1> red(p.red_shape, {p.red_x}, true);
    T* po = out.data<T>();
    for_each_output(p, kept, x.data<T>(), [&](const T* base, int64_t o) {
      T m = -std::numeric_limits<T>::infinity();
      line_runs(red, 0, K, [&](int64_t off, int64_t n, int64_t rs) {
        m = ExtremeOp<T, true>::run(m, base + off, n, rs);
      });
      if (!std::isfinite(m)) {  // -inf (all -inf, or empty), +inf, or nan: that is the result
        po[o] = m;
        return;
      }
      double s = 0;
      line_runs(red, 0, K, [&](int64_t off, int64_t n, int64_t rs) {
        for (int64_t i = 0; i < n; ++i) s += static_cast<double>(std::exp(base[off + i * rs] - m));
      });
      po[o] = static_cast<T>(static_cast<double>(m) + std::log(s));
    });
    return out;
  });
}

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl<false>("softmax", x, dim); }

Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl<true>("log_softmax", x, dim);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  check_defined("sum_to", x);
  const int lead = x.dim() - shape.size();
  bool ok = lead >= 0;
  std::vector<int64_t> dims;
  for (int i = 0; i < lead; ++i) dims.push_back(i);
  for (int i = 0; ok && i < shape.size(); ++i) {
    const int64_t have = x.shape()[i + lead];
    ok = shape[i] == have || shape[i] == 1;
    if (shape[i] == 1 && have != 1) dims.push_back(i + lead);
  }
  ENCORE_CHECK(ok, "sum_to", "shape ", x.shape(), " cannot be summed to ", shape, " (", shape,
               " does not broadcast to ", x.shape(), ")");
  // NOTE: nothing to sum returns x itself (an alias, as PyTorch's sum_to does).
  if (dims.empty()) return x;
  return view(reduce(ReduceOp::sum, x, dims, true), shape);
}

}  // namespace encore::raw
