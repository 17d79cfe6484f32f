// set_num_threads: one knob for OpenMP and OpenBLAS.
#include "tensor/threads.h"

#include <cblas.h>
#include <omp.h>

#include <string>

#include "tensor/blas.h"
#include "tensor/error.h"

namespace encore {

void set_num_threads(int n) {
  ENCORE_CHECK(n >= 1, "set_num_threads", "thread count must be at least 1, got ", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
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
