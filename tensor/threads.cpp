// set_num_threads: one knob, one pool of threads (OpenMP) for encore's loops and its GEMMs.
#include "tensor/threads.h"

#include <cblas.h>
#include <omp.h>

#include <cstdlib>
#include <string>

#include "tensor/blas.h"
#include "tensor/error.h"

namespace encore {

extern "C" int encore_omp_wait_policy_status();  // tensor/omp_env.cpp

namespace {
// libgomp has read OMP_WAIT_POLICY by now (libencore's dependencies start before it): the
// PASSIVE that libencore_ompenv set for it leaves the environment again.
[[maybe_unused]] const int g_wait_policy = [] {
  const int status = encore_omp_wait_policy_status();
  if (status == 2) unsetenv("OMP_WAIT_POLICY");
  return status;
}();

// One pool of threads: OpenBLAS computes on the thread that calls it, and encore splits large
// products over its OpenMP threads itself (tensor/kernels/gemm.cpp). With OpenBLAS's own
// threads beside OpenMP's, two busy pools shared two cores: libgomp's workers spin-wait after
// each parallel loop while OpenBLAS's threads run (and OpenBLAS's yield while OpenMP runs), so
// 2 threads were slower than 1 (bench/README.md). Set when libencore loads, so it holds before
// set_num_threads is ever called.
[[maybe_unused]] const bool g_blas_on_caller = [] {
  openblas_set_num_threads(1);
  return true;
}();
}  // namespace

void set_num_threads(int n) {
  ENCORE_CHECK(n >= 1, "set_num_threads", "thread count must be at least 1, got ", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(1);  // see above: GEMMs use these n threads through OpenMP
}

int get_num_threads() { return omp_get_max_threads(); }

std::string blas_kernel() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}

std::string blas_config() {
  const char* config = openblas_get_config();
  std::string s = config ? config : "unknown";
  while (!s.empty() && s.back() == ' ') s.pop_back();  // OpenBLAS ends it with a space
  const BlasKernelChoice& c = blas_kernel_choice();
  s += "; kernel " + blas_kernel() + " (" + to_string(c.status) + ": " + c.reason + ")";
  return s;
}

}  // namespace encore
