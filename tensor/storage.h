// Storage: a reference-counted, 64-byte-aligned buffer from a caching allocator, plus the
// version counter that lets the tape detect in-place changes to saved tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace encore {

/// What the caching allocator has done so far (process-wide).
struct AllocatorStats {
  size_t bytes_in_use = 0;  ///< bytes handed out and not yet returned
  size_t bytes_cached = 0;  ///< bytes returned and kept in free lists for reuse
  size_t peak_bytes_in_use = 0;
  uint64_t allocations = 0;  ///< every allocate() call
  uint64_t cache_hits = 0;   ///< allocations served from a free list, without malloc
};

/// The caching allocator: blocks are rounded up to a size class (64-byte multiples for small
/// blocks, 1/8-octave steps above) and kept on per-class free lists when freed, so a training
/// loop that repeats the same shapes stops calling the system allocator after one step. A
/// request of 1 MiB or more takes the smallest cached block that fits, up to 4 times its size,
/// so the many nearby sizes of a step's large buffers share blocks.
namespace allocator {
/// Returns a 64-byte-aligned block of at least nbytes (0 bytes gives a valid, unique pointer).
void* allocate(size_t nbytes, size_t* capacity);
/// Returns a block to its free list.
void deallocate(void* ptr, size_t capacity);
AllocatorStats stats();
/// Frees every cached block back to the system.
void empty_cache();
/// Stops caching (each free goes to the system) when false; for debugging with valgrind.
void set_caching(bool on);
}  // namespace allocator

/// A flat buffer of bytes. Tensors share it through std::shared_ptr<Storage>.
class Storage {
 public:
  /// nbytes of uninitialised memory from the caching allocator.
  explicit Storage(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

  /// Bumped by every in-place write through a tensor (fill_, copy_, optimizer steps).
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;
  uint64_t version_ = 0;
};

}  // namespace encore
