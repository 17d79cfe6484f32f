// Joining, splitting and indexing: concat, stack, split, pad, index_select, index_add, gather,
// scatter_add. Every index is an i64 tensor and is range-checked before it is used; an
// out-of-range index (negative included) throws naming the op, the index and the shape.
#include <cstring>

#include "tensor/creation.h"
#include "tensor/kernels.h"
#include "tensor/view.h"

namespace encore::raw {
namespace {

/// Product of shape[begin, end).
int64_t span(const Shape& s, int begin, int end) {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= s[i];
  return n;
}

/// A contiguous i64 copy of an index tensor, checked to be i64 and at most max_dim-D.
Tensor index_tensor(const char* op, const Tensor& index, const Shape& x_shape, int max_dim) {
  ENCORE_CHECK(index.dtype() == DType::i64, op, "index must be i64, got ", index.dtype(),
               " (index shape ", index.shape(), ", input shape ", x_shape, ")");
  ENCORE_CHECK(index.dim() <= max_dim, op, "index of shape ", index.shape(), " must be ", max_dim,
               "-D (input shape ", x_shape, ")");
  return index.contiguous();
}

/// Throws unless 0 <= i < size.
void check_index(const char* op, int64_t i, int64_t size, int dim, const Shape& shape) {
  ENCORE_CHECK(i >= 0 && i < size, op, "index ", i, " is out of range for dim ", dim, " of shape ",
               shape);
}

/// Throws unless every element of a contiguous i64 index is in [0, size).
void check_indices(const char* op, const Tensor& idx, int64_t size, int dim, const Shape& shape) {
  const int64_t* ip = idx.data<int64_t>();
  for (int64_t i = 0, n = idx.numel(); i < n; ++i) check_index(op, ip[i], size, dim, shape);
}

/// Shared checks of gather and scatter_add: same ndim, index no larger than `limit` outside
/// dim (and than `all_limit`, if given, everywhere).
void check_gather_shapes(const char* op, const Shape& x, const Shape& index, int dim,
                         const Shape* all_limit) {
  ENCORE_CHECK(x.size() >= 1 && index.size() == x.size(), op, "index of shape ", index,
               " must have the same number of dims as the input of shape ", x);
  for (int d = 0; d < x.size(); ++d) {
    ENCORE_CHECK(d == dim || index[d] <= x[d], op, "index of shape ", index,
                 " is larger than the input of shape ", x, " in dim ", d);
    ENCORE_CHECK(!all_limit || index[d] <= (*all_limit)[d], op, "index of shape ", index,
                 " is larger than src of shape ", *all_limit, " in dim ", d);
  }
}

/// Calls f(k, pos) for every element k (row-major) of shape, pos being its multi-index.
template <class F>
void for_each_index(const Shape& shape, F&& f) {
  int64_t n = numel(shape);
  int64_t pos[kMaxDims] = {};
  for (int64_t k = 0; k < n; ++k) {
    f(k, pos);
    for (int d = shape.size() - 1; d >= 0; --d) {
      if (++pos[d] < shape[d]) break;
      pos[d] = 0;
    }
  }
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  ENCORE_CHECK(!xs.empty(), "concat", "needs at least one tensor");
  for (const Tensor& x : xs) check_defined("concat", x, "a tensor to join");
  const Tensor& x0 = xs[0];
  ENCORE_CHECK(x0.dim() >= 1, "concat", "cannot join 0-dimensional tensors (shape ", x0.shape(),
               ")");
  int d = normalize_dim("concat", dim, x0.dim());
  Shape out_shape = x0.shape();
  out_shape[d] = 0;
  for (size_t t = 0; t < xs.size(); ++t) {
    const Tensor& x = xs[t];
    ENCORE_CHECK(x.dtype() == x0.dtype(), "concat", "tensor ", t, " of shape ", x.shape(),
                 " has dtype ", x.dtype(), ", tensor 0 of shape ", x0.shape(), " has ", x0.dtype());
    bool match = x.dim() == x0.dim();
    for (int i = 0; match && i < x0.dim(); ++i) match = i == d || x.shape()[i] == x0.shape()[i];
    ENCORE_CHECK(match, "concat", "tensor ", t, " of shape ", x.shape(),
                 " does not match tensor 0 of shape ", x0.shape(), " outside dim ", d);
    ENCORE_CHECK(!__builtin_add_overflow(out_shape[d], x.shape()[d], &out_shape[d]), "concat",
                 "joined size along dim ", d, " overflows (tensor ", t, " of shape ", x.shape(),
                 ")");
  }
  Tensor out(out_shape, x0.dtype());
  if (out.numel() == 0) return out;
  // out viewed as (outer, out_shape[d] * inner); tensor t fills columns [at, at + its chunk).
  int64_t outer = span(out_shape, 0, d), inner = span(out_shape, d + 1, out_shape.size());
  int64_t row = out_shape[d] * inner, at = 0;
  size_t esize = dtype_size(out.dtype());
  char* op = static_cast<char*>(out.raw_data());
  for (const Tensor& x : xs) {
    int64_t chunk = x.shape()[d] * inner;
    if (chunk == 0) continue;
    if (x.is_contiguous()) {
      const char* xp = static_cast<const char*>(x.raw_data());
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(op + (o * row + at) * esize, xp + o * chunk * esize, chunk * esize);
    } else {
      Tensor part = narrow(out, d, at / inner, x.shape()[d]);
      copy_(part, x);
    }
    at += chunk;
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  ENCORE_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  for (const Tensor& x : xs) check_defined("stack", x, "a tensor to join");
  int d = normalize_dim("stack", dim, xs[0].dim() + 1);
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (size_t t = 0; t < xs.size(); ++t) {
    ENCORE_CHECK(xs[t].shape() == xs[0].shape(), "stack", "tensor ", t, " of shape ", xs[t].shape(),
                 " differs from tensor 0 of shape ", xs[0].shape());
    ENCORE_CHECK(xs[t].dtype() == xs[0].dtype(), "stack", "tensor ", t, " of shape ", xs[t].shape(),
                 " has dtype ", xs[t].dtype(), ", tensor 0 has ", xs[0].dtype());
    parts.push_back(unsqueeze(xs[t], d));
  }
  return concat(parts, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  ENCORE_CHECK(x.dim() >= 1, "split", "cannot split a 0-dimensional tensor");
  int d = normalize_dim("split", dim, x.dim());
  int64_t sum = 0;
  for (int64_t s : sizes) {
    ENCORE_CHECK(s >= 0 && s <= x.shape()[d] - sum, "split", "sizes do not fit dim ", d,
                 " of shape ", x.shape(), " (size ", s, " after ", sum, ")");
    sum += s;
  }
  ENCORE_CHECK(sum == x.shape()[d], "split", "sizes sum to ", sum, ", not to dim ", d, " of shape ",
               x.shape());
  std::vector<Tensor> out;
  out.reserve(sizes.size());
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, d, at, s));
    at += s;
  }
  return out;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  int nd = x.dim();
  ENCORE_CHECK(pads.size() % 2 == 0 && static_cast<int>(pads.size()) <= 2 * nd, "pad", pads.size(),
               " pad values for shape ", x.shape(),
               " (needs (before, after) pairs for at most every dim)");
  // Pair p pads dim nd - 1 - p: before = pads[2p], after = pads[2p + 1].
  Shape out_shape = x.shape();
  Tensor src = x;
  int64_t dst_start[kMaxDims] = {};
  for (size_t p = 0; p < pads.size() / 2; ++p) {
    int dd = nd - 1 - static_cast<int>(p);
    int64_t before = pads[2 * p], after = pads[2 * p + 1], n = x.shape()[dd];
    int64_t size = 0;
    bool ok = before >= -n && after >= -n && !__builtin_add_overflow(n, before, &size) &&
              !__builtin_add_overflow(size, after, &size) && size >= 0;
    ENCORE_CHECK(ok, "pad", "pads (", before, ", ", after, ") on dim ", dd, " of shape ", x.shape(),
                 " give a negative or too large size");
    out_shape[dd] = size;
    // Negative pads crop the source; positive ones offset it inside the result.
    int64_t crop_lo = std::max<int64_t>(0, -before), crop_hi = std::max<int64_t>(0, -after);
    src = narrow(src, dd, crop_lo, n - crop_lo - crop_hi);
    dst_start[dd] = std::max<int64_t>(0, before);
  }
  int64_t total = 1;
  for (int64_t v : out_shape)
    ENCORE_CHECK(!__builtin_mul_overflow(total, v, &total) && total <= (int64_t(1) << 60), "pad",
                 "pads of shape ", x.shape(), " give a result ", out_shape, " too large");
  Tensor out = full(out_shape, value, x.dtype());
  if (src.numel() == 0) return out;
  Tensor dst = out;
  for (int dd = 0; dd < nd; ++dd) dst = narrow(dst, dd, dst_start[dd], src.shape()[dd]);
  copy_(dst, src);
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("index_select", x);
  check_defined("index_select", index, "the index");
  ENCORE_CHECK(x.dim() >= 1, "index_select", "input must have at least one dim, got shape ",
               x.shape());
  int d = normalize_dim("index_select", dim, x.dim());
  Tensor idx = index_tensor("index_select", index, x.shape(), 1);
  check_indices("index_select", idx, x.shape()[d], d, x.shape());
  Shape out_shape = x.shape();
  out_shape[d] = idx.numel();
  Tensor out(out_shape, x.dtype());
  if (out.numel() == 0) return out;
  // x (outer, size_d, inner) -> out (outer, n_index, inner): out[o, j] = x[o, index[j]].
  Tensor xc = x.contiguous();
  int64_t outer = span(x.shape(), 0, d), inner = span(x.shape(), d + 1, x.dim());
  int64_t size_d = x.shape()[d], n = idx.numel();
  size_t rowbytes = static_cast<size_t>(inner) * dtype_size(x.dtype());
  const int64_t* ip = idx.data<int64_t>();
  const char* xp = static_cast<const char*>(xc.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(op + (o * n + j) * rowbytes, xp + (o * size_d + ip[j]) * rowbytes, rowbytes);
  return out;
}

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  ENCORE_CHECK(base.dim() >= 1, "index_add", "base must have at least one dim, got shape ",
               base.shape());
  int d = normalize_dim("index_add", dim, base.dim());
  Tensor idx = index_tensor("index_add", index, base.shape(), 1);
  Shape want = base.shape();
  want[d] = idx.numel();
  ENCORE_CHECK(src.shape() == want, "index_add", "src of shape ", src.shape(),
               " does not match base ", base.shape(), " with ", idx.numel(), " indices along dim ",
               d, " (expected ", want, ")");
  ENCORE_CHECK(src.dtype() == base.dtype(), "index_add", "src of shape ", src.shape(),
               " has dtype ", src.dtype(), ", base of shape ", base.shape(), " has ", base.dtype());
  check_indices("index_add", idx, base.shape()[d], d, base.shape());
  Tensor out = base.clone();
  if (src.numel() == 0) return out;
  // out (outer, size_d, inner)[o, index[j]] += src (outer, n, inner)[o, j]
  Tensor sc = src.contiguous();
  int64_t outer = span(want, 0, d), inner = span(want, d + 1, want.size());
  int64_t size_d = base.shape()[d], n = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  dispatch(base.dtype(), [&]<class T>() {
    const T* sp = sc.data<T>();
    T* op = out.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n; ++j) {
        T* dst = op + (o * size_d + ip[j]) * inner;
        const T* s = sp + (o * n + j) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] += s[i];
      }
  });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("gather", x);
  check_defined("gather", index, "the index");
  ENCORE_CHECK(x.dim() >= 1, "gather", "input must have at least one dim, got shape ", x.shape());
  int d = normalize_dim("gather", dim, x.dim());
  Tensor idx = index_tensor("gather", index, x.shape(), x.dim());
  check_gather_shapes("gather", x.shape(), idx.shape(), d, nullptr);
  check_indices("gather", idx, x.shape()[d], d, x.shape());
  Tensor out(idx.shape(), x.dtype());
  // out[pos] = x[pos with pos[d] = index[pos]], reading x through its strides.
  const int64_t* ip = idx.data<int64_t>();
  const Strides& xs = x.strides();
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_index(idx.shape(), [&](int64_t k, const int64_t* pos) {
      int64_t at = 0;
      for (int i = 0; i < x.dim(); ++i) at += (i == d ? ip[k] : pos[i]) * xs[i];
      op[k] = xp[at];
    });
  });
  return out;
}

Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  ENCORE_CHECK(base.dim() >= 1, "scatter_add", "base must have at least one dim, got shape ",
               base.shape());
  int d = normalize_dim("scatter_add", dim, base.dim());
  Tensor idx = index_tensor("scatter_add", index, base.shape(), base.dim());
  ENCORE_CHECK(src.dim() == base.dim(), "scatter_add", "src of shape ", src.shape(),
               " and base of shape ", base.shape(), " differ in number of dims");
  check_gather_shapes("scatter_add", base.shape(), idx.shape(), d, &src.shape());
  ENCORE_CHECK(src.dtype() == base.dtype(), "scatter_add", "src of shape ", src.shape(),
               " has dtype ", src.dtype(), ", base of shape ", base.shape(), " has ", base.dtype());
  check_indices("scatter_add", idx, base.shape()[d], d, base.shape());
  Tensor out = base.clone();
  // out[pos with pos[d] = index[pos]] += src[pos] for every pos in index's shape.
  const int64_t* ip = idx.data<int64_t>();
  const Strides& ss = src.strides();
  const Strides& os = out.strides();
  dispatch(base.dtype(), [&]<class T>() {
    const T* sp = src.data<T>();
    T* op = out.data<T>();
    for_each_index(idx.shape(), [&](int64_t k, const int64_t* pos) {
      int64_t at_out = 0, at_src = 0;
      for (int i = 0; i < base.dim(); ++i) {
        at_out += (i == d ? ip[k] : pos[i]) * os[i];
        at_src += pos[i] * ss[i];
      }
      op[at_out] += sp[at_src];
    });
  });
  return out;
}

}  // namespace encore::raw
