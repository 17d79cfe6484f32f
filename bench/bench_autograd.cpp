// Per-op overhead of the tape: a chain of ~1000 small ops (16-element add, mul, tanh)
// recorded forward and differentiated, in encore and — in the same run — in PyTorch's eager
// autograd (bench/torch_overhead.py through Debian's /usr/bin/python3). Prints one JSON object
// per line and the ratio.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/autograd.h"

using namespace encore;

namespace {

struct Stats {
  double median, min, max;
};

Stats summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// Reads a numeric field from a one-line JSON object (enough for our own script's output).
double json_number(const std::string& line, const std::string& key) {
  auto pos = line.find("\"" + key + "\":");
  if (pos == std::string::npos) return -1;
  return std::stod(line.substr(pos + key.size() + 3));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"encore tape overhead vs PyTorch eager autograd"};
  int ops = 999, reps = 50, size = 16, threads = 1;
  std::string python = "/usr/bin/python3", script = "bench/torch_overhead.py";
  bool no_torch = false;
  app.add_option("--ops", ops, "ops in the chain (multiple of 3)");
  app.add_option("--reps", reps, "timed repetitions");
  app.add_option("--size", size, "elements per tensor");
  app.add_option("--threads", threads, "threads for encore and torch");
  app.add_option("--python", python, "python with torch");
  app.add_option("--script", script, "path to bench/torch_overhead.py");
  app.add_flag("--no-torch", no_torch, "skip the PyTorch side");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  Tensor x = randn({size});
  Tensor c1 = full({size}, 0.01), c2 = full({size}, 0.99);
  std::vector<double> times;
  double grad_sum = 0;
  for (int rep = 0; rep < reps + 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    GradientTape tape;
    tape.watch(x);
    Tensor h = x;
    for (int i = 0; i < ops / 3; ++i) {
      h = h + c1;
      h = h * c2;
      h = tanh(h);
    }
    Tensor loss = sum(h);
    Tensor g = tape.gradient(loss, x);
    auto t1 = std::chrono::steady_clock::now();
    if (rep >= 3) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    grad_sum = raw::reduce(raw::ReduceOp::sum, g).item();
  }
  int recorded = (ops / 3) * 3 + 1;
  Stats s = summarise(times);
  double ns_per_op = s.median * 1e6 / recorded;
  std::printf(
      "{\"name\":\"autograd_chain_encore\",\"ops\":%d,\"size\":%d,\"median_ms\":%.4f,"
      "\"min_ms\":%.4f,\"max_ms\":%.4f,\"reps\":%d,\"ns_per_op\":%.1f,\"check_grad_sum\":%.6g}\n",
      recorded, size, s.median, s.min, s.max, reps, ns_per_op, grad_sum);

  if (no_torch) return 0;
  std::ostringstream cmd;
  cmd << python << " " << script << " --ops " << ops << " --reps " << reps << " --size " << size
      << " --threads " << threads << " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.str().c_str(), "r"), pclose);
  std::string out;
  if (pipe) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe.get())) out += buf;
  }
  double torch_ns = json_number(out, "ns_per_op");
  if (torch_ns <= 0) {
    std::printf("{\"name\":\"autograd_chain_pytorch\",\"skipped\":\"%s\"}\n",
                "python3-torch not available (install python3-torch)");
    return 0;
  }
  std::cout << out;
  std::printf(
      "{\"name\":\"autograd_chain_ratio\",\"encore_ns_per_op\":%.1f,\"pytorch_ns_per_op\":%.1f,"
      "\"speedup_vs_pytorch\":%.2f}\n",
      ns_per_op, torch_ns, torch_ns / ns_per_op);
  return 0;
}
