// One thread setting for encore's OpenMP loops and its GEMMs.
#pragma once

#include <cstdint>
#include <string>

namespace encore {

/// Sets the threads of encore's kernels (n >= 1): its OpenMP loops and its GEMMs, which it
/// splits over the same OpenMP threads. OpenBLAS itself always computes on the calling thread
/// (libencore sets openblas_set_num_threads(1) when it loads, whatever OPENBLAS_NUM_THREADS
/// says), so two thread pools never share the cores. The default is OpenMP's (OMP_NUM_THREADS,
/// else one per core). Idle OpenMP threads sleep at once instead of spinning (OMP_WAIT_POLICY
/// PASSIVE, set for libgomp as it starts unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set:
/// tensor/omp_env.cpp), so that a busy machine does not make 2 threads slower than 1.
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
