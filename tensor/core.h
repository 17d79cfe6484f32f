// Tensor: a cheap value handle to {storage, shape, strides, offset, dtype}. Copying a handle
// aliases; views share storage. Nothing here records gradients: the differentiable ops are in
// autograd/. The only gradient-related facts a tensor carries are a `trainable` flag and its
// storage's version counter.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "shape.h"
#include "storage.h"

namespace encore {

/// The shared state behind a Tensor handle. Each impl gets a process-unique id that is never
/// reused, which is how a tape recognises a tensor.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  ///< in elements
  DType dtype = DType::f32;
  bool contiguous = true;  ///< cached: row-major with no gaps
  bool trainable = false;
  uint64_t id = 0;
};

class Tensor {
 public:
  /// An undefined tensor (defined() is false); every accessor but defined() throws on it.
  Tensor() = default;
  /// A tensor over existing storage. strides and offset are in elements; the view is checked
  /// to lie inside the storage.
  Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
         int64_t offset, DType dtype);
  /// A fresh contiguous tensor of uninitialised memory. Throws encore::Error naming op when the
  /// size passes 2^62 elements or bytes, or the memory cannot be allocated.
  Tensor(const Shape& shape, DType dtype, const char* op = "empty");

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  int dim() const { return impl().shape.size(); }
  int64_t numel() const { return encore::numel(impl().shape); }
  /// Size of dim d (negative counts from the end).
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  bool is_contiguous() const { return impl().contiguous; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  /// Pointer to the first element (at the offset). T must match dtype().
  template <class T>
  T* data() const {
    check_dtype(dtype_of<T>(), "data");
    return static_cast<T*>(impl().storage->data()) + impl().offset;
  }
  /// Untyped pointer to the first element.
  void* raw_data() const;

  /// The single element as T, converting; throws unless numel() == 1.
  template <class T = double>
  T item() const;
  /// All elements in logical (row-major) order, converted to T.
  template <class T>
  std::vector<T> to_vector() const;

  /// Identity for tapes; equal for handles that alias the same impl.
  uint64_t id() const { return impl().id; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  /// Parameters are trainable: a tape watches them automatically.
  bool trainable() const { return impl().trainable; }
  Tensor& set_trainable(bool on = true);

  /// The storage's version counter (bumped by in-place writes).
  uint64_t version() const { return impl().storage->version(); }

  // Raw value operations (not recorded by any tape).
  /// A contiguous copy with its own storage.
  Tensor clone() const;
  /// *this when already contiguous, else a contiguous copy.
  Tensor contiguous() const;
  /// A copy converted to dtype dt (*this when dt already matches).
  Tensor to(DType dt) const;
  /// A new handle (new id) on the same data, not trainable: what a tape treats as a constant.
  Tensor detach() const;
  /// In-place writes; they bump the version counter.
  Tensor& fill_(double value);
  /// Copies src (broadcast to this shape, converted to this dtype) into this tensor.
  Tensor& copy_(const Tensor& src);

  const TensorImpl& impl() const;
  TensorImpl& impl_mut();

 private:
  void check_dtype(DType want, const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
/// The NumPy-like text of a tensor: small tensors whole, large ones summarised with "...".
std::string to_string(const Tensor& t);

/// Shape checks used by many ops.
bool is_row_major(const Shape& shape, const Strides& strides);
/// Bytes of a contiguous tensor of this shape and dtype: throws encore::Error naming op when
/// the elements or the bytes pass 2^62 (no multiplication wraps).
int64_t checked_nbytes(const char* op, const Shape& shape, DType dtype);

namespace detail {
[[noreturn]] void fail_undefined(const char* op, const char* what);
}  // namespace detail
/// Throws "op: <what> is an undefined tensor ..." unless t is defined. Ops call it on their
/// inputs first, so the message names the op that was handed the tensor (a Tensor's own
/// accessors can only say "tensor: use of an undefined tensor").
inline void check_defined(const char* op, const Tensor& t, const char* what = "the input") {
  if (!t.defined()) [[unlikely]]
    detail::fail_undefined(op, what);
}

}  // namespace encore
