// Views: tensors that share storage with their base and differ in shape, strides or offset.
// These are the raw (unrecorded) versions; autograd/ wraps each in a differentiable op.
#pragma once

#include <vector>

#include "core.h"

namespace encore::raw {

/// A view with the given shape (one dim may be -1); throws if the strides do not allow it.
Tensor view(const Tensor& x, const Shape& shape);
/// A view when the strides allow it, else a contiguous copy.
Tensor reshape(const Tensor& x, const Shape& shape);
/// Swaps dims d0 and d1.
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
/// Reorders dims: result dim i is input dim perm[i].
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm);
/// Elements start, start+step, ... < end along dim (Python slice semantics, step > 0,
/// negative and out-of-range bounds clamped).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
/// Index i along dim, removing dim.
Tensor select(const Tensor& x, int64_t dim, int64_t index);
/// length elements from start along dim.
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
/// Broadcasts size-1 dims (stride 0) and prepends new dims; -1 keeps a size.
Tensor expand(const Tensor& x, const Shape& shape);
/// Removes dim (which must have size 1).
Tensor squeeze(const Tensor& x, int64_t dim);
/// Removes every size-1 dim.
Tensor squeeze(const Tensor& x);
/// Inserts a size-1 dim at position dim (0..ndim).
Tensor unsqueeze(const Tensor& x, int64_t dim);
/// Merges dims start..end (inclusive) into one.
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);
/// A view with explicit shape, strides (elements) and offset, checked against the storage.
Tensor as_strided(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset);

/// Shape for view/reshape with one -1 resolved; throws when numel differs.
Shape infer_shape(const char* op, const Shape& from, const Shape& to);

}  // namespace encore::raw
