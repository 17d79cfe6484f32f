// Which BLAS products encore runs: a record of the matmul and linear calls of a stretch of
// code (e.g. one training step), so that bench/bench_models can time the same products alone
// and report the step's GEMM floor. Internal (not installed): for the benchmarks and tests.
#pragma once

#include <cstdint>
#include <vector>

#include "dtype.h"

namespace encore::raw {

/// One product as matmul or linear handed it to BLAS: `count` products C (M, N) = op(A) (M, K)
/// op(B) (K, N), op a transpose when ta / tb; with count > 1 (a batched matmul run product by
/// product) a_batched / b_batched say which operand differs per product (the other is shared).
struct GemmCall {
  DType dtype = DType::f32;
  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0;
  int64_t count = 1;
  bool a_batched = false, b_batched = false;
  /// Floating-point operations: 2 M N K per product.
  double flops() const { return 2.0 * double(M) * double(N) * double(K) * double(count); }
};

/// While set (not null), every product matmul and linear run on this thread is appended to
/// *log; nullptr stops recording. The caller owns the vector.
void set_gemm_log(std::vector<GemmCall>* log);

}  // namespace encore::raw
