// copy_ and fill_: strided writes into an existing tensor (the in-place primitives behind
// Tensor::copy_, clone, contiguous and to).
#include <cstring>

#include "tensor/kernels.h"
#include "tensor/kernels/iter.h"

namespace encore::raw {

using detail::NdIter;

void copy_(Tensor& dst, const Tensor& src) {
  if (src.shape() != dst.shape()) {
    Shape b = broadcast_shapes("copy_", dst.shape(), src.shape());
    ENCORE_CHECK(b == dst.shape(), "copy_", "cannot broadcast source of shape ", src.shape(),
                 " to destination of shape ", dst.shape());
  }
  dst.storage()->bump_version();
  if (dst.numel() == 0) return;
  if (dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape() &&
      dst.dtype() == src.dtype()) {
    std::memmove(dst.raw_data(), src.raw_data(),
                 static_cast<size_t>(dst.numel()) * dtype_size(dst.dtype()));
    return;
  }
  // NOTE: a source that shares memory with dst in another layout (x.copy_(x.T)) would be
  // read after being overwritten; copy it out first.
  Tensor s = src;
  if (src.storage() == dst.storage() &&
      (src.offset() != dst.offset() || src.strides() != dst.strides() ||
       src.shape() != dst.shape()))
    s = src.clone();
  Strides ss = detail::broadcast_strides(s.shape(), s.strides(), dst.shape());
  NdIter<2> it(dst.shape(), {dst.strides(), ss}, !dst.is_contiguous());
  // Writes into a view whose elements alias each other run serially (last write wins).
  int64_t grain =
      detail::is_non_overlapping(dst.shape(), dst.strides()) ? kParallelGrain : it.numel + 1;
  dispatch(dst.dtype(), [&]<class D>() {
    dispatch(s.dtype(), [&]<class S>() {
      D* d = static_cast<D*>(dst.raw_data());
      const S* p = static_cast<const S*>(s.raw_data());
      int64_t sd = it.inner_stride(0), sp = it.inner_stride(1);
      detail::parallel_for_range(it.numel, grain, [&](int64_t begin, int64_t end) {
        it.for_each_run(begin, end, [&](int64_t n, const int64_t* off) {
          D* o = d + off[0];
          const S* q = p + off[1];
          if (sd == 1 && sp == 1)
            for (int64_t i = 0; i < n; ++i) o[i] = detail::convert<D>(q[i]);
          else
            for (int64_t i = 0; i < n; ++i) o[i * sd] = detail::convert<D>(q[i * sp]);
        });
      });
    });
  });
}

void fill_(Tensor& dst, double value) {
  dst.storage()->bump_version();
  if (dst.numel() == 0) return;
  NdIter<1> it(dst.shape(), {dst.strides()}, !dst.is_contiguous());
  int64_t grain =
      detail::is_non_overlapping(dst.shape(), dst.strides()) ? kParallelGrain : it.numel + 1;
  dispatch(dst.dtype(), [&]<class D>() {
    const D v = detail::convert<D>(value);
    D* d = static_cast<D*>(dst.raw_data());
    int64_t sd = it.inner_stride(0);
    detail::parallel_for_range(it.numel, grain, [&](int64_t begin, int64_t end) {
      it.for_each_run(begin, end, [&](int64_t n, const int64_t* off) {
        D* o = d + off[0];
        if (sd == 1)
          for (int64_t i = 0; i < n; ++i) o[i] = v;
        else
          for (int64_t i = 0; i < n; ++i) o[i * sd] = v;
      });
    });
  });
}

}  // namespace encore::raw
