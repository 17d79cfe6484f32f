// IdSet: the tape's set of watched tensor ids. Open addressing with linear probing over a
// power-of-two table, so the hot path (a lookup per input, an insert per output of every
// recorded op) never allocates per element. Ids are never 0, which marks an empty slot.
#pragma once

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
