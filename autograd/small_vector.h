// SmallVector: up to N elements inline, the rest on the heap. A tape node's inputs, outputs
// and saved versions are almost always 1-3 entries; keeping them inline saves three heap
// allocations per recorded op.
#pragma once

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

namespace encore::detail {

template <class T, size_t N>
class SmallVector {
 public:
  void push_back(T v) {
    if (n_ < N)
      inline_[n_] = std::move(v);
    else
      heap_.push_back(std::move(v));
    ++n_;
  }
  template <class... Args>
  void emplace_back(Args&&... args) {
    push_back(T(std::forward<Args>(args)...));
  }
  void reserve(size_t n) {
    if (n > N) heap_.reserve(n - N);
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T& operator[](size_t i) { return i < N ? inline_[i] : heap_[i - N]; }
  const T& operator[](size_t i) const { return i < N ? inline_[i] : heap_[i - N]; }
  void clear() {
    for (size_t i = 0; i < n_ && i < N; ++i) inline_[i] = T();
    heap_.clear();
    n_ = 0;
  }

 private:
  std::array<T, N> inline_{};
  std::vector<T> heap_;
  size_t n_ = 0;
};

}  // namespace encore::detail
