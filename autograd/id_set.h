// IdSet: the tape's set of watched tensor ids. Open addressing with linear probing over a
// power-of-two table, so the hot path (a lookup per input, an insert per output of every
// recorded op) never allocates per element. Ids are never 0, which marks an empty slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace encore::detail {

class IdSet {
 public:
  bool contains(uint64_t id) const {
    if (slots_.empty()) return false;
    for (size_t i = slot_of(id);; i = (i + 1) & mask_) {
      if (slots_[i] == id) return true;
      if (slots_[i] == 0) return false;
    }
  }
  void insert(uint64_t id) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    for (size_t i = slot_of(id);; i = (i + 1) & mask_) {
      if (slots_[i] == id) return;
      if (slots_[i] == 0) {
        slots_[i] = id;
        ++size_;
        return;
      }
    }
  }
  void clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
    mask_ = 0;
  }
  size_t size() const { return size_; }

 private:
  size_t slot_of(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ULL) >> 20) & mask_;
  }
  void grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, 0);
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (uint64_t id : old)
      if (id) insert(id);
  }
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace encore::detail

namespace encore::detail {

/// An id -> V map with the same open addressing, for the backward walk's gradients. Entries are
/// never erased: a consumed gradient is reset to V() in place, which frees its memory.
template <class V>
class IdMap {
 public:
  explicit IdMap(size_t expected = 16) {
    size_t cap = 64;
    while (cap < 2 * expected) cap *= 2;
    keys_.assign(cap, 0);
    values_.resize(cap);
    mask_ = cap - 1;
  }
  /// The value for id, or nullptr when absent.
  V* find(uint64_t id) {
    for (size_t i = slot_of(id);; i = (i + 1) & mask_) {
      if (keys_[i] == id) return &values_[i];
      if (keys_[i] == 0) return nullptr;
    }
  }
  /// The value for id, default-constructed when new; *inserted says which.
  V& get(uint64_t id, bool* inserted) {
    if (2 * (size_ + 1) > keys_.size()) grow();
    for (size_t i = slot_of(id);; i = (i + 1) & mask_) {
      if (keys_[i] == id) {
        *inserted = false;
        return values_[i];
      }
      if (keys_[i] == 0) {
        keys_[i] = id;
        ++size_;
        *inserted = true;
        return values_[i];
      }
    }
  }

 private:
  size_t slot_of(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ULL) >> 20) & mask_;
  }
  void grow() {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<V> values = std::move(values_);
    keys_.assign(keys.size() * 2, 0);
    values_.clear();
    values_.resize(keys_.size());
    mask_ = keys_.size() - 1;
    size_ = 0;
    bool inserted;
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i]) get(keys[i], &inserted) = std::move(values[i]);
  }
  std::vector<uint64_t> keys_;
  std::vector<V> values_;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace encore::detail
