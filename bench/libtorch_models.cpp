// The models of bench/bench_models.cpp in LibTorch (Debian's libtorch-dev, the C++ user's
// alternative), for side-by-side timing: the same shapes, synthetic data, training step
// (forward, backward, Adam) and one-line JSON output (impl "libtorch"). Built only when
// LibTorch is found (meson option libtorch). The code is idiomatic LibTorch of each model.
//
//   libtorch_models --model dense_ae [--threads N] [--steps K] [--batch-size B] ...
//
// --threads sets at::set_num_threads (intra-op). OpenBLAS's threads follow
// OPENBLAS_NUM_THREADS, which the launcher (scripts/bench) sets.
#include <dlfcn.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace F = torch::nn::functional;

namespace {

struct DenseAEImpl : torch::nn::Module {
  torch::nn::Sequential encoder{nullptr}, decoder{nullptr};
  DenseAEImpl() {
    const std::vector<int64_t> sizes = {784, 400, 300, 200, 20};
    torch::nn::Sequential enc, dec;
    auto bn = [](int64_t n) {
      return torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(n).eps(1e-3).momentum(0.1));
    };
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      enc->push_back(torch::nn::Linear(sizes[i], sizes[i + 1]));
      enc->push_back(bn(sizes[i + 1]));
      enc->push_back(torch::nn::ReLU());
    }
    for (size_t i = sizes.size() - 1; i > 0; --i) {
      dec->push_back(torch::nn::Linear(sizes[i], sizes[i - 1]));
      if (i > 1) {
        dec->push_back(bn(sizes[i - 1]));
        dec->push_back(torch::nn::ReLU());
      }
    }
    encoder = register_module("encoder", enc);
    decoder = register_module("decoder", dec);
  }
  torch::Tensor loss(const torch::Tensor& x) {
    torch::Tensor out = torch::sigmoid(decoder->forward(encoder->forward(x)));
    return torch::linalg::vector_norm(out - x, 2, {1}, false, c10::nullopt).mean();
  }
};
TORCH_MODULE(DenseAE);

struct VAEImpl : torch::nn::Module {
  torch::nn::Linear fc1{784, 400}, fc21{400, 20}, fc22{400, 20}, fc3{20, 400}, fc4{400, 784};
  VAEImpl() {
    register_module("fc1", fc1);
    register_module("fc21", fc21);
    register_module("fc22", fc22);
    register_module("fc3", fc3);
    register_module("fc4", fc4);
  }
  torch::Tensor loss(const torch::Tensor& x) {
    torch::Tensor h = torch::relu(fc1->forward(x));
    torch::Tensor mu = fc21->forward(h), logvar = fc22->forward(h);
    torch::Tensor z = mu + torch::exp(0.5 * logvar) * torch::randn_like(mu);
    torch::Tensor logits = fc4->forward(torch::relu(fc3->forward(z)));
    torch::Tensor bce = F::binary_cross_entropy_with_logits(
        logits, x, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum));
    torch::Tensor kld = -0.5 * torch::sum(1 + logvar - mu.pow(2) - logvar.exp());
    return (bce + kld) / x.size(0);
  }
};
TORCH_MODULE(VAE);

struct ConvAEImpl : torch::nn::Module {
  static constexpr int64_t c = 32;
  torch::nn::Conv2d conv1{torch::nn::Conv2dOptions(1, c, 3).stride(2)};
  torch::nn::Conv2d conv2{torch::nn::Conv2dOptions(c, c, 3).stride(2)};
  torch::nn::Linear code{c * 6 * 6, 100}, dense{100, 7 * 7 * c};
  torch::nn::ConvTranspose2d deconv1{
      torch::nn::ConvTranspose2dOptions(c, 2 * c, 3).stride(2).padding(1).output_padding(1)};
  torch::nn::ConvTranspose2d deconv2{
      torch::nn::ConvTranspose2dOptions(2 * c, c, 3).stride(2).padding(1).output_padding(1)};
  torch::nn::ConvTranspose2d deconv3{torch::nn::ConvTranspose2dOptions(c, 1, 3).padding(1)};
  torch::nn::ConvTranspose2d deconv4{torch::nn::ConvTranspose2dOptions(1, 1, 3).padding(1)};
  ConvAEImpl() {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("code", code);
    register_module("dense", dense);
    register_module("deconv1", deconv1);
    register_module("deconv2", deconv2);
    register_module("deconv3", deconv3);
    register_module("deconv4", deconv4);
  }
  torch::Tensor loss(const torch::Tensor& x) {
    torch::Tensor h = torch::relu(conv2->forward(torch::relu(conv1->forward(x))));
    torch::Tensor z = code->forward(h.flatten(1));
    h = torch::relu(dense->forward(z)).view({-1, c, 7, 7});
    h = torch::relu(deconv2->forward(torch::relu(deconv1->forward(h))));
    torch::Tensor logits = deconv4->forward(deconv3->forward(h));
    return F::binary_cross_entropy_with_logits(logits, x);
  }
};
TORCH_MODULE(ConvAE);

struct LSTMAEImpl : torch::nn::Module {
  bool repeat;
  torch::nn::LSTM encoder{nullptr}, decoder{nullptr};
  torch::nn::Linear output{nullptr};
  explicit LSTMAEImpl(bool repeat_decoder, int64_t input = 8, int64_t hidden = 20)
      : repeat(repeat_decoder) {
    encoder = register_module(
        "encoder", torch::nn::LSTM(torch::nn::LSTMOptions(input, hidden).batch_first(true)));
    decoder = register_module(
        "decoder",
        torch::nn::LSTM(torch::nn::LSTMOptions(repeat ? hidden : input, hidden).batch_first(true)));
    output = register_module("output", torch::nn::Linear(hidden, input));
  }
  torch::Tensor loss(const torch::Tensor& x) {
    auto [enc_out, state] = encoder->forward(x);
    (void)enc_out;
    torch::Tensor out;
    if (repeat) {
      torch::Tensor h = std::get<0>(state)[0];
      out = std::get<0>(decoder->forward(h.unsqueeze(1).expand({-1, x.size(1), -1}).contiguous()));
    } else {
      using namespace torch::indexing;
      torch::Tensor shifted = torch::cat(
          {torch::zeros_like(x.index({Slice(), Slice(0, 1)})), x.index({Slice(), Slice(None, -1)})},
          1);
      out = std::get<0>(decoder->forward(shifted, state));
    }
    return F::binary_cross_entropy_with_logits(output->forward(out), x);
  }
};
TORCH_MODULE(LSTMAE);

struct RecursiveAEImpl : torch::nn::Module {
  torch::nn::Linear encoder{20, 10}, decoder{10, 20};
  RecursiveAEImpl() {
    register_module("encoder", encoder);
    register_module("decoder", decoder);
  }
  using Node = std::pair<torch::Tensor, torch::Tensor>;  // embedding, score
  Node merge(const Node& a, const Node& b) {
    torch::Tensor c = torch::cat({a.first, b.first});
    torch::Tensor h = encoder->forward(c);
    torch::Tensor o = decoder->forward(h);
    return {h, 0.5 * torch::sum((o - c).pow(2)) + a.second + b.second};
  }
  torch::Tensor loss(const torch::Tensor& leaves) {
    torch::Tensor zero = torch::zeros({});
    std::vector<Node> x;
    for (int64_t i = 0; i < leaves.size(0); ++i) x.push_back({leaves[i], zero});
    while (x.size() > 1) {
      double best = std::numeric_limits<double>::infinity();
      size_t bi = 0, bj = 0;
      Node node;
      for (size_t i = 0; i < x.size(); ++i)
        for (size_t j = i + 1; j < x.size(); ++j) {
          Node cand = merge(x[i], x[j]);
          double s = cand.second.item<double>();
          if (s < best) {
            best = s;
            bi = i;
            bj = j;
            node = cand;
          }
        }
      x[bi] = node;
      x.erase(x.begin() + std::ptrdiff_t(bj));
    }
    return x[0].second;
  }
};
TORCH_MODULE(RecursiveAE);

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

std::string blas_kernel() {
  using Fn = const char* (*)();
  auto f = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = f ? f() : nullptr;
  return name ? name : "unknown";
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"libtorch_models: the models of bench_models in LibTorch"};
  std::string model_name = "dense_ae", decoder = "repeat", impl = "literal";
  int threads = 1, steps = 20, warmup = 3;
  int64_t batch = 0, seq_steps = 10, leaves = 20;
  app.add_option("--model", model_name)
      ->check(CLI::IsMember({"dense_ae", "conv_ae", "lstm_ae", "recursive_ae", "vae"}));
  app.add_option("--threads", threads, "at::set_num_threads")->check(CLI::Range(1, 1024));
  app.add_option("--steps", steps)->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup)->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch)->check(CLI::NonNegativeNumber);
  app.add_option("--decoder", decoder)->check(CLI::IsMember({"repeat", "seq2seq"}));
  app.add_option("--steps-per-seq", seq_steps)->check(CLI::PositiveNumber);
  app.add_option("--impl", impl)->check(CLI::IsMember({"literal"}));
  app.add_option("--leaves", leaves)->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  CLI11_PARSE(app, argc, argv);

  at::set_num_threads(threads);
  torch::manual_seed(0);
  std::string variant;
  torch::Tensor data;
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor()> loss_fn;
  double lr = 1e-3, eps = 1e-8;
  if (model_name == "dense_ae") {
    if (batch == 0) batch = 128;
    DenseAE m;
    data = torch::rand({batch, 784});
    loss_fn = [m, &data]() mutable { return m->loss(data); };
    module = m.ptr();
  } else if (model_name == "vae") {
    if (batch == 0) batch = 128;
    VAE m;
    data = torch::rand({batch, 784});
    loss_fn = [m, &data]() mutable { return m->loss(data); };
    module = m.ptr();
  } else if (model_name == "conv_ae") {
    if (batch == 0) batch = 1000;
    ConvAE m;
    data = torch::rand({batch, 1, 28, 28});
    lr = 1e-4;
    loss_fn = [m, &data]() mutable { return m->loss(data); };
    module = m.ptr();
  } else if (model_name == "lstm_ae") {
    if (batch == 0) batch = 100;
    variant = decoder;
    LSTMAE m(decoder == "repeat");
    data = (torch::rand({batch, seq_steps, 8}) > 0.875).to(torch::kFloat);
    loss_fn = [m, &data]() mutable { return m->loss(data); };
    module = m.ptr();
  } else {
    batch = 1;
    variant = impl + "_" + std::to_string(leaves);
    RecursiveAE m;
    data = leaves == 20 ? torch::cat({torch::ones({10, 10}) * torch::arange(10.0).unsqueeze(1),
                                      torch::ones({10, 10}) * torch::arange(10.0).unsqueeze(1)})
                        : torch::randn({leaves, 10});
    eps = 1e-7;
    loss_fn = [m, &data]() mutable { return m->loss(data); };
    module = m.ptr();
  }
  torch::optim::Adam opt(module->parameters(), torch::optim::AdamOptions(lr).eps(eps));
  auto step = [&] {
    opt.zero_grad();
    torch::Tensor loss = loss_fn();
    double value = loss.item<double>();
    loss.backward();
    opt.step();
    return value;
  };

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
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::string cpu = cpuinfo_field("model name") + " (family " + cpuinfo_field("cpu family") +
                    ", model " + cpuinfo_field("model") + ")";
  std::printf(
      "{\"impl\":\"libtorch\",\"model\":\"%s\",\"variant\":\"%s\",\"batch\":%lld,\"threads\":%d,"
      "\"blas_threads\":\"%s\",\"steps\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,\"max_ms\":%.4f,"
      "\"peak_rss_mb\":%.1f,\"first_step_end\":%.6f,\"blas_kernel\":\"%s\",\"cpu\":\"%s\","
      "\"loss\":%.6g}\n",
      model_name.c_str(), variant.c_str(), static_cast<long long>(batch), threads,
      blas_threads ? blas_threads : "", steps, median, ms.front(), ms.back(),
      double(u.ru_maxrss) / 1024.0, first_step_end, blas_kernel().c_str(), cpu.c_str(), loss);
  return 0;
}
