// Bad input on public paths: each probe is one row of the README's probe table (Reliability).
// Every probe must throw an encore::Error (never crash, never another exception) whose message
// holds each expected part: the op the user called and the shapes, dtypes or values at fault.
// The README's table shows what the user sees: each probe's row there must be the start of the
// message it gives now (paths normalised), so the table cannot go stale. To rewrite the table,
// run test_reliability with ENCORE_PROBE_TABLE=FILE: it appends every probe's full row to FILE.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "models/models.h"
#include "nn/nn.h"
#include "tensor/io.h"
#include "tests/support/support.h"

using namespace encore;
namespace fs = std::filesystem;

namespace {

struct Probe {
  const char* what;
  std::function<void()> call;
  std::vector<std::string> parts;  // each must occur in the message
};

/// A file in the temp directory holding bytes, removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& bytes) {
    static int n = 0;
    path = (fs::temp_directory_path() /
            ("encore_probe_" + std::to_string(::getpid()) + "_" + std::to_string(n++)))
               .string();
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

/// The message as the README shows it: its first line, the source root dropped from paths,
/// probe temp files as FILE.
std::string normalised(std::string msg) {
  msg = msg.substr(0, msg.find('\n'));
  const std::string root = testing::source_path("").string();
  for (size_t at; !root.empty() && (at = msg.find(root)) != std::string::npos;)
    msg.erase(at, root.size() + (root.back() == '/' ? 0 : 1));
  // Temp files are <temp dir>/encore_probe_<pid>_<n> (TempFile). No std::regex: GCC 12 warns
  // inside <regex> under the sanitizers (-Wmaybe-uninitialized), and -Werror makes that fatal.
  const std::string temp = (fs::temp_directory_path() / "encore_probe_").string();
  for (size_t at; (at = msg.find(temp)) != std::string::npos;) {
    size_t end = at + temp.size();
    while (end < msg.size() &&
           (std::isdigit(static_cast<unsigned char>(msg[end])) || msg[end] == '_'))
      ++end;
    msg.replace(at, end - at, "FILE");
  }
  return msg;
}

/// The README's row for a probe, "| what | `message` |", or "" when it has none.
std::string readme_row(const std::string& what) {
  static const std::string readme = [] {
    std::ifstream in(testing::source_path("README.md"));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  const std::string start = "\n| " + what + " | `";
  const size_t at = readme.find(start);
  if (at == std::string::npos) return "";
  const size_t end = readme.find('\n', at + 1);
  return readme.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

void run(const std::vector<Probe>& probes) {
  for (const Probe& p : probes) {
    SUBCASE(p.what) {
      const std::string msg = testing::expect_error(p.call);
      CAPTURE(msg);
      for (const std::string& part : p.parts)
        CHECK_MESSAGE(msg.find(part) != std::string::npos, "expected '", part, "'");
      const std::string shown = normalised(msg);
      if (const char* table = std::getenv("ENCORE_PROBE_TABLE"))
        std::ofstream(table, std::ios::app) << "| " << p.what << " | `" << shown << "` |\n";
      // The README cell may cut a long message short, but what it shows must be what users get.
      const std::string row = readme_row(p.what);
      const std::string head = "| " + std::string(p.what) + " | `";
      CHECK_MESSAGE(row.size() > head.size() + 2, "README.md has no probe row for '",
                    std::string(p.what), "'");
      if (row.size() <= head.size() + 2) continue;
      const std::string cell = row.substr(head.size(), row.size() - head.size() - 3);
      CHECK_MESSAGE(shown.rfind(cell, 0) == 0, "README.md's row for '", std::string(p.what),
                    "' shows\n  ", cell, "\nbut the message is now\n  ", shown);
    }
  }
}

Tensor f32(const Shape& s) { return zeros(s); }

}  // namespace

TEST_CASE("probes: layers") {
  Generator g(1);
  run({
      {"Linear: wrong input width",
       [&] {
         nn::Linear(4, 2, {.gen = &g}).forward(f32({3, 5}));
       },
       {"Linear", "[3, 5]"}},
      {"Linear: i64 input",
       [&] {
         nn::Linear(4, 2, {.gen = &g}).forward(zeros({3, 4}, DType::i64));
       },
       {"Linear", "i64", "[3, 4]", "f32"}},
      {"Linear: zero features", [&] { nn::Linear(0, 2, {.gen = &g}); }, {"Linear", "0"}},
      {"Linear: 2^31 x 2^31 weight",
       [&] { nn::Linear(int64_t{1} << 31, int64_t{1} << 31); },
       {"Linear"}},
      {"Conv2d: wrong channels",
       [&] {
         nn::Conv2d(3, 4, 3, {.gen = &g}).forward(f32({1, 2, 8, 8}));
       },
       {"Conv2d", "[1, 2, 8, 8]"}},
      {"Conv2d: input smaller than kernel",
       [&] {
         nn::Conv2d(1, 1, 5, {.gen = &g}).forward(f32({1, 1, 3, 3}));
       },
       {"Conv2d", "[1, 1, 3, 3]"}},
      {"Conv2d: f64 input, f32 weight",
       [&] {
         nn::Conv2d(1, 2, 3, {.gen = &g}).forward(zeros({1, 1, 8, 8}, DType::f64));
       },
       {"Conv2d", "[1, 1, 8, 8]", "f64", "f32"}},
      {"Conv2d: 2^31 output channels",
       [&] { nn::Conv2d(1, int64_t{1} << 31, 3, {.gen = &g}); },
       {"Conv2d", "2147483648"}},
      {"ConvTranspose2d: f64 input, f32 weight",
       [&] {
         nn::ConvTranspose2d(2, 1, 3, {.gen = &g}).forward(zeros({1, 2, 4, 4}, DType::f64));
       },
       {"ConvTranspose2d", "f64"}},
      {"Conv2d: stride 0", [&] { nn::Conv2d(1, 1, 3, {.stride = 0, .gen = &g}); }, {"Conv2d"}},
      {"BatchNorm1d: wrong features",
       [&] {
         nn::BatchNorm1d(4).forward(f32({8, 5}));
       },
       {"BatchNorm1d", "[8, 5]"}},
      {"BatchNorm1d: i64 input",
       [&] {
         nn::BatchNorm1d(4).forward(zeros({8, 4}, DType::i64));
       },
       {"BatchNorm1d", "i64"}},
      {"BatchNorm2d: 2-d input",
       [&] {
         nn::BatchNorm2d(4).forward(f32({8, 4}));
       },
       {"BatchNorm2d", "[8, 4]"}},
      {"Embedding: index out of range",
       [&] { nn::Embedding(10, 3).forward(full({2}, 10, DType::i64)); },
       {"Embedding", "10"}},
      {"Embedding: f32 indices",
       [&] { nn::Embedding(10, 3).forward(f32({2})); },
       {"Embedding", "f32"}},
      {"Dropout: p = 1.5", [&] { nn::Dropout(1.5); }, {"Dropout", "1.5"}},
      {"BatchNorm1d: eps 0", [] { nn::BatchNorm1d(4, {.eps = 0}); }, {"BatchNorm1d", "eps", "0"}},
      {"BatchNorm1d: f64 input, f32 layer",
       [] {
         nn::BatchNorm1d(4).forward(zeros({8, 4}, DType::f64));
       },
       {"BatchNorm1d", "[8, 4]", "f64", "f32"}},
      {"LSTM: wrong input width",
       [&] {
         nn::LSTM(4, 8).forward(f32({2, 5, 3}));
       },
       {"LSTM", "[2, 5, 3]"}},
  });
}

TEST_CASE("probes: losses") {
  run({
      {"mse_loss: shapes differ",
       [] {
         nn::mse_loss(f32({4, 3}), f32({4, 2}));
       },
       {"mse_loss", "[4, 3]", "[4, 2]"}},
      {"mse_loss: empty batch",
       [] {
         nn::mse_loss(f32({0, 3}), f32({0, 3}));
       },
       {"mse_loss"}},
      {"mse_loss: i64 input",
       [] { nn::mse_loss(zeros({4}, DType::i64), zeros({4}, DType::i64)); },
       {"mse_loss", "i64"}},
      {"mse_loss: f32 prediction, f64 target",
       [] { nn::mse_loss(f32({4}), zeros({4}, DType::f64)); },
       {"mse_loss", "[4]", "f32", "f64"}},
      {"binary_cross_entropy: f32 prediction, f64 target",
       [] { nn::binary_cross_entropy(full({4}, 0.5), zeros({4}, DType::f64)); },
       {"binary_cross_entropy", "f32", "f64"}},
      {"cross_entropy: label out of range",
       [] {
         nn::cross_entropy(f32({2, 5}), full({2}, 5, DType::i64));
       },
       {"cross_entropy", "5"}},
      {"cross_entropy: f32 labels",
       [] {
         nn::cross_entropy(f32({2, 5}), f32({2}));
       },
       {"cross_entropy", "f32"}},
      {"cross_entropy: batch sizes differ",
       [] {
         nn::cross_entropy(f32({2, 5}), zeros({3}, DType::i64));
       },
       {"cross_entropy", "[3]"}},
      {"binary_cross_entropy: shapes differ",
       [] { nn::binary_cross_entropy(f32({4}), f32({5})); },
       {"binary_cross_entropy", "[4]"}},
      {"bce_with_logits: shapes differ",
       [] {
         nn::bce_with_logits(f32({4}), f32({2, 2}));
       },
       {"bce_with_logits", "[4]"}},
      {"gaussian_kl: shapes differ",
       [] {
         nn::gaussian_kl(f32({2, 3}), f32({2, 4}));
       },
       {"gaussian_kl", "[2, 3]"}},
  });
}

TEST_CASE("probes: tensors and ops") {
  run({
      {"matmul: inner sizes differ",
       [] {
         matmul(f32({2, 3}), f32({4, 5}));
       },
       {"matmul", "[2, 3]", "[4, 5]"}},
      {"reshape: element count differs",
       [] {
         reshape(f32({2, 3}), {4, 2});
       },
       {"reshape", "[2, 3]"}},
      {"concat: sizes differ off the dim",
       [] {
         concat({f32({2, 3}), f32({2, 4})}, 0);
       },
       {"concat"}},
      {"narrow: past the end", [] { narrow(f32({4}), 0, 2, 3); }, {"narrow"}},
      {"narrow: length near INT64_MAX",
       [] { narrow(f32({4}), 0, 1, std::numeric_limits<int64_t>::max()); },
       {"narrow", "[4]"}},
      {"arange: step pointing away from end", [] { arange(0, 10, -1); }, {"arange", "-1"}},
      {"randn: stddev -1",
       [] { randn({2}, default_generator(), DType::f32, 0, -1); },
       {"randn", "-1"}},
      {"rand: low > high",
       [] { rand({2}, default_generator(), DType::f32, 1, 0); },
       {"rand", "[1, 0)"}},
      {"from_buffer: null data",
       [] { from_buffer(nullptr, {2}, DType::f32); },
       {"from_buffer", "[2]"}},
      {"select: index out of range", [] { select(f32({4}), 0, 4); }, {"select"}},
      {"ones: 2^62 elements", [] { ones({int64_t{1} << 62}); }, {"ones"}},
      {"zeros: 2^31 x 2^31",
       [] {
         zeros({int64_t{1} << 31, int64_t{1} << 31});
       },
       {"zeros"}},
      {"sum: dim out of range",
       [] {
         sum(f32({2, 3}), {2});
       },
       {"sum"}},
      {"softmax: dim out of range",
       [] {
         softmax(f32({2, 3}), 5);
       },
       {"softmax"}},
      {"index_select: index out of range",
       [] {
         index_select(f32({4, 2}), 0, full({1}, 4, DType::i64));
       },
       {"index_select"}},
  });
}

TEST_CASE("probes: files") {
  const TempFile junk("hello, not a data file");
  const TempFile empty("");
  run({
      {"read_idx: missing file",
       [] { io::read_idx("/nonexistent/encore/x.idx"); },
       {"read_idx", "/nonexistent/encore/x.idx"}},
      {"read_idx: text file", [&] { io::read_idx(junk.path); }, {"read_idx", junk.path}},
      {"read_idx: empty file", [&] { io::read_idx(empty.path); }, {"read_idx", "0 bytes"}},
      {"read_idx: a directory",
       [] { io::read_idx(fs::temp_directory_path().string()); },
       {"read_idx"}},
      {"read_image: text file", [&] { io::read_image(junk.path); }, {"read_image", "not a PNG"}},
      {"read_image: channels 2", [&] { io::read_image(junk.path, 2); }, {"read_image", "channels"}},
      {"load_safetensors: text file",
       [&] { io::load_safetensors(junk.path); },
       {"load_safetensors", junk.path}},
      {"load_safetensors: empty file",
       [&] { io::load_safetensors(empty.path); },
       {"load_safetensors", "truncated"}},
      {"write_png: 2 channels",
       [] {
         io::write_png("/tmp/x.png", f32({2, 4, 4}));
       },
       {"write_png", "[2, 4, 4]"}},
      {"load_mnist: missing folder",
       [] { nn::load_mnist("/nonexistent/encore/mnist"); },
       {"/nonexistent/encore/mnist"}},
  });
}

TEST_CASE("probes: models") {
  Generator g(1);
  run({
      {"DenseAutoencoder: wrong input width",
       [&] {
         models::DenseAutoencoder m({.hidden = {16}, .code = 4, .gen = &g});
         m.loss(f32({2, 10}));
       },
       {"DenseAutoencoder", "[2, 10]"}},
      {"ConvAutoencoder: flat input",
       [&] {
         models::ConvAutoencoder m({.gen = &g});
         m.loss(f32({2, 784}));
       },
       {"ConvAutoencoder", "[2, 784]"}},
      {"VAE: empty batch",
       [&] {
         models::VAE m({.hidden = 8, .code = 2, .gen = &g});
         m.loss(f32({0, 784}), g);
       },
       {"VAE", "[0, 784]"}},
  });
}

TEST_CASE("probes: checkpoints and state") {
  const std::string dir = testing::source_path("tests/fuzz/corpus/checkpoint").string();
  auto load_into_other_model = [&](const std::string& file) {
    Generator g(1);
    models::DenseAutoencoder model({.hidden = {16}, .code = 4, .gen = &g});
    optim::Adam opt(model.parameters());
    Generator gen(2);
    nn::load_checkpoint(dir + "/" + file, model, opt, gen);
  };
  run({
      {"load_checkpoint: another model's checkpoint",
       [&] { load_into_other_model("valid-mid-pass.safetensors"); },
       {"load_checkpoint"}},
      {"load_checkpoint: a plain safetensors file",
       [&] { load_into_other_model("bad-not-checkpoint.safetensors"); },
       {"load_checkpoint", "not an encore training checkpoint"}},
      {"load_checkpoint: not a safetensors file",
       [&] { load_into_other_model("../../../../README.md"); },
       {"load_checkpoint: load_safetensors:", "README.md", "header length"}},
      {"Module::load_state_dict: missing keys",
       [] {
         nn::Linear l(2, 2);
         l.load_state_dict({}, true);
       },
       {"weight"}},
      {"BatchNorm1d: num_batches_tracked -1",
       [] {
         nn::BatchNorm1d bn(2);
         auto st = bn.state_dict();
         st["num_batches_tracked"] = full(Shape{}, -1, DType::i64);
         bn.load_state_dict(st, true);
       },
       {"num_batches_tracked"}},
      {"Adam: gradients of another shape",
       [] {
         Tensor w = zeros({2, 2});
         optim::Adam opt({w});
         opt.step({zeros({3})});
       },
       {"Adam"}},
      {"SGD: nesterov without momentum",
       [] {
         Tensor w = zeros({2});
         optim::SGD opt({w}, {.lr = 0.1, .nesterov = true});
       },
       {"SGD", "esterov"}},
      {"StepDecay: step_size 0",
       [] { optim::StepDecay{.step_size = 0}(1); },
       {"StepDecay", "step_size"}},
      {"StepDecay: gamma -1",
       [] { optim::StepDecay{.gamma = -1}(1); },
       {"StepDecay", "gamma", "-1"}},
      {"ExponentialDecay: gamma 0",
       [] { optim::ExponentialDecay{.gamma = 0}(1); },
       {"ExponentialDecay", "gamma", "0"}},
      {"Adam: f64 gradient for an f32 parameter",
       [] {
         Tensor w = zeros({2});
         optim::Adam opt({w});
         opt.step({zeros({2}, DType::f64)});
       },
       {"Adam", "f64"}},
  });
}
