// One training step (forward, gradient, optimizer step) of each model of models/ at the seeds'
// settings, on synthetic data of the right shape. bench/torch_models.py (PyTorch) and
// bench/libtorch_models.cpp (LibTorch) implement the same models with the same shapes and print
// the same JSON; scripts/bench runs the three side by side.
//
//   bench_models --model dense_ae|conv_ae|lstm_ae|recursive_ae|vae [--threads N] [--steps K]
//                [--warmup W] [--batch-size B] [--decoder repeat|seq2seq] [--steps-per-seq T]
//                [--impl literal|fast] [--leaves L]
//
// Prints one JSON object: impl, model, variant, batch, threads, steps, median_ms, min_ms,
// max_ms (per step), peak_rss_mb (the process's high-water mark), first_step_end (wall clock,
// seconds since the epoch, at the end of the first step: the launcher subtracts its own launch
// time), blas_kernel, blas_config, cpu, loss (of the last step, a sanity check).
//
// The data: dense_ae and vae (B, 784) uniform in [0, 1); conv_ae (B, 1, 28, 28) the same;
// lstm_ae (B, T, 8) 0/1 with every sequence T steps long (no padding, so the three
// implementations compute the same thing); recursive_ae the seed's 20 leaves (ones(10) * i,
// i = 0..9, twice) for 20 leaves, else (L, 10) standard normal.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/models.h"
#include "tensor/gemm_log.h"

using namespace encore;

namespace {

std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

std::string cpu_name() {
  return cpuinfo_field("model name") + " (family " + cpuinfo_field("cpu family") + ", model " +
         cpuinfo_field("model") + ")";
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

/// One training step: returns the loss value.
using StepFn = std::function<double()>;

/// The usual step: loss on the tape, gradient, Adam.
StepFn adam_step(nn::Module& model, optim::Adam& opt, std::function<Tensor()> loss_fn) {
  Tensors params = model.parameters();
  return [&model, &opt, loss_fn, params] {
    (void)model;
    GradientTape tape;
    Tensor loss = loss_fn();
    double value = loss.item<double>();
    opt.step(tape.gradient(loss, params));
    return value;
  };
}

/// Median seconds of f() over at least 5 runs and 20 ms (after one untimed run).
template <class F>
double median_seconds(F&& f) {
  f();
  std::vector<double> t;
  double total = 0;
  while (t.size() < 5 || (total < 0.02 && t.size() < 1000)) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    total += t.back();
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// The GEMM floor of one step: the products the step ran (recorded by raw::set_gemm_log), each
/// timed alone through raw::matmul at the same shapes, transposes, batching and threads, on
/// uniform data. Returns {GEMM GFLOP per step, the floor in ms}.
std::pair<double, double> gemm_floor(const StepFn& step, Generator& gen) {
  std::vector<raw::GemmCall> calls;
  raw::set_gemm_log(&calls);
  step();
  raw::set_gemm_log(nullptr);
  double flops = 0, seconds = 0;
  std::vector<std::pair<raw::GemmCall, double>> timed;  // shapes already timed
  auto same = [](const raw::GemmCall& a, const raw::GemmCall& b) {
    return a.dtype == b.dtype && a.ta == b.ta && a.tb == b.tb && a.M == b.M && a.N == b.N &&
           a.K == b.K && a.count == b.count && a.a_batched == b.a_batched &&
           a.b_batched == b.b_batched;
  };
  NoGrad no_grad;
  for (const raw::GemmCall& c : calls) {
    flops += c.flops();
    auto hit = std::find_if(timed.begin(), timed.end(), [&](auto& p) { return same(p.first, c); });
    if (hit != timed.end()) {
      seconds += hit->second;
      continue;
    }
    // op(A) (M, K): stored (K, M) and transposed when ta; likewise B; a batch dim in front of
    // the operand that differs per product.
    auto operand = [&](bool trans, bool batched, int64_t rows, int64_t cols) {
      Shape s = trans ? Shape{cols, rows} : Shape{rows, cols};
      if (batched) s.insert(0, c.count);
      Tensor t = rand(s, gen, c.dtype);
      return trans ? transpose(t, -1, -2) : t;
    };
    Tensor a = operand(c.ta, c.a_batched, c.M, c.K), b = operand(c.tb, c.b_batched, c.K, c.N);
    if (c.count > 1 && !c.a_batched && !c.b_batched)
      b = expand(unsqueeze(b, 0), {c.count, c.K, c.N});
    const double s = median_seconds([&] { (void)raw::matmul(a, b); });
    timed.push_back({c, s});
    seconds += s;
  }
  return {flops / 1e9, seconds * 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_models: one training step of each model of models/"};
  std::string model_name = "dense_ae", decoder = "repeat", impl = "fast";
  int threads = 1, steps = 20, warmup = 3;
  int64_t batch = 0, seq_steps = 10, leaves = 20;
  app.add_option("--model", model_name, "dense_ae, conv_ae, lstm_ae, recursive_ae or vae")
      ->check(CLI::IsMember({"dense_ae", "conv_ae", "lstm_ae", "recursive_ae", "vae"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "threads for OpenMP and OpenBLAS")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--steps", steps, "timed steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps first (the first one is timed from launch)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--batch-size", batch,
                 "examples per step (0: the seed's: 128, conv_ae 1000, lstm_ae 100)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--decoder", decoder, "lstm_ae: repeat or seq2seq (teacher-forced)")
      ->check(CLI::IsMember({"repeat", "seq2seq"}))
      ->capture_default_str();
  app.add_option("--steps-per-seq", seq_steps, "lstm_ae: steps per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--impl", impl, "recursive_ae: literal or fast")
      ->check(CLI::IsMember({"literal", "fast"}))
      ->capture_default_str();
  app.add_option("--leaves", leaves, "recursive_ae: leaves (20: the seed's)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 20))
      ->capture_default_str();
  bool floor = false;
  app.add_flag("--gemm-floor", floor,
               "also time the step's GEMM products alone at the same shapes: gemm_gflop, "
               "gemm_floor_ms and gemm_share (floor / median step) in the output");
  CLI11_PARSE(app, argc, argv);

  try {
    set_num_threads(threads);
    Generator gen(0);
    std::shared_ptr<nn::Module> model;
    std::unique_ptr<optim::Adam> opt;
    StepFn step;
    std::string variant;
    Tensor x, leaf_values;

    if (model_name == "dense_ae") {
      if (batch == 0) batch = 128;
      auto m =
          std::make_shared<models::DenseAutoencoder>(models::DenseAutoencoderOptions{.gen = &gen});
      x = rand({batch, 784}, gen);
      opt = std::make_unique<optim::Adam>(m->parameters(), optim::AdamOptions{.lr = 1e-3});
      step = adam_step(*m, *opt, [m, &x] { return m->loss(x); });
      model = m;
    } else if (model_name == "vae") {
      if (batch == 0) batch = 128;
      auto m = std::make_shared<models::VAE>(models::VAEOptions{.gen = &gen});
      x = rand({batch, 784}, gen);
      opt = std::make_unique<optim::Adam>(m->parameters(), optim::AdamOptions{.lr = 1e-3});
      step = adam_step(*m, *opt, [m, &x, &gen] { return m->loss(x, gen); });
      model = m;
    } else if (model_name == "conv_ae") {
      if (batch == 0) batch = 1000;
      auto m =
          std::make_shared<models::ConvAutoencoder>(models::ConvAutoencoderOptions{.gen = &gen});
      x = rand({batch, 1, 28, 28}, gen);
      opt = std::make_unique<optim::Adam>(m->parameters(), optim::AdamOptions{.lr = 1e-4});
      step = adam_step(*m, *opt, [m, &x] { return m->loss(x); });
      model = m;
    } else if (model_name == "lstm_ae") {
      if (batch == 0) batch = 100;
      variant = decoder;
      auto m = std::make_shared<models::LSTMAutoencoder>(models::LSTMAutoencoderOptions{
          .decoder = decoder == "repeat" ? models::LSTMDecoderKind::repeat
                                         : models::LSTMDecoderKind::seq2seq,
          .gen = &gen});
      x = gt(rand({batch, seq_steps, 8}, gen), 0.875).to(DType::f32);
      opt = std::make_unique<optim::Adam>(m->parameters(), optim::AdamOptions{.lr = 1e-3});
      step = adam_step(*m, *opt, [m, &x] { return m->loss(x); });
      model = m;
    } else {  // recursive_ae
      batch = 1;
      variant = impl + "_" + std::to_string(leaves);
      auto m = std::make_shared<models::RecursiveAutoencoder>(
          10, models::RecursiveOptions{.impl = models::parse_merge_impl(impl), .gen = &gen});
      leaf_values = leaves == 20 ? models::seed_leaves(10) : randn({leaves, 10}, gen);
      opt = std::make_unique<optim::Adam>(m->parameters(),
                                          optim::AdamOptions{.lr = 1e-3, .eps = 1e-7});
      step = adam_step(*m, *opt, [m, &leaf_values] { return m->loss(leaf_values); });
      model = m;
    }

    double first_step_end = 0, loss = 0;
    for (int i = 0; i < warmup; ++i) {
      loss = step();
      if (i == 0) first_step_end = unix_seconds();
    }
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      loss = step();
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const size_t h = ms.size() / 2;
    const double median = ms.size() % 2 ? ms[h] : 0.5 * (ms[h - 1] + ms[h]);
    std::string floor_json;
    if (floor) {
      auto [gflop, floor_ms] = gemm_floor(step, gen);
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    ",\"gemm_gflop\":%.4f,\"gemm_floor_ms\":%.4f,\"gemm_share\":%.4f", gflop,
                    floor_ms, floor_ms / median);
      floor_json = buf;
    }
    std::printf(
        "{\"impl\":\"encore\",\"model\":\"%s\",\"variant\":\"%s\",\"batch\":%lld,\"threads\":%d,"
        "\"steps\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,\"max_ms\":%.4f,\"peak_rss_mb\":%.1f,"
        "\"first_step_end\":%.6f,\"blas_kernel\":\"%s\",\"blas_config\":\"%s\",\"cpu\":\"%s\","
        "\"loss\":%.6g%s}\n",
        model_name.c_str(), variant.c_str(), static_cast<long long>(batch), threads, steps, median,
        ms.front(), ms.back(), peak_rss_mb(), first_step_end, json_escape(blas_kernel()).c_str(),
        json_escape(blas_config()).c_str(), json_escape(cpu_name()).c_str(), loss,
        floor_json.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_models: %s\n", e.what());
    return 1;
  }
  return 0;
}
