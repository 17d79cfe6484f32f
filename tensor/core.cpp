// The Tensor handle: construction, metadata, element access.
#include "tensor/core.h"

#include <atomic>
#include <new>

#include "tensor/kernels.h"

namespace encore {
namespace {
std::atomic<uint64_t> next_id{1};

void check_extent(const Storage& s, const Shape& shape, const Strides& strides, int64_t offset,
                  DType dtype) {
  ENCORE_CHECK(shape.size() == strides.size(), "tensor", "shape ", shape, " and strides ", strides,
               " differ in length");
  ENCORE_CHECK(offset >= 0, "tensor", "negative offset ", offset);
  int64_t lo = offset, hi = offset;  // element range touched, inclusive
  bool empty = false, overflow = false;
  for (int i = 0; i < shape.size(); ++i) {
    ENCORE_CHECK(shape[i] >= 0, "tensor", "negative size in shape ", shape);
    if (shape[i] == 0) empty = true;
    int64_t span = 0;
    // A span or end that overflows int64 lies outside any storage.
    overflow |= __builtin_mul_overflow(shape[i] - (shape[i] > 0), strides[i], &span);
    overflow |= __builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi);
  }
  if (empty) return;
  int64_t end = 0, end_bytes = 0;
  overflow |= __builtin_add_overflow(hi, 1, &end);
  overflow |= __builtin_mul_overflow(end, static_cast<int64_t>(dtype_size(dtype)), &end_bytes);
  ENCORE_CHECK(!overflow && lo >= 0 && static_cast<size_t>(end_bytes) <= s.nbytes(), "tensor",
               "view with shape ", shape, ", strides ", strides, " and offset ", offset,
               " reaches outside its storage of ", s.nbytes(), " bytes");
}

// Decimal digits of an unsigned 128-bit value (iostreams print no __int128).
std::string u128_string(unsigned __int128 v) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v);
  return s;
}

constexpr int64_t kMaxBytes = int64_t(1) << 62;
}  // namespace

int64_t checked_nbytes(const char* op, const Shape& shape, DType dtype) {
  const int64_t n = checked_numel(op, shape);  // at most 2^62 elements
  const auto size = static_cast<int64_t>(dtype_size(dtype));
  using u128 = unsigned __int128;
  const u128 bytes = static_cast<u128>(n) * static_cast<u128>(size);  // < 2^66: cannot wrap
  ENCORE_CHECK(bytes <= static_cast<u128>(kMaxBytes), op, "a tensor of shape ", shape,
               " and dtype ", dtype, " needs ", u128_string(bytes),
               " bytes, more than the limit of ", kMaxBytes, " (2^62)");
  return static_cast<int64_t>(bytes);
}

bool is_row_major(const Shape& shape, const Strides& strides) {
  int64_t expected = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
               int64_t offset, DType dtype) {
  check_extent(*storage, shape, strides, offset, dtype);
  impl_ = std::make_shared<TensorImpl>();
  impl_->storage = std::move(storage);
  impl_->shape = shape;
  impl_->strides = strides;
  impl_->offset = offset;
  impl_->dtype = dtype;
  impl_->contiguous = is_row_major(shape, strides);
  impl_->id = next_id.fetch_add(1, std::memory_order_relaxed);
}

Tensor::Tensor(const Shape& shape, DType dtype, const char* op) {
  const int64_t bytes = checked_nbytes(op, shape, dtype);
  impl_ = std::make_shared<TensorImpl>();
  try {
    impl_->storage = std::make_shared<Storage>(static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    ENCORE_FAIL(op, "out of memory: cannot allocate ", bytes, " bytes for a tensor of shape ",
                shape, " and dtype ", dtype);
  }
  impl_->shape = shape;
  impl_->strides = contiguous_strides(shape);
  impl_->dtype = dtype;
  impl_->contiguous = true;
  impl_->id = next_id.fetch_add(1, std::memory_order_relaxed);
}

void detail::fail_undefined(const char* op, const char* what) {
  ENCORE_FAIL(op, what,
              " is an undefined tensor (a default-constructed Tensor that was never "
              "assigned, or an undefined gradient)");
}

const TensorImpl& Tensor::impl() const {
  ENCORE_CHECK(impl_ != nullptr, "tensor", "use of an undefined tensor");
  return *impl_;
}

TensorImpl& Tensor::impl_mut() {
  ENCORE_CHECK(impl_ != nullptr, "tensor", "use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim("size", d, dim())]; }
int64_t Tensor::stride(int64_t d) const { return strides()[normalize_dim("stride", d, dim())]; }

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}

void Tensor::check_dtype(DType want, const char* op) const {
  ENCORE_CHECK(dtype() == want, op, "tensor has dtype ", dtype(), ", asked for ", want);
}

template <class T>
T Tensor::item() const {
  ENCORE_CHECK(numel() == 1, "item", "tensor of shape ", shape(), " has ", numel(),
               " elements, not 1");
  return dispatch(dtype(), [&]<class S>() { return value_cast<T>(*static_cast<S*>(raw_data())); });
}
template double Tensor::item<double>() const;
template float Tensor::item<float>() const;
template int64_t Tensor::item<int64_t>() const;
template int Tensor::item<int>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(dtype_of<T>()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor& Tensor::set_trainable(bool on) {
  impl_mut().trainable = on;
  return *this;
}

Tensor Tensor::clone() const {
  Tensor out(shape(), dtype());
  raw::copy_(out, *this);
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out(shape(), dt);
  raw::copy_(out, *this);
  return out;
}

Tensor Tensor::detach() const { return Tensor(storage(), shape(), strides(), offset(), dtype()); }

Tensor& Tensor::fill_(double value) {
  raw::fill_(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  raw::copy_(*this, src);
  return *this;
}

}  // namespace encore
