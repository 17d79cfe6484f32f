// Which OpenBLAS kernel runs, and encore's choice of it at start.
//
// OpenBLAS built with DYNAMIC_ARCH (Debian's is) picks a kernel ("core") for the CPU when it
// loads. On a CPU it does not know, it falls back to a generic one: OpenBLAS 0.3.21 runs an
// Intel Xeon of family 6, model 207 on its SSE3 Prescott kernel, 7-14 GFLOP/s per thread
// where its Cooperlake kernel gives 50-104. When libencore loads, it reads the kernel
// OpenBLAS chose and, if that is such a generic fallback on a CPU whose features (cpuid, and
// the OS's saved register state) support AVX2 or AVX-512, switches OpenBLAS to the kernel
// those features allow (Cooperlake, SkylakeX, Haswell or Zen), in the process, before any
// other code calls BLAS. The new kernel must first pass a check: small sgemm products
// against a reference computed in double. It says so once on stderr, and blas_config() (and
// so every metrics.json) names the choice.
//
//   OPENBLAS_CORETYPE=<name>   set at all: OpenBLAS's own switch, the user's choice; encore
//                              never changes it.
//   ENCORE_BLAS_AUTO=0         keep whatever kernel OpenBLAS chose.
#pragma once

#include <optional>
#include <string>

namespace encore {

/// What the CPU and the OS support, as far as choosing a BLAS kernel needs.
struct CpuFeatures {
  std::string vendor;  ///< cpuid's vendor string: "GenuineIntel", "AuthenticAMD", ...
  bool fma = false;
  bool avx2 = false;  ///< AVX2, with the OS saving the ymm registers
  /// AVX-512 F, CD, DQ, BW and VL (what OpenBLAS's SkylakeX kernels use), with the OS saving
  /// the zmm and mask registers.
  bool avx512 = false;
  bool avx512_bf16 = false;  ///< and AVX512_BF16 (Cooper Lake and later)
};

/// This CPU's features (all false on a non-x86 machine).
CpuFeatures cpu_features();

/// The fastest OpenBLAS kernel the features allow: "Cooperlake", "SkylakeX", "Haswell" (Intel
/// and others) or "Zen" (AMD, Hygon) for AVX2 + FMA; empty when none of them is allowed.
std::string fast_blas_kernel(const CpuFeatures& cpu);

/// Whether an OpenBLAS core name is one of its generic kernels (SSE2/SSE3/AVX: Prescott,
/// Core2, Penryn, Dunnington, Nehalem, Atom, Nano, Barcelona, Opteron, Bobcat, SandyBridge,
/// ...), which it also uses as the fallback for CPUs it does not recognise. Case-insensitive.
bool is_generic_blas_kernel(const std::string& core);

/// What encore did about the kernel at start.
enum class BlasKernelStatus {
  kept,          ///< OpenBLAS's choice kept (a kernel the CPU is known to, or no better one)
  environment,   ///< OPENBLAS_CORETYPE was set: the user's choice, untouched
  disabled,      ///< ENCORE_BLAS_AUTO=0
  switched,      ///< switched to a faster kernel, which passed the check
  check_failed,  ///< the faster kernel failed the check (or could not load): back to initial
  unavailable,   ///< a switch was wanted but this OpenBLAS cannot switch (no DYNAMIC_ARCH)
};
/// "kept", "environment", "disabled", "switched", "check_failed", "unavailable".
const char* to_string(BlasKernelStatus status);

/// encore's decision at start, as a pure function of what it sees.
struct BlasKernelDecision {
  /// kept, environment or disabled when target is empty; switched when a switch is wanted.
  BlasKernelStatus status = BlasKernelStatus::kept;
  std::string target;  ///< the kernel to switch to; empty: keep OpenBLAS's choice
  std::string reason;  ///< one line, for blas_config() and the message
};

/// core: openblas_get_corename() at load; env_coretype / env_auto: OPENBLAS_CORETYPE and
/// ENCORE_BLAS_AUTO when set. The rules: a set OPENBLAS_CORETYPE always wins (keep);
/// ENCORE_BLAS_AUTO "0", "off", "false" or "no" keeps; otherwise a generic kernel is replaced
/// by fast_blas_kernel(cpu) when that is not empty; any other kernel is kept.
BlasKernelDecision decide_blas_kernel(const std::string& core, const CpuFeatures& cpu,
                                      const std::optional<std::string>& env_coretype,
                                      const std::optional<std::string>& env_auto);

/// What happened at start.
struct BlasKernelChoice {
  BlasKernelStatus status = BlasKernelStatus::kept;
  std::string initial;  ///< the kernel OpenBLAS chose when it loaded
  std::string kernel;   ///< the kernel in use after the decision
  std::string reason;   ///< one line saying why
};

/// The decision taken when libencore loaded (taken then, once, before main).
const BlasKernelChoice& blas_kernel_choice();

/// Switches OpenBLAS (DYNAMIC_ARCH builds) to the named kernel, e.g. "Cooperlake", and checks
/// it with small sgemm products against a double reference; if it cannot load, computes wrong
/// values or faults with an illegal instruction, the previous kernel is restored. Returns
/// whether the named kernel is now in use. The environment is left as it was. Not thread-safe:
/// call it while no other thread calls BLAS or reads the environment.
bool set_blas_kernel(const std::string& core);

/// Whether the kernel in use computes small sgemm products (several shapes, transposes,
/// alpha and beta) to within float rounding of a reference in double.
bool check_blas_sgemm();

}  // namespace encore
