// The OpenBLAS kernel choice at start (see blas.h).
//
// The switch is done in the process, through the two functions a DYNAMIC_ARCH OpenBLAS
// exports for its own start and end: gotoblas_dynamic_quit() forgets the kernel table and
// gotoblas_dynamic_init() picks one again, reading OPENBLAS_CORETYPE as it does at load. So
// OPENBLAS_CORETYPE is set for the length of that one call and then restored to what it
// was: the process's environment, and its children's, stay as the user left them. Both are
// looked up with dlsym, so an OpenBLAS without them (a build for one CPU) still links and
// simply keeps its kernel. Kernels are only switched before main (single-threaded, no BLAS
// call in flight) or by an explicit set_blas_kernel().
#include "tensor/blas.h"

#include <cblas.h>
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <strings.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ENCORE_X86 1
#endif

namespace encore {

namespace {

bool iequals(const std::string& a, const char* b) { return strcasecmp(a.c_str(), b) == 0; }

#if defined(ENCORE_X86)
uint64_t xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}
#endif

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

// OpenBLAS's x86_64 kernel names (OPENBLAS_CORETYPE values) in 0.3.x.
const char* const kKnownKernels[] = {
    "Katmai",       "Coppermine",    "Northwood",   "Prescott",    "Banias", "Atom",
    "Core2",        "Penryn",        "Dunnington",  "Nehalem",     "Athlon", "Opteron",
    "Opteron_SSE3", "Barcelona",     "Nano",        "SandyBridge", "Bobcat", "Bulldozer",
    "Piledriver",   "Haswell",       "Steamroller", "Excavator",   "Zen",    "SkylakeX",
    "Cooperlake",   "SapphireRapids"};

bool known_kernel(const std::string& core) {
  for (const char* k : kKnownKernels)
    if (iequals(core, k)) return true;
  return false;
}

// --- the sgemm check -----------------------------------------------------------------------

sigjmp_buf g_sigill_jump;
volatile sig_atomic_t g_in_check = 0;

void on_sigill(int) {
  if (g_in_check) siglongjmp(g_sigill_jump, 1);
}

// Deterministic values in [-1, 1).
struct Lcg {
  uint64_t s;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return float(int64_t(s >> 40) - (int64_t(1) << 23)) / float(1 << 23);
  }
};

// One product C = alpha op(A) op(B) + beta C, row-major, against a double reference. Sizes
// stay below OpenBLAS's threading threshold (m n k <= 262144), so it runs on this thread.
bool check_one(int m, int n, int k, bool ta, bool tb, float alpha, float beta, uint64_t seed) {
  Lcg g{seed};
  const int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
  std::vector<float> a(size_t(ta ? k : m) * lda), b(size_t(tb ? n : k) * ldb), c(size_t(m) * ldc);
  for (float& v : a) v = g.next();
  for (float& v : b) v = g.next();
  for (float& v : c) v = g.next();
  std::vector<double> ref(c.size()), bound(c.size());
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0, abs = 0;
      for (int p = 0; p < k; ++p) {
        double x = ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
        double y = tb ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
        s += x * y;
        abs += std::fabs(x * y);
      }
      double c0 = c[size_t(i) * ldc + j];
      ref[size_t(i) * ldc + j] = alpha * s + beta * c0;
      bound[size_t(i) * ldc + j] = std::fabs(alpha) * abs + std::fabs(beta * c0);
    }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  // float accumulation of k terms: error well within k * eps * sum |terms| (eps = 2^-24).
  const double tol = 1e-6 * (k + 2);
  for (size_t i = 0; i < c.size(); ++i) {
    double err = std::fabs(double(c[i]) - ref[i]);
    if (!(err <= tol * bound[i] + 1e-30)) return false;  // also catches NaN
  }
  return true;
}

bool run_checks() {
  return check_one(64, 48, 80, false, false, 1.0f, 0.0f, 1) &&
         check_one(37, 29, 53, true, false, 0.75f, 0.5f, 2) &&
         check_one(45, 61, 19, false, true, -1.25f, 1.0f, 3) &&
         check_one(17, 70, 33, true, true, 1.0f, 1.0f, 4) &&
         check_one(1, 1, 1, false, false, 2.0f, 0.0f, 5);
}

using VoidFn = void (*)();

struct DynamicArch {
  VoidFn init = nullptr, quit = nullptr;
  bool ok() const { return init && quit; }
};

DynamicArch dynamic_arch() {
  DynamicArch d;
  d.init = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  d.quit = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  return d;
}

std::string corename() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}

// Reloads the kernel table with OPENBLAS_CORETYPE = core for the one call; restores the
// variable afterwards.
void reload_kernel(const DynamicArch& d, const std::string& core) {
  std::optional<std::string> saved = env("OPENBLAS_CORETYPE");
  d.quit();
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  d.init();
  if (saved)
    setenv("OPENBLAS_CORETYPE", saved->c_str(), 1);
  else
    unsetenv("OPENBLAS_CORETYPE");
}

BlasKernelChoice decide_at_start() {
  BlasKernelChoice c;
  c.initial = c.kernel = corename();
  BlasKernelDecision d = decide_blas_kernel(c.initial, cpu_features(), env("OPENBLAS_CORETYPE"),
                                            env("ENCORE_BLAS_AUTO"));
  c.reason = d.reason;
  c.status = d.status;
  if (d.target.empty()) return c;
  if (!dynamic_arch().ok()) {
    c.status = BlasKernelStatus::unavailable;
    c.reason += "; but this OpenBLAS cannot switch kernels (no DYNAMIC_ARCH), kept " + c.initial;
  } else if (set_blas_kernel(d.target)) {
    c.status = BlasKernelStatus::switched;
    c.kernel = corename();
    c.reason += "; checked against a reference sgemm";
  } else {
    c.status = BlasKernelStatus::check_failed;
    c.kernel = corename();
    c.reason += "; but " + d.target + " failed the sgemm check, kept " + c.kernel;
  }
  // Said once, on the one path that changes (or tried to change) what OpenBLAS chose.
  std::fprintf(stderr,
               "encore: OpenBLAS kernel %s (%s). OPENBLAS_CORETYPE=<kernel> or "
               "ENCORE_BLAS_AUTO=0 overrides.\n",
               c.kernel.c_str(), c.reason.c_str());
  return c;
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures f;
#if defined(ENCORE_X86)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned max_leaf = eax;
  char vendor[13] = {};
  __builtin_memcpy(vendor, &ebx, 4);
  __builtin_memcpy(vendor + 4, &edx, 4);
  __builtin_memcpy(vendor + 8, &ecx, 4);
  f.vendor = vendor;
  if (max_leaf < 1) return f;
  __cpuid(1, eax, ebx, ecx, edx);
  const bool fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;              // xmm, ymm
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask, zmm_hi256, hi16_zmm
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned max_sub7 = eax;
  const bool avx2 = (ebx >> 5) & 1;
  const bool avx512 = ((ebx >> 16) & 1) && ((ebx >> 17) & 1) && ((ebx >> 28) & 1) &&
                      ((ebx >> 30) & 1) && ((ebx >> 31) & 1);  // F, DQ, CD, BW, VL
  bool bf16 = false;
  if (max_sub7 >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    bf16 = (eax >> 5) & 1;
  }
  f.fma = fma && os_ymm;
  f.avx2 = avx2 && os_ymm;
  f.avx512 = avx512 && os_zmm;
  f.avx512_bf16 = f.avx512 && bf16;
#endif
  return f;
}

std::string fast_blas_kernel(const CpuFeatures& cpu) {
  if (cpu.avx512 && cpu.fma) return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
  if (cpu.avx2 && cpu.fma)
    return (cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine") ? "Zen" : "Haswell";
  return "";
}

bool is_generic_blas_kernel(const std::string& core) {
  // The pre-AVX2 kernels. OpenBLAS 0.3.21 falls back to Prescott for an Intel CPU it does
  // not recognise and to Barcelona (or older) for such an AMD one. Bulldozer-family kernels
  // are not listed: OpenBLAS chooses them for those AMD CPUs themselves.
  static const char* const generic[] = {
      "Katmai",       "Coppermine", "Northwood",  "Prescott", "Banias",     "Atom",
      "Core2",        "Penryn",     "Dunnington", "Nehalem",  "Athlon",     "Opteron",
      "Opteron_SSE3", "Barcelona",  "Nano",       "Bobcat",   "SandyBridge"};
  for (const char* g : generic)
    if (iequals(core, g)) return true;
  return false;
}

BlasKernelDecision decide_blas_kernel(const std::string& core, const CpuFeatures& cpu,
                                      const std::optional<std::string>& env_coretype,
                                      const std::optional<std::string>& env_auto) {
  using S = BlasKernelStatus;
  if (env_coretype)
    return {S::environment, "",
            "OPENBLAS_CORETYPE=" + *env_coretype + " is set: the user's choice, kept"};
  if (env_auto && (*env_auto == "0" || iequals(*env_auto, "off") || iequals(*env_auto, "false") ||
                   iequals(*env_auto, "no")))
    return {S::disabled, "", "ENCORE_BLAS_AUTO=" + *env_auto + ": OpenBLAS's own choice kept"};
  if (!is_generic_blas_kernel(core)) return {S::kept, "", "OpenBLAS's choice for this CPU"};
  const std::string fast = fast_blas_kernel(cpu);
  if (fast.empty()) return {S::kept, "", "generic, but this CPU supports no faster kernel"};
  const char* isa = cpu.avx512_bf16 ? "AVX-512 BF16" : cpu.avx512 ? "AVX-512" : "AVX2 and FMA";
  return {S::switched, fast,
          "OpenBLAS chose its generic " + core + " kernel on a CPU with " + isa +
              ", so encore uses " + fast};
}

const char* to_string(BlasKernelStatus status) {
  switch (status) {
    case BlasKernelStatus::kept:
      return "kept";
    case BlasKernelStatus::environment:
      return "environment";
    case BlasKernelStatus::disabled:
      return "disabled";
    case BlasKernelStatus::switched:
      return "switched";
    case BlasKernelStatus::check_failed:
      return "check_failed";
    case BlasKernelStatus::unavailable:
      return "unavailable";
  }
  return "unknown";
}

bool check_blas_sgemm() {
  // One OpenBLAS thread, so that an illegal instruction faults on this thread, where the
  // handler can jump back from it.
  const int threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  struct sigaction action = {}, previous = {};
  action.sa_handler = on_sigill;
  sigemptyset(&action.sa_mask);
  sigaction(SIGILL, &action, &previous);
  volatile bool ok = false;
  if (sigsetjmp(g_sigill_jump, 1) == 0) {
    g_in_check = 1;
    ok = run_checks();
  }
  g_in_check = 0;
  sigaction(SIGILL, &previous, nullptr);
  openblas_set_num_threads(threads);
  return ok;
}

bool set_blas_kernel(const std::string& core) {
  if (!known_kernel(core)) return false;
  const DynamicArch d = dynamic_arch();
  if (!d.ok()) return iequals(corename(), core.c_str());
  const std::string previous = corename();
  reload_kernel(d, core);
  if (iequals(corename(), core.c_str()) && check_blas_sgemm()) return true;
  reload_kernel(d, previous);
  return false;
}

const BlasKernelChoice& blas_kernel_choice() {
  static const BlasKernelChoice choice = decide_at_start();
  return choice;
}

namespace {
// Takes the decision when libencore loads: after OpenBLAS's own start (a library's
// dependencies are initialised first), before main.
[[maybe_unused]] const BlasKernelChoice& g_choice_at_load = blas_kernel_choice();
}  // namespace

}  // namespace encore
