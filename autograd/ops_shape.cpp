// Shape ops: views (reshape, transpose, permute, slice, select, narrow, expand, squeeze,
// unsqueeze, flatten) forward through tensor/view.h without copying; joins and splits
// (concat, stack, split, pad); and indexing (index_select, gather). Every vjp is written with
// these same ops, so second order works:
//   - a view's vjp is the inverse view (reshape back, transpose back, inverse permutation);
//   - taking a part (slice, select, narrow, split) is undone by embedding the gradient into
//     zeros with pad, the adjoint of cropping;
//   - expand's vjp returns g unchanged: the tape sums it down to the input's shape;
//   - index_select / gather are undone by index_add / scatter_add, private differentiable ops
//     here whose own vjps are index_select / gather again.
#include <algorithm>
#include <numeric>

#include "autograd/ops.h"
#include "tensor/kernels.h"
#include "tensor/view.h"

namespace encore {
namespace {

/// pads for pad() that add `before` and `after` elements (negative crops) along dim d only.
std::vector<int64_t> dim_pads(int ndim, int d, int64_t before, int64_t after) {
  std::vector<int64_t> pads(2 * (ndim - d), 0);
  pads[2 * (ndim - 1 - d)] = before;
  pads[2 * (ndim - 1 - d) + 1] = after;
  return pads;
}

/// Embeds g, the gradient of the part x[start : start + step * len : step] along dim d, into
/// zeros of size n along d (the adjoint of slicing), with differentiable ops only.
Tensor embed_slice(const Tensor& g, int d, int64_t n, int64_t start, int64_t step) {
  int64_t len = g.size(d);
  if (len == 0) {
    Shape s = g.shape();
    s[d] = n;
    return zeros(s, g.dtype());
  }
  Tensor spread = g;
  // One row needs no spreading (and a huge step must not be padded out); with more, step < n.
  if (step > 1 && len > 1) {
    // g (..., len, ...) -> (..., len, 1, ...) -> pad to (..., len, step, ...) -> merge:
    // (..., len * step, ...) with g's rows at multiples of step and zeros between.
    Tensor u = unsqueeze(g, d + 1);
    u = pad(u, dim_pads(u.dim(), d + 1, 0, step - 1));
    spread = flatten(u, d, d + 1);
  }
  // Place the first row at `start`; the tail (may be negative: crops the last gaps) fills to n.
  return pad(spread, dim_pads(spread.dim(), d, start, n - start - spread.size(d)));
}

/// base + src added into the rows of base along dim named by index (the adjoint of
/// index_select), differentiable w.r.t. base and src.
Tensor index_add_into(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor y = raw::index_add(base, dim, index, src);
  record("index_add", {base, src}, {y},
         [dim, index](const Tensors& douts, NeedsGrad needs) {
           const Tensor& g = douts[0];  // g: base's shape
           return Tensors{g, needs[1] ? index_select(g, dim, index) : Tensor()};
         },
         {index});
  return y;
}

/// base + src scattered along dim by index (the adjoint of gather), differentiable w.r.t.
/// base and src.
Tensor scatter_add_into(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor y = raw::scatter_add(base, dim, index, src);
  record("scatter_add", {base, src}, {y},
         [dim, index](const Tensors& douts, NeedsGrad needs) {
           const Tensor& g = douts[0];  // g: base's shape
           return Tensors{g, needs[1] ? gather(g, dim, index) : Tensor()};
         },
         {index});
  return y;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Views

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor y = raw::reshape(x, shape);
  record("reshape", {x}, {y},
         [s = x.shape()](const Tensors& g) { return Tensors{reshape(g[0], s)}; });
  return y;
}

Tensor view(const Tensor& x, const Shape& shape) {
  Tensor y = raw::view(x, shape);
  // g may not be viewable as x's shape (e.g. a transposed gradient), so reshape, not view.
  record("view", {x}, {y}, [s = x.shape()](const Tensors& g) { return Tensors{reshape(g[0], s)}; });
  return y;
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  Tensor y = raw::flatten(x, start, end);
  record("flatten", {x}, {y},
         [s = x.shape()](const Tensors& g) { return Tensors{reshape(g[0], s)}; });
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  Tensor y = raw::transpose(x, d0, d1);
  record("transpose", {x}, {y},
         [d0, d1](const Tensors& g) { return Tensors{transpose(g[0], d0, d1)}; });
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  Tensor y = raw::permute(x, perm);  // validates perm
  if (!is_recording({x})) return y;
  // y dim i is x dim perm[i], so x dim perm[i] is y dim i.
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inverse[normalize_dim("permute", perm[i], x.dim())] = static_cast<int64_t>(i);
  record("permute", {x}, {y},
         [inverse](const Tensors& g) { return Tensors{permute(g[0], inverse)}; });
  return y;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor y = raw::slice(x, dim, start, end, step);  // validates dim and step
  if (!is_recording({x})) return y;
  int d = normalize_dim("slice", dim, x.dim());
  int64_t n = x.size(d);
  int64_t s = std::clamp<int64_t>(start < 0 ? start + n : start, 0, n);  // as raw::slice
  record("slice", {x}, {y}, [d, n, s, step](const Tensors& g) {
    // g: x's shape with size ceil((e - s) / step) along d
    return Tensors{embed_slice(g[0], d, n, s, step)};
  });
  return y;
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  Tensor y = raw::select(x, dim, index);  // validates dim and index
  if (!is_recording({x})) return y;
  int d = normalize_dim("select", dim, x.dim());
  int64_t n = x.size(d), i = index < 0 ? index + n : index;
  record("select", {x}, {y}, [d, n, i](const Tensors& g) {
    // g: x's shape without dim d -> (..., 1, ...) -> zeros around row i
    return Tensors{embed_slice(unsqueeze(g[0], d), d, n, i, 1)};
  });
  return y;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  Tensor y = raw::narrow(x, dim, start, length);  // validates the range
  if (!is_recording({x})) return y;
  int d = normalize_dim("narrow", dim, x.dim());
  int64_t n = x.size(d), s = start < 0 ? start + n : start;
  record("narrow", {x}, {y}, [d, n, s](const Tensors& g) {
    return Tensors{embed_slice(g[0], d, n, s, 1)};  // g: x's shape with `length` along d
  });
  return y;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor y = raw::expand(x, shape);
  // NOTE: the gradient of a broadcast is a sum; the tape sums g down to x's shape.
  record("expand", {x}, {y}, [](const Tensors& g) { return Tensors{g[0]}; });
  return y;
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  Tensor y = raw::squeeze(x, dim);
  int d = normalize_dim("squeeze", dim, x.dim());
  record("squeeze", {x}, {y}, [d](const Tensors& g) { return Tensors{unsqueeze(g[0], d)}; });
  return y;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  Tensor y = raw::unsqueeze(x, dim);
  int d = normalize_dim("unsqueeze", dim, x.dim() + 1);
  record("unsqueeze", {x}, {y}, [d](const Tensors& g) { return Tensors{squeeze(g[0], d)}; });
  return y;
}

// ---------------------------------------------------------------------------------------------
// Joining and splitting

Tensor concat(const Tensors& xs, int64_t dim) {
  ENCORE_CHECK(!xs.empty(), "concat", "needs at least one tensor");
  Tensor y = raw::concat(xs, dim);  // validates shapes and dtypes
  if (!detail::any_tape_recording()) return y;
  int d = normalize_dim("concat", dim, xs[0].dim());
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) sizes.push_back(x.size(d));
  record("concat", xs, Tensors{y}, [d, sizes](const Tensors& douts, NeedsGrad needs) {
    // g: (..., sum(sizes), ...) -> one narrow per input
    Tensors dxs(sizes.size());
    int64_t off = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs[i]) dxs[i] = narrow(douts[0], d, off, sizes[i]);
      off += sizes[i];
    }
    return dxs;
  });
  return y;
}

Tensor stack(const Tensors& xs, int64_t dim) {
  ENCORE_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  Tensor y = raw::stack(xs, dim);  // validates shapes and dtypes
  if (!detail::any_tape_recording()) return y;
  int d = normalize_dim("stack", dim, xs[0].dim() + 1);
  record("stack", xs, Tensors{y}, [d, n = xs.size()](const Tensors& douts, NeedsGrad needs) {
    // g: (..., n, ...) with the new dim at d -> one select per input
    Tensors dxs(n);
    for (size_t i = 0; i < n; ++i)
      if (needs[i]) dxs[i] = select(douts[0], d, static_cast<int64_t>(i));
    return dxs;
  });
  return y;
}

Tensors split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  Tensors ys = raw::split(x, sizes, dim);  // validates that sizes add up
  if (!is_recording({x})) return ys;
  int d = normalize_dim("split", dim, x.dim());
  // One node with several outputs; the tape passes zeros for pieces that got no gradient.
  record("split", Tensors{x}, ys, [d](const Tensors& douts) { return Tensors{concat(douts, d)}; });
  return ys;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  Tensor y = raw::pad(x, pads, value);  // validates pads
  if (!is_recording({x})) return y;
  // Padding and cropping are adjoint: the vjp crops what was added and zero-fills what was
  // cropped, dim by dim.
  std::vector<int64_t> inverse(pads.size());
  std::transform(pads.begin(), pads.end(), inverse.begin(), [](int64_t p) { return -p; });
  record("pad", {x}, {y}, [inverse](const Tensors& g) { return Tensors{pad(g[0], inverse)}; });
  return y;
}

// ---------------------------------------------------------------------------------------------
// Indexing

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor y = raw::index_select(x, dim, index);  // validates dim, index dtype and range
  if (!is_recording({x})) return y;
  record("index_select", {x}, {y},
         [dim, index, s = x.shape()](const Tensors& g) {
           // g: x's shape with index.numel() along dim -> rows added back where they came from
           return Tensors{index_add_into(zeros(s, g[0].dtype()), dim, index, g[0])};
         },
         {index});
  return y;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor y = raw::gather(x, dim, index);  // validates shapes, dtype and range
  if (!is_recording({x})) return y;
  record("gather", {x}, {y},
         [dim, index, s = x.shape()](const Tensors& g) {
           // g: index's shape -> scattered back into x's shape
           return Tensors{scatter_add_into(zeros(s, g[0].dtype()), dim, index, g[0])};
         },
         {index});
  return y;
}

}  // namespace encore
