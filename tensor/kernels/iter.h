// Internal helpers shared by the kernels (not installed API): a strided N-d loop over several
// operands with dims coalesced, a splitter of index ranges over OpenMP threads, and the
// well-defined dtype conversion every kernel uses.
//
// A kernel builds an NdIter over the output shape with one stride set per operand (0 where an
// operand is broadcast), then visits runs of the innermost dim:
//
//   NdIter<2> it(out.shape(), {out.strides(), x.strides()});
//   parallel_for_range(it.numel, kParallelGrain, [&](int64_t begin, int64_t end) {
//     it.for_each_run(begin, end, [&](int64_t n, const int64_t* off) { ...n elements... });
//   });
//
// Inside a run, operand k's elements are at off[k] + i * it.inner_stride(k), i < n; a plain
// loop over i is what the compiler vectorises when the inner strides are 1.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../shape.h"
#include "../threads.h"

namespace encore::raw::detail {

/// A loop nest over a shape for N operands with their own element strides. Size-1 dims are
/// dropped and adjacent dims merged when every operand steps through them as one
/// (stride[d] == stride[d + 1] * shape[d + 1]); a contiguous loop becomes one dim. Runs visit
/// elements in row-major order of the (possibly reordered) dims.
template <int N>
struct NdIter {
  int ndim = 1;  ///< >= 1: a 0-d or all-size-1 shape becomes one dim of size 1
  int64_t numel = 1;
  int64_t shape[kMaxDims] = {1};
  int64_t strides[N][kMaxDims] = {};

  /// shape with one stride set per operand (each of shape.size() entries). With
  /// sort_by_first, dims are first ordered by operand 0's stride, largest outermost, so the
  /// innermost loop walks operand 0's memory in order (for writes into permuted views).
  NdIter(const Shape& s, const std::array<Strides, N>& st, bool sort_by_first = false) {
    int order[kMaxDims];
    int n = 0;
    numel = encore::numel(s);
    for (int d = 0; d < s.size(); ++d)
      if (s[d] != 1) order[n++] = d;
    if (numel == 0) {
      shape[0] = 0;
      return;
    }
    if (sort_by_first)  // stable insertion sort, largest stride first
      for (int i = 1; i < n; ++i)
        for (int j = i; j > 0 && st[0][order[j - 1]] < st[0][order[j]]; --j)
          std::swap(order[j - 1], order[j]);
    int m = 0;  // dims written so far
    for (int i = 0; i < n; ++i) {
      int d = order[i];
      bool merge = m > 0;
      for (int k = 0; k < N && merge; ++k) merge = strides[k][m - 1] == st[k][d] * s[d];
      if (merge) {  // the previous (outer) dim folds into this one
        shape[m - 1] *= s[d];
        for (int k = 0; k < N; ++k) strides[k][m - 1] = st[k][d];
      } else {
        shape[m] = s[d];
        for (int k = 0; k < N; ++k) strides[k][m] = st[k][d];
        ++m;
      }
    }
    if (m == 0) return;  // every dim had size 1: keep the single size-1 dim
    ndim = m;
  }

  int64_t inner_size() const { return shape[ndim - 1]; }
  int64_t inner_stride(int k) const { return strides[k][ndim - 1]; }
  /// One dim with every stride 1: the operands are plain arrays of numel elements.
  bool contiguous() const {
    if (ndim != 1) return false;
    for (int k = 0; k < N; ++k)
      if (strides[k][0] != 1 && numel > 1) return false;
    return true;
  }

  /// Element offsets of every operand at row-major position pos.
  std::array<int64_t, N> offsets_at(int64_t pos) const {
    std::array<int64_t, N> off{};
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t i = pos % shape[d];
      pos /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
    return off;
  }

  /// Calls f(n, off) for each run of the innermost dim covering positions [begin, end) of the
  /// row-major order; off[k] is operand k's element offset of the run's first element.
  template <class F>
  void for_each_run(int64_t begin, int64_t end, F&& f) const {
    if (begin >= end) return;
    int64_t idx[kMaxDims];
    int64_t rest = begin;
    for (int d = ndim - 1; d >= 0; --d) {
      idx[d] = rest % shape[d];
      rest /= shape[d];
    }
    std::array<int64_t, N> off = offsets_at(begin);
    const int last = ndim - 1;
    for (int64_t pos = begin; pos < end;) {
      int64_t n = std::min(shape[last] - idx[last], end - pos);
      f(n, static_cast<const int64_t*>(off.data()));
      pos += n;
      idx[last] += n;
      for (int k = 0; k < N; ++k) off[k] += n * strides[k][last];
      for (int d = last; d > 0 && idx[d] == shape[d]; --d) {  // carry into outer dims
        idx[d] = 0;
        ++idx[d - 1];
        for (int k = 0; k < N; ++k) off[k] += strides[k][d - 1] - shape[d] * strides[k][d];
      }
    }
  }
};

/// Strides that read t as if expanded to `shape` (NumPy broadcasting: missing leading dims and
/// size-1 dims get stride 0). The caller has checked that t broadcasts to shape.
inline Strides broadcast_strides(const Shape& t_shape, const Strides& t_strides,
                                 const Shape& shape) {
  Strides st = Dims::filled(shape.size(), 0);
  int lead = shape.size() - t_shape.size();
  for (int i = 0; i < t_shape.size(); ++i)
    if (t_shape[i] == shape[i + lead]) st[i + lead] = t_strides[i];
  return st;
}

/// True when no two elements of a view can share memory (checked conservatively: sorted by
/// stride, each dim's stride must exceed the span of all smaller ones).
inline bool is_non_overlapping(const Shape& shape, const Strides& strides) {
  int64_t st[kMaxDims], sz[kMaxDims];
  int n = 0;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return true;
    if (shape[d] == 1) continue;
    int j = n++;
    for (; j > 0 && st[j - 1] > strides[d]; --j) {
      st[j] = st[j - 1];
      sz[j] = sz[j - 1];
    }
    st[j] = strides[d];
    sz[j] = shape[d];
  }
  int64_t span = 0;  // offset of the last element of the dims seen so far
  for (int j = 0; j < n; ++j) {
    if (st[j] <= span) return false;
    span += (sz[j] - 1) * st[j];
  }
  return true;
}

/// Runs f(begin, end) over [0, n) split into one contiguous range per thread, using at most
/// n / grain threads (so each thread gets at least `grain` items); serial below that, when one
/// thread is configured, or when already inside a parallel region. f must not throw.
template <class F>
void parallel_for_range(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (n < 2 * grain) {  // one thread either way: skip asking OpenMP (small ops are common)
    f(int64_t{0}, n);
    return;
  }
  int64_t want = std::min<int64_t>(omp_get_max_threads(), n / std::max<int64_t>(grain, 1));
  if (want <= 1 || omp_in_parallel()) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast <int>(want))
  {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) f(b, e);
  }
}

/// static_cast with the undefined cases defined (see value_cast in dtype.h).
template <class D, class S>
inline D convert(S v) {
  return value_cast<D>(v);
}

}  // namespace encore::raw::detail
