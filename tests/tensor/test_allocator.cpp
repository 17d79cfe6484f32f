// The caching allocator: alignment, reuse from free lists (large requests from larger blocks),
// statistics.
#include <doctest/doctest.h>

#include <cstdint>

#include "tensor/tensor.h"

using namespace encore;

TEST_CASE("allocator: 64-byte alignment") {
  for (int64_t n : {1, 3, 17, 1000, 100000}) {
    Tensor t = empty({n});
    CHECK(reinterpret_cast<uintptr_t>(t.storage()->data()) % 64 == 0);
  }
}

TEST_CASE("allocator: freed blocks are reused and statistics track them") {
  AllocatorStats before = allocator::stats();
  {
    Tensor a = empty({1000, 100});  // 400 kB
    AllocatorStats during = allocator::stats();
    CHECK(during.bytes_in_use >= before.bytes_in_use + 400000);
  }
  AllocatorStats after_free = allocator::stats();
  CHECK(after_free.bytes_in_use == before.bytes_in_use);
  CHECK(after_free.bytes_cached >= 400000);
  // Same size class again: served from the cache, not the system.
  Tensor b = empty({1000, 100});
  AllocatorStats again = allocator::stats();
  CHECK(again.cache_hits == after_free.cache_hits + 1);
  CHECK(again.allocations == after_free.allocations + 1);
  CHECK(again.bytes_cached + 400000 <= after_free.bytes_cached + 400000 / 8);
}

TEST_CASE("allocator: a repeated loop stops missing the cache") {
  auto step = [] {
    Tensor x = empty({128, 784});
    Tensor y = empty({128, 400});
    Tensor z = empty({400, 784});
  };
  step();
  AllocatorStats s0 = allocator::stats();
  for (int i = 0; i < 10; ++i) step();
  AllocatorStats s1 = allocator::stats();
  CHECK(s1.allocations - s0.allocations == 30);
  CHECK(s1.cache_hits - s0.cache_hits == 30);
}

TEST_CASE("allocator: a large request reuses a larger cached block, up to 4x its size") {
  constexpr int64_t MiB = int64_t{1} << 20;
  auto floats = [](int64_t bytes) { return empty({bytes / 4}); };  // f32: 4 bytes each
  allocator::empty_cache();
  const void* block = nullptr;
  { block = floats(3 * MiB).storage()->data(); }  // cached: one 3 MiB block
  AllocatorStats s0 = allocator::stats();
  {
    Tensor mid = floats(2 * MiB);  // another size class, served by the 3 MiB block
    AllocatorStats s1 = allocator::stats();
    CHECK(s1.cache_hits == s0.cache_hits + 1);
    CHECK(mid.storage()->data() == block);
    CHECK(s1.bytes_cached == s0.bytes_cached - 3 * MiB);
    CHECK(s1.bytes_in_use == s0.bytes_in_use + 3 * MiB);  // the whole block is in use
  }
  AllocatorStats s2 = allocator::stats();
  CHECK(s2.bytes_in_use == s0.bytes_in_use);
  CHECK(s2.bytes_cached == s0.bytes_cached);  // back on the 3 MiB free list
  {
    Tensor small = floats(512 * 1024);  // below 1 MiB: its own size class only, a miss
    CHECK(allocator::stats().cache_hits == s2.cache_hits);
  }
  allocator::empty_cache();
  { block = floats(5 * MiB).storage()->data(); }  // cached: one 5 MiB block
  AllocatorStats s3 = allocator::stats();
  {
    Tensor t = floats(MiB + MiB / 8);  // 1.125 MiB: 5 MiB is more than 4x, a miss
    CHECK(allocator::stats().cache_hits == s3.cache_hits);
  }
  {
    Tensor t = floats(MiB + MiB / 4);  // 1.25 MiB: 5 MiB is exactly 4x, a hit
    CHECK(allocator::stats().cache_hits == s3.cache_hits + 1);
    CHECK(t.storage()->data() == block);
  }
  allocator::empty_cache();
}

TEST_CASE("allocator: empty_cache returns cached memory") {
  { Tensor a = empty({12345}); }
  CHECK(allocator::stats().bytes_cached > 0);
  allocator::empty_cache();
  CHECK(allocator::stats().bytes_cached == 0);
}

TEST_CASE("storage version counter") {
  Tensor a = zeros({4});
  uint64_t v0 = a.version();
  a.fill_(1);
  CHECK(a.version() == v0 + 1);
  Tensor view = raw::slice(a, 0, 0, 2);
  view.copy_(ones({2}));
  CHECK(a.version() == v0 + 2);  // shared storage, shared counter
}
