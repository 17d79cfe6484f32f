// Views: new shape/strides/offset over the same storage, never a copy (reshape excepted).
#include "tensor/view.h"

#include <algorithm>

namespace encore::raw {
namespace {
Tensor make_view(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset) {
  return Tensor(x.storage(), shape, strides, offset, x.dtype());
}

// Strides for viewing x as `shape` without a copy, or false when impossible. Walks the input
// dims from the back in chunks that are contiguous with each other; each chunk must be covered
// exactly by a run of output dims, which then take strides inside the chunk.
bool view_strides(const Shape& in, const Strides& ist, const Shape& out, Strides& ost) {
  if (numel(in) == 0 || in.size() == 0) {
    ost = contiguous_strides(out);
    return true;
  }
  ost = Dims::filled(out.size(), 0);
  int vd = out.size() - 1;
  int64_t base = ist[in.size() - 1], chunk = 1, vnumel = 1;
  for (int d = in.size() - 1; d >= 0; --d) {
    chunk *= in[d];
    bool boundary = d == 0 || (in[d - 1] != 1 && ist[d - 1] != chunk * base);
    if (!boundary) continue;
    while (vd >= 0 && (vnumel < chunk || out[vd] == 1)) {
      ost[vd] = vnumel * base;
      vnumel *= out[vd];
      --vd;
    }
    if (vnumel != chunk) return false;
    if (d > 0) {
      base = ist[d - 1];
      chunk = 1;
      vnumel = 1;
    }
  }
  return vd == -1;
}
}  // namespace

Shape infer_shape(const char* op, const Shape& from, const Shape& to) {
  Shape out = to;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      ENCORE_CHECK(infer < 0, op, "only one dim of ", to, " may be -1");
      infer = i;
    } else {
      ENCORE_CHECK(out[i] >= 0, op, "invalid size in shape ", to);
      // The product of the sizes must not overflow (UB): such a shape has more elements than
      // any tensor can hold.
      ENCORE_CHECK(!__builtin_mul_overflow(known, out[i], &known), op, "cannot reshape ", from,
                   " to ", to, ": the sizes multiply past 2^63");
    }
  }
  int64_t n = numel(from);
  if (infer >= 0) {
    ENCORE_CHECK(known > 0 && n % known == 0, op, "cannot reshape ", from, " to ", to);
    out[infer] = n / known;
  }
  ENCORE_CHECK(numel(out) == n, op, "cannot reshape ", from, " (", n, " elements) to ", to, " (",
               numel(out), " elements)");
  return out;
}

Tensor view(const Tensor& x, const Shape& shape) {
  check_defined("view", x);
  Shape out = infer_shape("view", x.shape(), shape);
  if (x.is_contiguous()) return make_view(x, out, contiguous_strides(out), x.offset());
  Strides st;
  ENCORE_CHECK(view_strides(x.shape(), x.strides(), out, st), "view", "a tensor of shape ",
               x.shape(), " with strides ", x.strides(), " cannot be viewed as ", out,
               " without a copy; use reshape");
  return make_view(x, out, st, x.offset());
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined("reshape", x);
  Shape out = infer_shape("reshape", x.shape(), shape);
  if (x.is_contiguous()) return make_view(x, out, contiguous_strides(out), x.offset());
  Strides st;
  if (view_strides(x.shape(), x.strides(), out, st)) return make_view(x, out, st, x.offset());
  Tensor c = x.clone();
  return make_view(c, out, contiguous_strides(out), 0);
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  check_defined("transpose", x);
  int a = normalize_dim("transpose", d0, x.dim()), b = normalize_dim("transpose", d1, x.dim());
  Shape sh = x.shape();
  Strides st = x.strides();
  std::swap(sh[a], sh[b]);
  std::swap(st[a], st[b]);
  return make_view(x, sh, st, x.offset());
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  check_defined("permute", x);
  ENCORE_CHECK(static_cast<int>(perm.size()) == x.dim(), "permute", "permutation of length ",
               perm.size(), " for a tensor of shape ", x.shape());
  Shape sh = x.shape(), st = x.strides();
  std::vector<bool> seen(x.dim(), false);
  for (size_t i = 0; i < perm.size(); ++i) {
    int d = normalize_dim("permute", perm[i], x.dim());
    ENCORE_CHECK(!seen[d], "permute", "dim ", perm[i], " repeated in permutation of shape ",
                 x.shape());
    seen[d] = true;
    sh[i] = x.shape()[d];
    st[i] = x.strides()[d];
  }
  return make_view(x, sh, st, x.offset());
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined("slice", x);
  int d = normalize_dim("slice", dim, x.dim());
  ENCORE_CHECK(step > 0, "slice", "step must be positive, got ", step);
  int64_t n = x.shape()[d];
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  int64_t s = clampi(start), e = clampi(end);
  // ceil((e - s) / step) written so that no step (up to INT64_MAX) overflows.
  int64_t len = e > s ? (e - s - 1) / step + 1 : 0;
  Shape sh = x.shape();
  Strides st = x.strides();
  sh[d] = len;
  int64_t off = x.offset() + (len > 0 ? s * st[d] : 0);
  // With one element or none the stride is never used: keep it rather than multiply by a step
  // that may be huge. With more, step < n and |stride| * n fits in the storage.
  if (len > 1) st[d] *= step;
  return make_view(x, sh, st, off);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  check_defined("select", x);
  int d = normalize_dim("select", dim, x.dim());
  int64_t n = x.shape()[d];
  ENCORE_CHECK(index >= -n && index < n, "select", "index ", index, " is out of range for dim ",
               dim, " of shape ", x.shape());
  if (index < 0) index += n;
  Shape sh = x.shape();
  Strides st = x.strides();
  int64_t off = x.offset() + index * st[d];
  sh.erase(d);
  st.erase(d);
  return make_view(x, sh, st, off);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_defined("narrow", x);
  int d = normalize_dim("narrow", dim, x.dim());
  int64_t n = x.shape()[d];
  if (start < 0) start += n;
  ENCORE_CHECK(start >= 0 && length >= 0 && length <= n - start, "narrow", "start ", start,
               " and length ", length, " do not fit dim ", dim, " of shape ", x.shape());
  Shape sh = x.shape();
  sh[d] = length;
  return make_view(x, sh, x.strides(), x.offset() + (length > 0 ? start * x.strides()[d] : 0));
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  ENCORE_CHECK(shape.size() >= x.dim(), "expand", "cannot expand shape ", x.shape(), " to ", shape);
  int lead = shape.size() - x.dim();
  Shape sh = shape;
  Strides st = Dims::filled(shape.size(), 0);
  for (int i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      ENCORE_CHECK(shape[i] >= 0, "expand", "cannot expand shape ", x.shape(), " to ", shape);
      continue;
    }
    int64_t have = x.shape()[i - lead];
    int64_t want = shape[i] == -1 ? have : shape[i];
    ENCORE_CHECK(want >= 0, "expand", "cannot expand shape ", x.shape(), " to ", shape, " (dim ", i,
                 ": size ", want, " is negative)");
    ENCORE_CHECK(want == have || have == 1, "expand", "cannot expand shape ", x.shape(), " to ",
                 shape, " (dim ", i, ": ", have, " vs ", want, ")");
    sh[i] = want;
    st[i] = (want == have) ? x.strides()[i - lead] : 0;
  }
  return make_view(x, sh, st, x.offset());
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined("squeeze", x);
  int d = normalize_dim("squeeze", dim, x.dim());
  ENCORE_CHECK(x.shape()[d] == 1, "squeeze", "dim ", dim, " of shape ", x.shape(), " has size ",
               x.shape()[d], ", not 1");
  Shape sh = x.shape();
  Strides st = x.strides();
  sh.erase(d);
  st.erase(d);
  return make_view(x, sh, st, x.offset());
}

Tensor squeeze(const Tensor& x) {
  check_defined("squeeze", x);
  Shape sh;
  Strides st;
  for (int i = 0; i < x.dim(); ++i)
    if (x.shape()[i] != 1) {
      sh.push_back(x.shape()[i]);
      st.push_back(x.strides()[i]);
    }
  return make_view(x, sh, st, x.offset());
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined("unsqueeze", x);
  int d = normalize_dim("unsqueeze", dim, x.dim() + 1);
  Shape sh = x.shape();
  Strides st = x.strides();
  int64_t s = d < x.dim() ? st[d] * sh[d] : 1;
  sh.insert(d, 1);
  st.insert(d, s);
  return make_view(x, sh, st, x.offset());
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  check_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  int s = normalize_dim("flatten", start, x.dim()), e = normalize_dim("flatten", end, x.dim());
  ENCORE_CHECK(s <= e, "flatten", "start dim ", start, " is after end dim ", end, " for shape ",
               x.shape());
  Shape sh;
  for (int i = 0; i < s; ++i) sh.push_back(x.shape()[i]);
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= x.shape()[i];
  sh.push_back(m);
  for (int i = e + 1; i < x.dim(); ++i) sh.push_back(x.shape()[i]);
  return reshape(x, sh);
}

Tensor as_strided(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset) {
  check_defined("as_strided", x);
  return make_view(x, shape, strides, offset);
}

}  // namespace encore::raw
