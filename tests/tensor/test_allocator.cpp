// The caching allocator: alignment, reuse from free lists, statistics.
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
