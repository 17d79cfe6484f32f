// The caching allocator behind Storage.
#include "tensor/storage.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace encore {
namespace {

constexpr size_t kAlign = 64;

// Size classes: multiples of 64 bytes up to 4 KiB; above, 8 steps per power of two, so the
// rounding wastes at most 12.5%.
size_t size_class(size_t n) {
  if (n <= 4096) return n == 0 ? kAlign : (n + kAlign - 1) / kAlign * kAlign;
  size_t p = std::bit_floor(n);
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  AllocatorStats stats;
  bool caching = true;
};

Cache& cache() {
  // Leaked on purpose: storages freed during static destruction must still find it.
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

namespace allocator {

void* allocate(size_t nbytes, size_t* capacity) {
  size_t cap = size_class(nbytes);
  *capacity = cap;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.allocations++;
    c.stats.bytes_in_use += cap;
    if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use)
      c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
    auto it = c.free_lists.find(cap);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cache_hits++;
      c.stats.bytes_cached -= cap;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, cap);
  if (!p) {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.bytes_in_use -= cap;
    throw std::bad_alloc();
  }
  return p;
}

void deallocate(void* ptr, size_t capacity) {
  if (!ptr) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.bytes_in_use -= capacity;
    if (c.caching) {
      c.free_lists[capacity].push_back(ptr);
      c.stats.bytes_cached += capacity;
      return;
    }
  }
  std::free(ptr);
}

AllocatorStats stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [cap, list] : c.free_lists)
    for (void* p : list) std::free(p);
  c.free_lists.clear();
  c.stats.bytes_cached = 0;
}

void set_caching(bool on) {
  {
    std::lock_guard<std::mutex> lock(cache().mu);
    cache().caching = on;
  }
  if (!on) empty_cache();
}

}  // namespace allocator

Storage::Storage(size_t nbytes) : nbytes_(nbytes) {
  data_ = allocator::allocate(nbytes, &capacity_);
}

Storage::~Storage() { allocator::deallocate(data_, capacity_); }

}  // namespace encore
