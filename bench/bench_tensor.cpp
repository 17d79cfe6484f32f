// bench_tensor: the tensor layer's speed against the code it wraps. Each measurement runs an
// encore call beside a baseline doing the same work directly, and prints one JSON object per
// line for each of the two, the encore line with "ratio" = encore median / baseline median
// (1.0 = no overhead; the target for gemm is <= 1.05).
//
//   gemm: the dense autoencoder's first layer, N=128, in=784, out=400, all f32:
//     forward   Y  = X (128x784) @ W (400x784)^T   raw::matmul with a transposed view of W,
//                                                   and raw::linear (with bias)
//     backward  dX = dY (128x400) @ W (400x784)
//               dW = dY^T (400x128) @ X (128x784)   dY^T a transposed view
//     baseline: the same cblas_sgemm call on raw buffers (for linear: bias copy + beta = 1).
//   elementwise: add, mul, sigmoid on 2^20 floats (raw::binary / raw::unary) against a loop
//     over std::vector, parallelised with OpenMP over the same threads.
//
//   build/bench/bench_tensor [--reps N] [--threads N] [--filter TEXT]
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace {

using encore::Tensor;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct Config {
  int reps = 0;           ///< 0: chosen per measurement from the time budget
  int threads = 0;        ///< 0: OpenMP's default (OMP_NUM_THREADS, else one per core)
  double budget_s = 1.0;  ///< timed seconds per measurement pair when reps = 0
  std::string filter;
};

struct Stats {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  int reps = 0;
};

Stats summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  const double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  return {median, ms.front(), ms.back(), static_cast<int>(n)};
}

double time_once_ms(const std::function<void()>& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Times a and b alternately (a b, b a, a b, ...) so that noise from other processes on the
/// machine falls on both alike. Warm-up first: at least 3 calls each and 50 ms in all.
std::pair<Stats, Stats> time_pair(const Config& cfg, const std::function<void()>& a,
                                  const std::function<void()>& b) {
  double warm_ms = 0, per_pair_ms = INFINITY;  // the fastest warm-up pair: spikes ignored
  for (int i = 0; i < 3 || warm_ms < 50; ++i) {
    const double pair_ms = time_once_ms(a) + time_once_ms(b);
    per_pair_ms = std::min(per_pair_ms, pair_ms);
    warm_ms += pair_ms;
  }
  int reps = cfg.reps;
  if (reps <= 0) {
    reps = static_cast<int>(cfg.budget_s * 1e3 / std::max(per_pair_ms, 1e-3));
    reps = std::clamp(reps, 15, 2000);
  }
  // Without --reps, also stop once 3x the budget has passed (a loaded machine makes later
  // reps slower than the warm-up promised), keeping at least 15 reps.
  const double cap_ms = cfg.reps > 0 ? INFINITY : 3e3 * cfg.budget_s;
  const auto start = Clock::now();
  std::vector<double> ta, tb;
  for (int i = 0; i < reps; ++i) {
    if (i >= 15 && std::chrono::duration<double, std::milli>(Clock::now() - start).count() > cap_ms)
      break;
    if (i % 2) {
      tb.push_back(time_once_ms(b));
      ta.push_back(time_once_ms(a));
    } else {
      ta.push_back(time_once_ms(a));
      tb.push_back(time_once_ms(b));
    }
  }
  return {summarize(std::move(ta)), summarize(std::move(tb))};
}

double max_abs_diff(const Tensor& t, const std::vector<float>& v) {
  std::vector<float> tv = t.to_vector<float>();
  double d = tv.size() == v.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < std::min(tv.size(), v.size()); ++i)
    d = std::max(d, static_cast<double>(std::fabs(tv[i] - v[i])));
  return d;
}

void print_line(const Json& j) {
  std::cout << j.dump() << "\n";
  std::cout.flush();
}

/// Prints the baseline line and the encore line (with the ratio) of one measurement.
/// figure(ms) gives the derived figure named figure_name (gflops or gb_per_s).
void report(const std::string& name, const std::string& what, const std::string& baseline,
            const Stats& enc, const Stats& base, const char* figure_name,
            const std::function<double(double)>& figure, double diff) {
  auto line = [&](const std::string& impl, const Stats& s) {
    Json j;
    j["name"] = name + "/" + impl;
    j["median_ms"] = s.median_ms;
    j["min_ms"] = s.min_ms;
    j["max_ms"] = s.max_ms;
    j["reps"] = s.reps;
    j[figure_name] = figure(s.median_ms);
    j["threads"] = encore::get_num_threads();
    return j;
  };
  Json b = line(baseline, base);
  print_line(b);
  Json e = line("encore", enc);
  e["what"] = what;
  e["baseline"] = name + "/" + baseline;
  e["ratio"] = enc.median_ms / base.median_ms;
  e["max_abs_diff"] = diff;
  print_line(e);
}

bool selected(const Config& cfg, const std::string& name) {
  return cfg.filter.empty() || name.find(cfg.filter) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// gemm at the dense autoencoder's first layer

void bench_gemm(const Config& cfg) {
  const int n = 128, in = 784, out = 400;
  encore::Generator gen(0);
  Tensor x = encore::randn({n, in}, gen);    // (128, 784)
  Tensor w = encore::randn({out, in}, gen);  // (400, 784)
  Tensor b = encore::randn({out}, gen);      // (400)
  Tensor dy = encore::randn({n, out}, gen);  // (128, 400)
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pb = b.data<float>();
  const float* pdy = dy.data<float>();
  const double flops = 2.0 * n * in * out;  // the same for all three products
  auto gflops = [&](double ms) { return flops / (ms * 1e-3) / 1e9; };

  if (selected(cfg, "gemm_fwd_matmul")) {
    std::vector<float> y(size_t(n) * out);
    Tensor ye;
    auto [e, d] = time_pair(
        cfg, [&] { ye = encore::raw::matmul(x, encore::raw::transpose(w, 0, 1)); },
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.f, px, in, pw, in, 0.f,
                      y.data(), out);
        });
    report("gemm_fwd_matmul", "raw::matmul(X (128x784), W (400x784) transposed view)",
           "cblas_sgemm", e, d, "gflops", gflops, max_abs_diff(ye, y));
  }

  if (selected(cfg, "gemm_fwd_linear")) {
    std::vector<float> y(size_t(n) * out);
    Tensor ye;
    auto [e, d] = time_pair(
        cfg, [&] { ye = encore::raw::linear(x, w, b); },
        [&] {
          for (int i = 0; i < n; ++i) std::copy(pb, pb + out, y.data() + size_t(i) * out);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.f, px, in, pw, in, 1.f,
                      y.data(), out);
        });
    report("gemm_fwd_linear", "raw::linear(X (128x784), W (400x784), b (400))",
           "bias_copy+cblas_sgemm", e, d, "gflops", gflops, max_abs_diff(ye, y));
  }

  if (selected(cfg, "gemm_bwd_dx")) {
    std::vector<float> dx(size_t(n) * in);
    Tensor dxe;
    auto [e, d] = time_pair(
        cfg, [&] { dxe = encore::raw::matmul(dy, w); },
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.f, pdy, out, pw, in,
                      0.f, dx.data(), in);
        });
    report("gemm_bwd_dx", "raw::matmul(dY (128x400), W (400x784))", "cblas_sgemm", e, d, "gflops",
           gflops, max_abs_diff(dxe, dx));
  }

  if (selected(cfg, "gemm_bwd_dw")) {
    std::vector<float> dw(size_t(out) * in);
    Tensor dwe;
    auto [e, d] = time_pair(
        cfg, [&] { dwe = encore::raw::matmul(encore::raw::transpose(dy, 0, 1), x); },
        [&] {
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.f, pdy, out, px, in,
                      0.f, dw.data(), in);
        });
    report("gemm_bwd_dw", "raw::matmul(dY^T (400x128) transposed view, X (128x784))", "cblas_sgemm",
           e, d, "gflops", gflops, max_abs_diff(dwe, dw));
  }
}

// ---------------------------------------------------------------------------------------------
// elementwise throughput

void bench_elementwise(const Config& cfg) {
  using encore::raw::BinaryOp;
  using encore::raw::UnaryOp;
  const int64_t n = int64_t(1) << 20;
  encore::Generator gen(1);
  Tensor a = encore::randn({n}, gen);
  Tensor b = encore::randn({n}, gen);
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  std::vector<float> vc(static_cast<size_t>(n));
  float* pc = vc.data();
  const float* pa = va.data();
  const float* pb = vb.data();
  // Bytes each call reads and writes, for the gb_per_s figure.
  auto gbps = [&](int arrays) {
    return [=](double ms) { return arrays * 4.0 * double(n) / (ms * 1e-3) / 1e9; };
  };
  const bool par = n >= encore::kParallelGrain;

  if (selected(cfg, "add_1M")) {
    Tensor c;
    auto [e, d] = time_pair(
        cfg, [&] { c = encore::raw::binary(BinaryOp::add, a, b); },
        [&] {
#pragma omp parallel for schedule(static) if (par)
          for (int64_t i = 0; i < n; ++i) pc[i] = pa[i] + pb[i];
        });
    report("add_1M", "raw::binary(add) on 2^20 f32", "loop_omp", e, d, "gb_per_s", gbps(3),
           max_abs_diff(c, vc));
  }

  // The same add with the previous result released before the next is made, so one block
  // is reused (c = add(a, b) otherwise alternates two blocks, doubling the working set).
  if (selected(cfg, "add_1M_release")) {
    Tensor c;
    auto [e, d] = time_pair(
        cfg,
        [&] {
          c = Tensor();
          c = encore::raw::binary(BinaryOp::add, a, b);
        },
        [&] {
#pragma omp parallel for schedule(static) if (par)
          for (int64_t i = 0; i < n; ++i) pc[i] = pa[i] + pb[i];
        });
    report("add_1M_release", "raw::binary(add), previous result released first", "loop_omp", e, d,
           "gb_per_s", gbps(3), max_abs_diff(c, vc));
  }

  if (selected(cfg, "mul_1M")) {
    Tensor c;
    auto [e, d] = time_pair(
        cfg, [&] { c = encore::raw::binary(BinaryOp::mul, a, b); },
        [&] {
#pragma omp parallel for schedule(static) if (par)
          for (int64_t i = 0; i < n; ++i) pc[i] = pa[i] * pb[i];
        });
    report("mul_1M", "raw::binary(mul) on 2^20 f32", "loop_omp", e, d, "gb_per_s", gbps(3),
           max_abs_diff(c, vc));
  }

  if (selected(cfg, "sigmoid_1M")) {
    Tensor c;
    auto [e, d] = time_pair(
        cfg, [&] { c = encore::raw::unary(UnaryOp::sigmoid, a); },
        [&] {
#pragma omp parallel for schedule(static) if (par)
          for (int64_t i = 0; i < n; ++i) pc[i] = 1.f / (1.f + std::exp(-pa[i]));
        });
    report("sigmoid_1M", "raw::unary(sigmoid) on 2^20 f32", "loop_omp", e, d, "gb_per_s", gbps(2),
           max_abs_diff(c, vc));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"encore tensor benchmarks: one JSON object per line per measurement."};
  app.add_option("--reps", cfg.reps, "timed repetitions per measurement (0: from a 1 s budget)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app.add_option("--threads", cfg.threads, "threads for OpenMP and OpenBLAS (0: OpenMP's default)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--filter", cfg.filter, "run only measurements whose name contains this");
  CLI11_PARSE(app, argc, argv);

  try {
    encore::set_num_threads(cfg.threads > 0 ? cfg.threads : encore::get_num_threads());
    bench_gemm(cfg);
    bench_elementwise(cfg);
  } catch (const encore::Error& e) {
    std::cerr << "bench_tensor failed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
