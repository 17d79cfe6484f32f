// matmul and linear through OpenBLAS sgemm/dgemm. Operands reach BLAS in place whenever their
// strides allow (row-major with a leading dimension, or a transposed view passed as a transpose
// flag); only other layouts are copied. Batched matmul broadcasts leading dims by stride, so an
// expanded (stride-0) batch operand is never materialised.
//
// Threads: OpenBLAS runs on the calling thread only (tensor/threads.h); a large product is
// split here into one block of C per OpenMP thread, so encore's elementwise loops and its GEMMs
// share one pool of threads instead of OpenMP's and OpenBLAS's fighting over the cores.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <optional>
#include <type_traits>

#include "tensor/creation.h"
#include "tensor/gemm_log.h"
#include "tensor/kernels.h"
#include "tensor/view.h"

namespace encore::raw {
namespace {

constexpr int64_t kBlasMax = INT_MAX;  // blasint is 32-bit in the system OpenBLAS

/// How BLAS reads a (rows, cols) matrix in place: row-major with leading dim ld (NoTrans), or
/// the transpose of a row-major (cols, rows) matrix with leading dim ld (Trans).
struct MatLayout {
  bool trans = false;
  int64_t ld = 1;
};

/// The in-place BLAS layout of a (rows, cols) matrix with strides (sr, sc), if there is one.
/// Strides of size-1 dims do not matter; ld always satisfies BLAS's ld >= max(1, ...).
std::optional<MatLayout> blas_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc) {
  int64_t min_ld_n = std::max<int64_t>(1, cols), min_ld_t = std::max<int64_t>(1, rows);
  // (rows, cols) row-major: element (i, j) at i * sr + j.
  if ((cols <= 1 || sc == 1) && (rows <= 1 || sr >= min_ld_n))
    return MatLayout{false, rows <= 1 ? min_ld_n : sr};
  // (cols, rows) row-major, transposed: element (i, j) at i + j * sc.
  if ((rows <= 1 || sr == 1) && (cols <= 1 || sc >= min_ld_t))
    return MatLayout{true, cols <= 1 ? min_ld_t : sc};
  return std::nullopt;
}

thread_local std::vector<GemmCall>* g_gemm_log = nullptr;

void log_gemm(DType dtype, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t count = 1,
              bool a_batched = false, bool b_batched = false) {
  if (g_gemm_log) g_gemm_log->push_back({dtype, ta, tb, M, N, K, count, a_batched, b_batched});
}

/// One BLAS call on this thread: C (M, N) = op(A) (M, K) op(B) (K, N) + beta C, row-major.
template <class T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto t_a = ta ? CblasTrans : CblasNoTrans, t_b = tb ? CblasTrans : CblasNoTrans;
  auto i = [](int64_t v) { return static_cast<blasint>(v); };
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, t_a, t_b, i(M), i(N), i(K), 1.0f, A, i(lda), B, i(ldb), beta, C,
                i(ldc));
  else
    cblas_dgemm(CblasRowMajor, t_a, t_b, i(M), i(N), i(K), 1.0, A, i(lda), B, i(ldb), beta, C,
                i(ldc));
}

}  // namespace

void set_gemm_log(std::vector<GemmCall>* log) { g_gemm_log = log; }

int gemm_threads(int64_t M, int64_t N, int64_t K) {
  if (M <= 0 || N <= 0 || K <= 0 || M * N * K < kGemmParallelWork || omp_in_parallel()) return 1;
  const int64_t extent = std::max(M, N);
  return static_cast<int>(std::clamp<int64_t>(extent / kGemmMinBlock, 1, omp_get_max_threads()));
}

namespace {

/// C (M, N) = op(A) (M, K) op(B) (K, N) + beta C, row-major, ldc = leading dim of C. Large
/// products are split over gemm_threads() threads along the longer of M and N, so that each
/// thread packs all of the smaller operand and its own share of the larger one.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  const int nt = gemm_threads(M, N, K);
  if (nt <= 1) return gemm_serial(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
  const bool split_n = N >= M;
  const int64_t extent = split_n ? N : M;
#pragma omp parallel num_threads(nt)
  {
    // Blocks of a multiple of 16 (a cache line of floats) columns or rows.
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t chunk = ((extent + n - 1) / n + 15) / 16 * 16;
    const int64_t b = std::min(extent, t * chunk), e = std::min(extent, b + chunk);
    if (b < e) {
      if (split_n)  // columns [b, e) of C: columns of op(B)
        gemm_serial(ta, tb, M, e - b, K, A, lda, B + (tb ? b * ldb : b), ldb, beta, C + b, ldc);
      else  // rows [b, e) of C: rows of op(A)
        gemm_serial(ta, tb, e - b, N, K, A + (ta ? b : b * lda), lda, B, ldb, beta, C + b * ldc,
                    ldc);
    }
  }
}

/// Throws unless every BLAS size fits a 32-bit blasint.
void check_blas_range(const char* op, const Shape& a, const Shape& b,
                      std::initializer_list<int64_t> sizes) {
  for (int64_t v : sizes)
    ENCORE_CHECK(v <= kBlasMax, op, "shapes ", a, " and ", b,
                 " exceed the 32-bit sizes OpenBLAS accepts (", v, ")");
}

/// x (..., rows, cols) with stride-0 batch dims shrunk to size 1, copied to contiguous memory,
/// then expanded back: a compact copy that keeps batch broadcasting free.
Tensor compact_copy(const Tensor& x) {
  Shape sh = x.shape();
  for (int d = 0; d < sh.size() - 2; ++d)
    if (x.strides()[d] == 0) sh[d] = std::min<int64_t>(sh[d], 1);
  Tensor c = as_strided(x, sh, x.strides(), x.offset()).clone();
  return sh == x.shape() ? c : expand(c, x.shape());
}

/// One matmul operand: its batch strides aligned to the output's batch dims (0 where it
/// broadcasts) and the BLAS layout of each batch matrix.
struct Operand {
  Tensor t;
  Strides batch_strides;
  MatLayout layout;
};

Operand prepare(const Tensor& x, const Shape& batch) {
  int64_t rows = x.size(-2), cols = x.size(-1);
  auto lay = blas_layout(rows, cols, x.stride(-2), x.stride(-1));
  Operand op{x, {}, {}};
  if (!lay) {
    op.t = compact_copy(x);
    lay = blas_layout(rows, cols, op.t.stride(-2), op.t.stride(-1));
  }
  op.layout = *lay;
  int lead = batch.size() - (op.t.dim() - 2);
  op.batch_strides = Dims::filled(batch.size(), 0);
  for (int i = lead; i < batch.size(); ++i)
    if (op.t.shape()[i - lead] != 1) op.batch_strides[i] = op.t.strides()[i - lead];
  return op;
}

/// When a's batch dims and rows merge into one strided dim (and b does not vary over the
/// batch), the rows of every batch matrix form one tall matrix; returns its row stride.
std::optional<int64_t> fold_rows(const Operand& a, const Operand& b, const Shape& batch, int64_t n,
                                 int64_t k) {
  if (a.layout.trans || batch.empty()) return std::nullopt;
  for (int d = 0; d < batch.size(); ++d)
    if (batch[d] != 1 && b.batch_strides[d] != 0) return std::nullopt;
  int64_t size = n, stride = a.t.stride(-2);
  for (int d = batch.size() - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    int64_t st = a.batch_strides[d];
    if (size == 1) {
      stride = st;
    } else if (st != stride * size) {
      return std::nullopt;
    }
    size *= batch[d];
  }
  if (size > kBlasMax) return std::nullopt;
  if (size <= 1) return std::max<int64_t>(1, k);
  if (stride < std::max<int64_t>(1, k)) return std::nullopt;
  return stride;
}

void check_float_pair(const char* op, const Tensor& a, const Tensor& b) {
  ENCORE_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()), op, "dtypes ", a.dtype(), " and ",
               b.dtype(), " of shapes ", a.shape(), " and ", b.shape(),
               " are not supported (needs f32 or f64)");
  ENCORE_CHECK(a.dtype() == b.dtype(), op, "dtypes differ: ", a.dtype(), " and ", b.dtype(),
               " (shapes ", a.shape(), " and ", b.shape(), ")");
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a, "the first operand");
  check_defined("matmul", b, "the second operand");
  ENCORE_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul", "shapes ", a.shape(), " and ", b.shape(),
               ": both operands need at least one dimension");
  check_float_pair("matmul", a, b);
  // 1-D operands: a (k) -> (1, k), b (k) -> (k, 1); the added dims are dropped at the end.
  Tensor A = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Tensor B = b.dim() == 1 ? unsqueeze(b, 1) : b;
  int64_t n = A.size(-2), k = A.size(-1), m = B.size(-1);
  ENCORE_CHECK(B.size(-2) == k, "matmul", "shapes ", a.shape(), " and ", b.shape(),
               " do not align (", k, " vs ", B.size(-2), ")");

  // Batch dims: NumPy broadcasting of A.shape[:-2] and B.shape[:-2].
  int nba = A.dim() - 2, nbb = B.dim() - 2, nb = std::max(nba, nbb);
  Shape batch = Dims::filled(nb, 1);
  for (int i = 0; i < nb; ++i) {
    int ia = i - (nb - nba), ib = i - (nb - nbb);
    int64_t da = ia >= 0 ? A.shape()[ia] : 1, db = ib >= 0 ? B.shape()[ib] : 1;
    ENCORE_CHECK(da == db || da == 1 || db == 1, "matmul", "batch dims of shapes ", a.shape(),
                 " and ", b.shape(), " do not broadcast (", da, " vs ", db, ")");
    batch[i] = da == 1 ? db : da;
  }
  Shape full = batch;  // (batch..., n, m)
  full.push_back(n);
  full.push_back(m);
  Shape result;  // full without the dims added for 1-D operands
  for (int i = 0; i < nb; ++i) result.push_back(batch[i]);
  if (a.dim() > 1) result.push_back(n);
  if (b.dim() > 1) result.push_back(m);

  int64_t total = checked_numel("matmul", full);
  if (total == 0) return empty(result, a.dtype());
  if (k == 0) return zeros(result, a.dtype());
  Tensor out = empty(full, a.dtype());

  Operand pa = prepare(A, batch), pb = prepare(B, batch);
  check_blas_range("matmul", a.shape(), b.shape(), {n, m, k, pa.layout.ld, pb.layout.ld});
  dispatch_float("matmul", a.dtype(), [&]<class T>() {
    const T* ap = pa.t.data<T>();
    const T* bp = pb.t.data<T>();
    T* op = out.data<T>();
    if (auto ld = fold_rows(pa, pb, batch, n, k)) {
      // One gemm: (batch * n, k) @ (k, m) -> contiguous (batch * n, m).
      log_gemm(a.dtype(), false, pb.layout.trans, total / m, m, k);
      gemm<T>(false, pb.layout.trans, total / m, m, k, ap, *ld, bp, pb.layout.ld, T(0), op, m);
      return;
    }
    const int64_t nbatch = total / (n * m);
    auto varies = [&](const Operand& o) {
      for (int d = 0; d < nb; ++d)
        if (batch[d] != 1 && o.batch_strides[d] != 0) return true;
      return false;
    };
    log_gemm(a.dtype(), pa.layout.trans, pb.layout.trans, n, m, k, nbatch, varies(pa), varies(pb));
    // out[i] (n, m) = A[i] (n, k) @ B[i] (k, m), for batch indices [begin, end).
    auto run = [&](int64_t begin, int64_t end) {
      int64_t idx[kMaxDims] = {};
      int64_t oa = 0, ob = 0;
      int64_t rest = begin;
      for (int d = nb - 1; d >= 0; --d) {  // unravel begin, row-major
        idx[d] = rest % batch[d];
        rest /= batch[d];
        oa += idx[d] * pa.batch_strides[d];
        ob += idx[d] * pb.batch_strides[d];
      }
      for (int64_t i = begin; i < end; ++i) {
        gemm<T>(pa.layout.trans, pb.layout.trans, n, m, k, ap + oa, pa.layout.ld, bp + ob,
                pb.layout.ld, T(0), op + i * n * m, m);
        for (int d = nb - 1; d >= 0; --d) {  // next batch index, row-major
          oa += pa.batch_strides[d];
          ob += pb.batch_strides[d];
          if (++idx[d] < batch[d]) break;
          oa -= pa.batch_strides[d] * batch[d];
          ob -= pb.batch_strides[d] * batch[d];
          idx[d] = 0;
        }
      }
    };
    // Products too small to split each (a convolution's per-image products): the batch is
    // split over the threads instead, whole products per thread.
    const bool split_batch = nbatch > 1 && gemm_threads(n, m, k) == 1 && !omp_in_parallel() &&
                             nbatch * n * m * k >= kGemmParallelWork;
    const int64_t nt = split_batch ? std::min<int64_t>(omp_get_max_threads(), nbatch) : 1;
    if (nt > 1) {
#pragma omp parallel num_threads(static_cast <int>(nt))
      {
        const int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
        const int64_t chunk = (nbatch + nth - 1) / nth;
        const int64_t b = std::min(nbatch, t * chunk), e = std::min(nbatch, b + chunk);
        if (b < e) run(b, e);
      }
    } else {
      run(0, nbatch);
    }
  });
  return result == full ? out : view(out, result);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_defined("linear", x, "the input");
  check_defined("linear", w, "the weight");
  ENCORE_CHECK(x.dim() >= 1 && w.dim() == 2, "linear", "input ", x.shape(), " and weight ",
               w.shape(), ": needs input (..., in) and weight (out, in)");
  check_float_pair("linear", x, w);
  int64_t in = x.size(-1), out_f = w.size(0);
  ENCORE_CHECK(w.size(1) == in, "linear", "input ", x.shape(), " and weight ", w.shape(),
               " do not align (", in, " vs ", w.size(1), ")");
  if (bias.defined()) {
    ENCORE_CHECK(bias.dim() == 1 && bias.size(0) == out_f, "linear", "bias ", bias.shape(),
                 " does not match weight ", w.shape(), " (needs [", out_f, "])");
    ENCORE_CHECK(bias.dtype() == x.dtype(), "linear", "bias dtype ", bias.dtype(),
                 " differs from input dtype ", x.dtype());
  }
  Shape lead = x.shape();  // x (lead..., in) -> out (lead..., out_f)
  lead.pop_back();
  int64_t rows = checked_numel("linear", lead);
  Shape result = lead;
  result.push_back(out_f);
  Tensor out = empty(result, x.dtype());
  if (rows == 0 || out_f == 0) return out;

  dispatch_float("linear", x.dtype(), [&]<class T>() {
    T* op = out.data<T>();
    // out (rows, out_f): every row starts as the bias (or zero when there is none).
    if (bias.defined()) {
      const T* bp = bias.data<T>();
      int64_t bs = bias.stride(0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < out_f; ++j) op[r * out_f + j] = bp[j * bs];
    } else if (in == 0) {
      std::fill(op, op + rows * out_f, T(0));
    }
    if (in == 0) return;
    // x (rows, in): x itself when 2-D, else a view (a copy when strides forbid one).
    Tensor x2 = x.dim() == 2 ? x : reshape(x, {rows, in});
    auto lx = blas_layout(rows, in, x2.stride(0), x2.stride(1));
    if (!lx) {
      x2 = x2.contiguous();
      lx = blas_layout(rows, in, x2.stride(0), x2.stride(1));
    }
    Tensor w2 = w;
    auto lw = blas_layout(out_f, in, w2.stride(0), w2.stride(1));
    if (!lw) {
      w2 = w2.contiguous();
      lw = blas_layout(out_f, in, w2.stride(0), w2.stride(1));
    }
    check_blas_range("linear", x.shape(), w.shape(), {rows, out_f, in, lx->ld, lw->ld});
    // out (rows, out_f) = x (rows, in) @ w^T (in, out_f) + out; w^T is a transpose flag.
    log_gemm(x.dtype(), lx->trans, !lw->trans, rows, out_f, in);
    gemm<T>(lx->trans, !lw->trans, rows, out_f, in, x2.data<T>(), lx->ld, w2.data<T>(), lw->ld,
            bias.defined() ? T(1) : T(0), op, out_f);
  });
  return out;
}

}  // namespace encore::raw
