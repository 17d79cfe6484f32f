// One thread setting for OpenMP loops and OpenBLAS.
#pragma once

#include <cstdint>
#include <string>

namespace encore {

/// Sets the threads used by encore's OpenMP kernels and by OpenBLAS (n >= 1).
void set_num_threads(int n);
int get_num_threads();
/// The OpenBLAS kernel (core) chosen at run time for this CPU, e.g. "Haswell" or "SkylakeX"
/// (an older core than the CPU could use means the library does not know this CPU).
std::string blas_kernel();
/// OpenBLAS's build configuration and encore's kernel choice at start (tensor/blas.h), e.g.
/// "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64; kernel
/// Cooperlake (kept: OpenBLAS's choice for this CPU)".
std::string blas_config();
/// Elementwise loops smaller than this run on one thread: below it, waking threads costs more
/// than it saves.
inline constexpr int64_t kParallelGrain = 1 << 15;

}  // namespace encore
