// set_num_threads: one knob for OpenMP and OpenBLAS.
#include "tensor/threads.h"

#include <cblas.h>
#include <omp.h>

#include "tensor/error.h"

namespace encore {

void set_num_threads(int n) {
  ENCORE_CHECK(n >= 1, "set_num_threads", "thread count must be at least 1, got ", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace encore
