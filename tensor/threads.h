// One thread setting for OpenMP loops and OpenBLAS.
#pragma once

#include <cstdint>

namespace encore {

/// Sets the threads used by encore's OpenMP kernels and by OpenBLAS (n >= 1).
void set_num_threads(int n);
int get_num_threads();
/// Elementwise loops smaller than this run on one thread: below it, waking threads costs more
/// than it saves.
inline constexpr int64_t kParallelGrain = 1 << 15;

}  // namespace encore
