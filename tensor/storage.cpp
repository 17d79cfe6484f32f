// The caching allocator behind Storage.
#include "tensor/storage.h"

#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
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

// Blocks of at least this many bytes may be served from a cached block of a larger class, up to
// kMaxOvershoot times the size asked for (see allocate).
constexpr size_t kLargeBlock = size_t{1} << 20;
constexpr size_t kMaxOvershoot = 4;

struct Cache {
  std::mutex mu;
  // Free blocks by capacity, ordered so that a large request finds the smallest fitting block.
  std::map<size_t, std::vector<void*>> free_lists;
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
  const size_t cap = size_class(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.allocations++;
    // A small request takes a block of its own class only. A large one takes the smallest
    // cached block of its class or a larger one up to kMaxOvershoot times its size: a training
    // step's large buffers (activations, im2col columns, their gradients) come in many nearby
    // sizes, and without this each size keeps blocks of its own, so the cache held the sum of
    // every size's peak (conv_ae at batch 1000: 1.7 GB against 0.8 GB with no cache at all).
    auto it = c.free_lists.lower_bound(cap);
    const size_t limit = cap >= kLargeBlock ? cap * kMaxOvershoot : cap;
    while (it != c.free_lists.end() && it->first <= limit && it->second.empty()) ++it;
    const bool hit = it != c.free_lists.end() && it->first <= limit;
    *capacity = hit ? it->first : cap;
    c.stats.bytes_in_use += *capacity;
    if (c.stats.bytes_in_use > c.stats.peak_bytes_in_use)
      c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
    if (hit) {
      void* p = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) c.free_lists.erase(it);
      c.stats.cache_hits++;
      c.stats.bytes_cached -= *capacity;
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
