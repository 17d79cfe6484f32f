// Bad input on public paths: each probe is one row of the README's probe table (Reliability).
// Every probe must throw an encore::Error (never crash, never another exception) whose message
// holds each expected part: the op the user called and the shapes, dtypes or values at fault.
// The README's table shows what the user sees: each probe's row there must be the start of the
// message it gives now (paths normalised), so the table cannot go stale. To rewrite the table,
// run test_reliability with ENCORE_PROBE_TABLE=FILE: it appends every probe's full row to FILE.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "models/models.h"
#include "nn/nn.h"
#include "tensor/io.h"
#include "tests/fuzz/harness.h"
#include "tests/support/support.h"

using namespace encore;
namespace fs = std::filesystem;

namespace {

struct Probe {
  std::string what;
  /// Must throw an encore::Error whose message holds each of parts.
  std::function<void()> call;
  std::vector<std::string> parts;
  /// An expected-result probe (input that is legitimately not an error): set instead of call,
  /// it must not throw, and what it returns, described by gives(), must equal parts[0].
  std::function<std::string()> result = nullptr;
};

/// What a call returned, as the README shows it: "returns [0, 2] f32, empty",
/// "returns [3, 2] f32, finite", "returns [] f32, NaN in 1 of 1".
std::string gives(const Tensor& t) {
  if (!t.defined()) return "returns an undefined tensor";
  std::ostringstream o;
  o << "returns " << t.shape() << " " << t.dtype();
  if (t.numel() == 0) return o.str() + ", empty";
  const std::vector<double> v = t.to_vector<double>();
  int64_t nan = 0, inf = 0;
  for (double x : v) {
    nan += std::isnan(x) ? 1 : 0;
    inf += std::isinf(x) ? 1 : 0;
  }
  if (nan == 0 && inf == 0) return o.str() + ", finite";
  if (nan) o << ", NaN in " << nan << " of " << v.size();
  if (inf) o << ", inf in " << inf << " of " << v.size();
  return o.str();
}

/// An expected-result probe: f's result must be described as expected.
Probe returns(std::string what, std::function<Tensor()> f, std::string expected) {
  return {std::move(what), nullptr, {std::move(expected)}, [f] { return gives(f()); }};
}
/// An expected-result probe of a number (a learning rate, a norm).
Probe returns_value(std::string what, std::function<double()> f, std::string expected) {
  return {std::move(what), nullptr, {std::move(expected)}, [f] {
            std::ostringstream o;
            o << "returns " << f();
            return o.str();
          }};
}

std::string str(const Shape& s) { return to_string(s); }
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

/// The README groups its probe rows by the test case they come from.
std::string g_category;
struct Category {
  explicit Category(std::string name) { g_category = std::move(name); }
};

void run(const std::vector<Probe>& probes) {
  std::set<std::string> names;
  for (const Probe& p : probes)
    CHECK_MESSAGE(names.insert(p.what).second, "two probes are named '", p.what, "'");
  for (const Probe& p : probes) {
    SUBCASE(p.what.c_str()) {
      // Failures are reported without throwing: an exception escaping a subcase would stop
      // doctest from running the probes after it.
      std::string msg;
      bool error = false;
      try {
        if (p.result)
          msg = p.result();
        else
          p.call();
      } catch (const Error& e) {
        msg = e.what();
        error = true;
      } catch (const std::exception& e) {
        FAIL_CHECK("'", p.what, "' threw a non-encore exception: ", e.what());
        continue;
      }
      CAPTURE(msg);
      if (p.result) {
        if (error) {
          FAIL_CHECK("'", p.what, "' should return but threw: ", msg);
          continue;
        }
        CHECK(msg == p.parts.at(0));
      } else {
        if (!error) {
          FAIL_CHECK("'", p.what, "' should throw an encore::Error but returned");
          continue;
        }
        for (const std::string& part : p.parts)
          CHECK_MESSAGE(msg.find(part) != std::string::npos, "expected '", part, "'");
      }
      const std::string shown = normalised(msg);
      if (const char* table = std::getenv("ENCORE_PROBE_TABLE")) {
        static std::string last;
        std::ofstream out(table, std::ios::app);
        if (g_category != last) out << "## " << (last = g_category) << "\n";
        out << "| " << p.what << " | `" << shown << "` |\n";
      }
      // The README cell may cut a long message short, but what it shows must be what users get.
      const std::string row = readme_row(p.what);
      const std::string head = "| " + p.what + " | `";
      CHECK_MESSAGE(row.size() > head.size() + 2, "README.md has no probe row for '", p.what, "'");
      if (row.size() <= head.size() + 2) continue;
      const std::string cell = row.substr(head.size(), row.size() - head.size() - 3);
      CHECK_MESSAGE(shown.rfind(cell, 0) == 0, "README.md's row for '", p.what, "' shows\n  ", cell,
                    "\nbut the message is now\n  ", shown);
    }
  }
}

Tensor f32(const Shape& s) { return zeros(s); }

}  // namespace

TEST_CASE("probes: layers") {
  const Category category("layers");
  Generator g(1);
  run({
      {"Linear: zero features", [&] { nn::Linear(0, 2, {.gen = &g}); }, {"Linear", "0"}},
      {"Linear: 2^31 x 2^31 weight",
       [&] { nn::Linear(int64_t{1} << 31, int64_t{1} << 31); },
       {"Linear"}},
      {"Conv2d: input smaller than kernel",
       [&] {
         nn::Conv2d(1, 1, 5, {.gen = &g}).forward(f32({1, 1, 3, 3}));
       },
       {"Conv2d", "[1, 1, 3, 3]"}},
      {"Conv2d: 2^31 output channels",
       [&] { nn::Conv2d(1, int64_t{1} << 31, 3, {.gen = &g}); },
       {"Conv2d", "2147483648"}},
      {"Conv2d: stride 0", [&] { nn::Conv2d(1, 1, 3, {.stride = 0, .gen = &g}); }, {"Conv2d"}},
      {"Embedding: index out of range",
       [&] { nn::Embedding(10, 3).forward(full({2}, 10, DType::i64)); },
       {"Embedding", "10"}},
      {"Embedding: f32 indices",
       [&] { nn::Embedding(10, 3).forward(f32({2})); },
       {"Embedding", "f32"}},
      {"Dropout: p = 1.5", [&] { nn::Dropout(1.5); }, {"Dropout", "1.5"}},
      {"BatchNorm1d: eps 0", [] { nn::BatchNorm1d(4, {.eps = 0}); }, {"BatchNorm1d", "eps", "0"}},
  });
}

TEST_CASE("probes: losses") {
  const Category category("losses");
  run({
      {"mse_loss: shapes differ",
       [] {
         nn::mse_loss(f32({4, 3}), f32({4, 2}));
       },
       {"mse_loss", "[4, 3]", "[4, 2]"}},
      {"mse_loss: i64 input",
       [] { nn::mse_loss(zeros({4}, DType::i64), zeros({4}, DType::i64)); },
       {"mse_loss", "i64"}},
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
  const Category category("tensors and ops");
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
  const Category category("files");
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
  const Category category("models");
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
  const Category category("checkpoints and state");
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

// ---------------------------------------------------------------------------------------------
// Sweeps: every public layer, loss, reduction and op with the same kinds of bad input.

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

using Forward = std::function<Tensor(const Tensor&)>;

/// A layer of nn/ and what each kind of input gives: "" means it must throw an encore::Error
/// naming the layer (and the shape or dtype at fault); otherwise the expected gives() result.
struct LayerSpec {
  std::string name;
  std::function<Forward()> make;  // a fresh layer's forward
  Shape good;                     // a valid input
  std::vector<Shape> wrong_rank, wrong_features;
  Shape empty;  // a zero-sized batch
  std::string empty_gives, i64_gives, f64_gives, nan_gives, inf_gives;
};

Generator& probe_gen() {
  static Generator g(1);
  return g;
}

template <class M, class... A>
std::function<Forward()> layer(A... args) {
  return [=] {
    auto m = std::make_shared<M>(args...);
    return Forward([m](const Tensor& x) { return m->forward(x); });
  };
}

std::vector<Probe> layer_probes(const LayerSpec& L) {
  std::vector<Probe> out;
  auto throws_or_gives = [&](const std::string& what, Tensor x, const std::string& expected,
                             std::vector<std::string> parts) {
    auto make = L.make;
    if (expected.empty())
      out.push_back({L.name + ": " + what, [make, x] { make()(x); }, std::move(parts)});
    else
      out.push_back(returns(
          L.name + ": " + what, [make, x] { return make()(x); }, expected));
  };
  for (const Shape& s : L.wrong_rank)
    throws_or_gives("wrong rank " + str(s), zeros(s), "", {L.name, str(s)});
  for (const Shape& s : L.wrong_features)
    throws_or_gives("wrong features " + str(s), zeros(s), "", {L.name, str(s)});
  throws_or_gives("zero-sized batch " + str(L.empty), zeros(L.empty), L.empty_gives,
                  {L.name, str(L.empty)});
  throws_or_gives("i64 input", zeros(L.good, DType::i64), L.i64_gives, {L.name, "i64"});
  throws_or_gives("f64 input", zeros(L.good, DType::f64), L.f64_gives, {L.name, "f64"});
  throws_or_gives("NaN input", full(L.good, kNaN), L.nan_gives, {L.name, "NaN"});
  throws_or_gives("inf input", full(L.good, kInf), L.inf_gives, {L.name, "inf"});
  throws_or_gives("undefined input", Tensor(), "", {L.name, "undefined"});
  return out;
}

const std::string kF64Mismatch = "";  // a layer with f32 weights refuses f64 input

}  // namespace

TEST_CASE("probes: layer sweep") {
  const Category category("layer sweep");
  Generator* g = &probe_gen();
  std::vector<LayerSpec> specs = {
      {"Linear",
       layer<nn::Linear>(int64_t{4}, int64_t{2}, nn::LinearOptions{.gen = g}),
       {3, 4},
       {{}},
       {{3, 5}, {3, 4, 5}},
       {0, 4},
       "returns [0, 2] f32, empty",
       "",
       kF64Mismatch,
       "returns [3, 2] f32, NaN in 6 of 6",
       "returns [3, 2] f32, NaN in 6 of 6"},
      {"Conv2d",
       layer<nn::Conv2d>(int64_t{3}, int64_t{4}, int64_t{3}, nn::Conv2dOptions{.gen = g}),
       {2, 3, 8, 8},
       {{3, 8, 8}, {2, 3, 8, 8, 1}},
       {{2, 2, 8, 8}},
       {0, 3, 8, 8},
       "returns [0, 4, 6, 6] f32, empty",
       "",
       kF64Mismatch,
       "returns [2, 4, 6, 6] f32, NaN in 288 of 288",
       "returns [2, 4, 6, 6] f32, NaN in 288 of 288"},
      {"ConvTranspose2d",
       layer<nn::ConvTranspose2d>(int64_t{2}, int64_t{1}, int64_t{3},
                                  nn::ConvTranspose2dOptions{.gen = g}),
       {1, 2, 4, 4},
       {{2, 4, 4}},
       {{1, 3, 4, 4}},
       {0, 2, 4, 4},
       "returns [0, 1, 6, 6] f32, empty",
       "",
       kF64Mismatch,
       "returns [1, 1, 6, 6] f32, NaN in 36 of 36",
       "returns [1, 1, 6, 6] f32, NaN in 32 of 36, inf in 4 of 36"},
      {"BatchNorm1d",
       layer<nn::BatchNorm1d>(int64_t{4}),
       {8, 4},
       {{8}, {2, 4, 3, 3}},
       {{8, 5}, {8, 5, 3}},
       {0, 4},
       "",
       "",
       kF64Mismatch,
       "returns [8, 4] f32, NaN in 32 of 32",
       "returns [8, 4] f32, NaN in 32 of 32"},
      {"BatchNorm2d",
       layer<nn::BatchNorm2d>(int64_t{4}),
       {2, 4, 3, 3},
       {{8, 4}, {4, 3, 3}},
       {{2, 5, 3, 3}},
       {0, 4, 3, 3},
       "",
       "",
       kF64Mismatch,
       "returns [2, 4, 3, 3] f32, NaN in 72 of 72",
       "returns [2, 4, 3, 3] f32, NaN in 72 of 72"},
      {"Dropout",
       layer<nn::Dropout>(0.5, g),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, NaN in 5 of 12, inf in 7 of 12"},
      {"GaussianNoise",
       layer<nn::GaussianNoise>(0.1, nn::NoiseOptions{.gen = g}),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, inf in 12 of 12"},
      {"MaskingNoise",
       layer<nn::MaskingNoise>(0.5, nn::NoiseOptions{.gen = g}),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, NaN in 4 of 12, inf in 8 of 12"},
      {"ReLU",
       layer<nn::ReLU>(),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "returns [3, 4] i64, finite",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, inf in 12 of 12"},
      {"LeakyReLU",
       layer<nn::LeakyReLU>(0.01),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, inf in 12 of 12"},
      {"ELU",
       layer<nn::ELU>(1.0),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, inf in 12 of 12"},
      {"Sigmoid",
       layer<nn::Sigmoid>(),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, finite"},
      {"Tanh",
       layer<nn::Tanh>(),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, finite"},
      {"Softplus",
       layer<nn::Softplus>(),
       {3, 4},
       {},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, inf in 12 of 12"},
      {"Softmax",
       layer<nn::Softmax>(int64_t{-1}),
       {3, 4},
       {{}},
       {},
       {0, 4},
       "returns [0, 4] f32, empty",
       "",
       "returns [3, 4] f64, finite",
       "returns [3, 4] f32, NaN in 12 of 12",
       "returns [3, 4] f32, NaN in 12 of 12"},
      {"Flatten",
       layer<nn::Flatten>(int64_t{1}, int64_t{-1}),
       {2, 3, 4},
       {{}},
       {},
       {0, 3, 4},
       "returns [0, 12] f32, empty",
       "returns [2, 12] i64, finite",
       "returns [2, 12] f64, finite",
       "returns [2, 12] f32, NaN in 24 of 24",
       "returns [2, 12] f32, inf in 24 of 24"},
      {"Reshape",
       layer<nn::Reshape>(Shape{12}),
       {2, 3, 4},
       {},
       {{2, 3, 5}},
       {0, 3, 4},
       "returns [0, 12] f32, empty",
       "returns [2, 12] i64, finite",
       "returns [2, 12] f64, finite",
       "returns [2, 12] f32, NaN in 24 of 24",
       "returns [2, 12] f32, inf in 24 of 24"},
      {"Sequential",
       [g] {
         auto m = std::make_shared<nn::Sequential>(
             std::make_shared<nn::Linear>(4, 3, nn::LinearOptions{.gen = g}),
             std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Linear>(3, 2, nn::LinearOptions{.gen = g}));
         return Forward([m](const Tensor& x) { return m->forward(x); });
       },
       {3, 4},
       {{}},
       {{3, 5}},
       {0, 4},
       "returns [0, 2] f32, empty",
       "",
       kF64Mismatch,
       "returns [3, 2] f32, NaN in 6 of 6",
       "returns [3, 2] f32, NaN in 6 of 6"},
      {"LSTM",
       [g] {
         auto m = std::make_shared<nn::LSTM>(4, 8, nn::RecurrentOptions{.gen = g});
         return Forward([m](const Tensor& x) { return m->forward(x).output; });
       },
       {2, 5, 4},
       {{5, 4}, {2, 5, 4, 1}},
       {{2, 5, 3}},
       {0, 5, 4},
       "",
       "",
       kF64Mismatch,
       "returns [2, 5, 8] f32, NaN in 80 of 80",
       "returns [2, 5, 8] f32, NaN in 80 of 80"},
      {"GRU",
       [g] {
         auto m = std::make_shared<nn::GRU>(4, 8, nn::RecurrentOptions{.gen = g});
         return Forward([m](const Tensor& x) { return m->forward(x).output; });
       },
       {2, 5, 4},
       {{5, 4}, {2, 5, 4, 1}},
       {{2, 5, 3}},
       {0, 5, 4},
       "",
       "",
       kF64Mismatch,
       "returns [2, 5, 8] f32, NaN in 80 of 80",
       "returns [2, 5, 8] f32, NaN in 80 of 80"},
      {"LSTMCell",
       [g] {
         auto m = std::make_shared<nn::LSTMCell>(4, 8, nn::RecurrentOptions{.gen = g});
         return Forward([m](const Tensor& x) { return m->forward(x).h; });
       },
       {2, 4},
       {{4}, {2, 5, 4}},
       {{2, 3}},
       {0, 4},
       "returns [0, 8] f32, empty",
       "",
       kF64Mismatch,
       "returns [2, 8] f32, NaN in 16 of 16",
       "returns [2, 8] f32, NaN in 16 of 16"},
      {"GRUCell",
       [g] {
         auto m = std::make_shared<nn::GRUCell>(4, 8, nn::RecurrentOptions{.gen = g});
         return Forward([m](const Tensor& x) { return m->forward(x); });
       },
       {2, 4},
       {{4}, {2, 5, 4}},
       {{2, 3}},
       {0, 4},
       "returns [0, 8] f32, empty",
       "",
       kF64Mismatch,
       "returns [2, 8] f32, NaN in 16 of 16",
       "returns [2, 8] f32, NaN in 16 of 16"},
  };
  std::vector<Probe> probes;
  for (const LayerSpec& s : specs)
    for (Probe& p : layer_probes(s)) probes.push_back(std::move(p));
  // Embedding takes indices: its own sweep.
  auto emb = [g](const Tensor& ids) {
    nn::Embedding e(10, 3, {.gen = g});
    return e.forward(ids);
  };
  probes.push_back(returns(
      "Embedding: zero-sized batch [0]", [=] { return emb(zeros({0}, DType::i64)); },
      "returns [0, 3] f32, empty"));
  probes.push_back(
      {"Embedding: index -1", [=] { emb(full({2}, -1, DType::i64)); }, {"Embedding", "-1"}});
  probes.push_back({"Embedding: index INT64_MAX",
                    [=] { emb(full({1}, 9.2e18, DType::i64)); },
                    {"Embedding", "outside [0, 10)"}});
  probes.push_back(
      {"Embedding: f64 indices", [=] { emb(zeros({2}, DType::f64)); }, {"Embedding", "f64"}});
  probes.push_back({"Embedding: undefined indices", [=] { emb(Tensor()); }, {"Embedding"}});
  probes.push_back(returns(
      "Embedding: 0-d index", [=] { return emb(zeros({}, DType::i64)); },
      "returns [3] f32, finite"));
  run(probes);
}

TEST_CASE("probes: layer options") {
  const Category category("layer options");
  Generator* g = &probe_gen();
  auto conv = [g](nn::Conv2dOptions o, int64_t k = 3) {
    o.gen = g;
    return [o, k] { nn::Conv2d(1, 1, k, o); };
  };
  auto deconv = [g](nn::ConvTranspose2dOptions o, int64_t k = 3) {
    o.gen = g;
    return [o, k] { nn::ConvTranspose2d(1, 1, k, o); };
  };
  auto conv_fwd = [g](nn::Conv2dOptions o, Shape in, int64_t k = 3) {
    o.gen = g;
    return [o, k, in] { nn::Conv2d(1, 1, k, o).forward(zeros(in)); };
  };
  auto deconv_fwd = [g](nn::ConvTranspose2dOptions o, Shape in, int64_t k = 3) {
    o.gen = g;
    return [o, k, in] { nn::ConvTranspose2d(1, 1, k, o).forward(zeros(in)); };
  };
  run({
      {"Linear: in_features -1", [g] { nn::Linear(-1, 2, {.gen = g}); }, {"Linear", "-1"}},
      {"Linear: out_features INT64_MAX", [] { nn::Linear(1, kMax); }, {"Linear"}},
      {"Conv2d: kernel 0", conv({}, 0), {"Conv2d", "0"}},
      {"Conv2d: kernel INT64_MAX", conv({}, kMax), {"Conv2d"}},
      {"Conv2d: padding -1", conv({.padding = -1}), {"Conv2d", "-1"}},
      {"Conv2d: dilation 0", conv({.dilation = 0}), {"Conv2d", "dilation"}},
      {"Conv2d: in_channels 0", [g] { nn::Conv2d(0, 1, 3, {.gen = g}); }, {"Conv2d", "0"}},
      returns(
          "Conv2d: stride INT64_MAX",
          [g] {
            return nn::Conv2d(1, 1, 3, {.stride = kMax, .gen = g}).forward(zeros({1, 1, 8, 8}));
          },
          "returns [1, 1, 1, 1] f32, finite"),
      {"Conv2d: padding INT64_MAX", conv_fwd({.padding = kMax}, {1, 1, 8, 8}), {"Conv2d"}},
      {"Conv2d: dilation INT64_MAX", conv_fwd({.dilation = kMax}, {1, 1, 8, 8}), {"Conv2d"}},
      {"Conv2d: valid mode with padding 1",
       conv({.padding = 1, .padding_mode = nn::PaddingMode::valid}),
       {"Conv2d"}},
      {"ConvTranspose2d: stride 0", deconv({.stride = 0}), {"ConvTranspose2d", "stride"}},
      {"ConvTranspose2d: kernel 0", deconv({}, 0), {"ConvTranspose2d", "0"}},
      {"ConvTranspose2d: output_padding = stride",
       deconv({.stride = 2, .output_padding = 2}),
       {"ConvTranspose2d", "output padding 2"}},
      {"ConvTranspose2d: padding -1", deconv({.padding = -1}), {"ConvTranspose2d", "-1"}},
      {"ConvTranspose2d: stride INT64_MAX",
       deconv_fwd({.stride = kMax}, {1, 1, 4, 4}),
       {"ConvTranspose2d"}},
      {"ConvTranspose2d: dilation INT64_MAX",
       deconv_fwd({.dilation = kMax}, {1, 1, 4, 4}),
       {"ConvTranspose2d"}},
      {"ConvTranspose2d: padding crops everything",
       deconv_fwd({.padding = 5}, {1, 1, 4, 4}),
       {"ConvTranspose2d"}},
      {"BatchNorm1d: num_features 0", [] { nn::BatchNorm1d(0); }, {"BatchNorm1d", "0"}},
      {"BatchNorm1d: eps NaN", [] { nn::BatchNorm1d(4, {.eps = kNaN}); }, {"BatchNorm1d", "eps"}},
      {"BatchNorm1d: eps -1", [] { nn::BatchNorm1d(4, {.eps = -1}); }, {"BatchNorm1d", "eps"}},
      {"BatchNorm1d: momentum -1",
       [] { nn::BatchNorm1d(4, {.momentum = -1}); },
       {"BatchNorm1d", "momentum", "-1"}},
      {"BatchNorm1d: momentum 1.5",
       [] { nn::BatchNorm1d(4, {.momentum = 1.5}); },
       {"BatchNorm1d", "momentum", "1.5"}},
      {"BatchNorm2d: momentum NaN",
       [] { nn::BatchNorm2d(4, {.momentum = kNaN}); },
       {"BatchNorm2d", "momentum"}},
      {"BatchNorm2d: i64 dtype",
       [] { nn::BatchNorm2d(4, {.dtype = DType::i64}); },
       {"BatchNorm2d", "i64"}},
      {"BatchNorm1d: batch of one in training",
       [] {
         nn::BatchNorm1d(4).forward(zeros({1, 4}));
       },
       {"BatchNorm1d", "[1, 4]"}},
      {"LSTM: hidden_size 0", [] { nn::LSTM(4, 0); }, {"LSTM", "0"}},
      {"LSTM: num_layers 0", [] { nn::LSTM(4, 8, {.num_layers = 0}); }, {"LSTM", "num_layers"}},
      {"LSTM: dropout 1.5",
       [] { nn::LSTM(4, 8, {.num_layers = 2, .dropout = 1.5}); },
       {"LSTM", "dropout", "1.5"}},
      {"LSTM: dropout NaN",
       [] { nn::LSTM(4, 8, {.num_layers = 2, .dropout = kNaN}); },
       {"LSTM", "dropout"}},
      {"LSTM: i64 dtype", [] { nn::LSTM(4, 8, {.dtype = DType::i64}); }, {"LSTM", "i64"}},
      {"LSTM: lengths longer than T",
       [] {
         nn::LSTM(4, 8).forward(zeros({2, 5, 4}), {}, full({2}, 6, DType::i64));
       },
       {"LSTM", "6"}},
      {"LSTM: lengths -1",
       [] {
         nn::LSTM(4, 8).forward(zeros({2, 5, 4}), {}, full({2}, -1, DType::i64));
       },
       {"LSTM", "-1"}},
      {"LSTM: lengths of another batch",
       [] {
         nn::LSTM(4, 8).forward(zeros({2, 5, 4}), {}, full({3}, 1, DType::i64));
       },
       {"LSTM", "[3]"}},
      {"LSTM: initial state of another shape",
       [] {
         nn::LSTM(4, 8).forward(zeros({2, 5, 4}), {zeros({1, 2, 7}), zeros({1, 2, 7})});
       },
       {"LSTM", "[1, 2, 7]"}},
      {"LSTMCell: num_layers 2",
       [] { nn::LSTMCell(4, 8, {.num_layers = 2}); },
       {"LSTMCell", "num_layers"}},
      {"GRU: hidden_size -3", [] { nn::GRU(4, -3); }, {"GRU", "-3"}},
      {"GRU: h0 of another shape",
       [] {
         nn::GRU(4, 8).forward(zeros({2, 5, 4}), zeros({1, 3, 8}));
       },
       {"GRU", "[1, 3, 8]"}},
      {"GRUCell: h of another shape",
       [] {
         nn::GRUCell(4, 8).forward(zeros({2, 4}), zeros({2, 7}));
       },
       {"GRUCell", "[2, 7]"}},
      {"Embedding: num_embeddings 0", [] { nn::Embedding(0, 3); }, {"Embedding", "0"}},
      {"Embedding: embedding_dim -1", [] { nn::Embedding(10, -1); }, {"Embedding", "-1"}},
      {"Dropout: p NaN", [] { nn::Dropout{kNaN}; }, {"Dropout", "nan"}},
      {"Dropout: p -0.1", [] { nn::Dropout(-0.1); }, {"Dropout", "-0.1"}},
      {"Dropout: p 1", [] { nn::Dropout(1.0); }, {"Dropout", "1"}},
      {"LeakyReLU: slope NaN", [] { nn::LeakyReLU{kNaN}; }, {"LeakyReLU", "nan"}},
      {"ELU: alpha inf", [] { nn::ELU{kInf}; }, {"ELU", "inf"}},
      {"GaussianNoise: stddev -1", [] { nn::GaussianNoise(-1); }, {"GaussianNoise", "-1"}},
      {"GaussianNoise: stddev NaN", [] { nn::GaussianNoise{kNaN}; }, {"GaussianNoise", "nan"}},
      {"MaskingNoise: p 1.5", [] { nn::MaskingNoise(1.5); }, {"MaskingNoise", "1.5"}},
      {"Softmax: dim 5",
       [] {
         nn::Softmax(5).forward(zeros({2, 3}));
       },
       {"Softmax", "5"}},
      {"Flatten: start_dim after end_dim",
       [] {
         nn::Flatten(2, 1).forward(zeros({2, 3, 4}));
       },
       {"Flatten"}},
      {"Flatten: start_dim 7",
       [] {
         nn::Flatten(7).forward(zeros({2, 3}));
       },
       {"Flatten", "7"}},
      {"Reshape: two -1",
       [] {
         nn::Reshape({-1, -1}).forward(zeros({2, 12}));
       },
       {"Reshape"}},
      {"Reshape: -2",
       [] {
         nn::Reshape({-2}).forward(zeros({2, 12}));
       },
       {"Reshape", "-2"}},
  });
}

TEST_CASE("probes: loss sweep") {
  const Category category("loss sweep");
  using Loss2 = std::function<Tensor(const Tensor&, const Tensor&, nn::Reduction)>;
  const std::vector<std::pair<std::string, Loss2>> losses = {
      {"mse_loss", [](auto& a, auto& b, auto r) { return nn::mse_loss(a, b, r); }},
      {"binary_cross_entropy",
       [](auto& a, auto& b, auto r) { return nn::binary_cross_entropy(a, b, r); }},
      {"bce_with_logits", [](auto& a, auto& b, auto r) { return nn::bce_with_logits(a, b, r); }},
      {"gaussian_kl", [](auto& a, auto& b, auto r) { return nn::gaussian_kl(a, b, r); }},
  };
  using R = nn::Reduction;
  std::vector<Probe> probes;
  for (const auto& loss : losses) {
    // Not a structured binding: clang 14 refuses a lambda that captures one.
    const std::string& name = loss.first;
    const Loss2& f = loss.second;
    auto err = [&, f = f](std::string what, Tensor a, Tensor b, std::vector<std::string> parts,
                          R r = R::mean) {
      probes.push_back({name + ": " + what, [=] { f(a, b, r); }, std::move(parts)});
    };
    auto res = [&, f = f](std::string what, Tensor a, Tensor b, std::string expected,
                          R r = R::mean) {
      probes.push_back(returns(
          name + ": " + what, [=] { return f(a, b, r); }, expected));
    };
    const bool kl = name == "gaussian_kl";
    if (name != "mse_loss")
      err("i64 input", zeros({4}, DType::i64), zeros({4}, DType::i64), {name, "i64"});
    if (name != "binary_cross_entropy" && !kl)
      err("f32 prediction, f64 target", zeros({4}), zeros({4}, DType::f64), {name, "f64"});
    if (!kl) err("rank differs", zeros({4, 1}), zeros({4}), {name, "[4, 1]", "[4]"});
    err("undefined prediction", Tensor(), zeros({4}), {name, "undefined"});
    err("undefined target", full({4}, 0.5), Tensor(), {name, "undefined"});
    if (kl) {
      res("1-d input", zeros({4}), zeros({4}), "returns [] f32, finite");
      err("empty batch", zeros({0, 3}), zeros({0, 3}), {name, "empty batch"});
      res("empty batch, sum", zeros({0, 3}), zeros({0, 3}), "returns [] f32, finite", R::sum);
      res("NaN mu", full({2, 3}, kNaN), zeros({2, 3}), "returns [] f32, NaN in 1 of 1");
      res("logvar 100", zeros({2, 3}), full({2, 3}, 100), "returns [] f32, inf in 1 of 1");
      res("per sample", zeros({2, 3}), zeros({2, 3}), "returns [2] f32, finite", R::none);
      continue;
    }
    err("empty batch", zeros({0, 3}), zeros({0, 3}), {name, "empty batch"});
    res("empty batch, sum", zeros({0, 3}), zeros({0, 3}), "returns [] f32, finite", R::sum);
    res("empty batch, none", zeros({0, 3}), zeros({0, 3}), "returns [0, 3] f32, empty", R::none);
    res("0-d input", full({}, 0.5), full({}, 0.5), "returns [] f32, finite");
    if (name == "binary_cross_entropy")
      err("NaN prediction", full({4}, kNaN), zeros({4}), {name, "nan"});
    else
      res("NaN prediction", full({4}, kNaN), zeros({4}), "returns [] f32, NaN in 1 of 1");
    res("NaN target", full({4}, 0.5), full({4}, kNaN), "returns [] f32, NaN in 1 of 1");
    res("f64 input", full({4}, 0.5, DType::f64), zeros({4}, DType::f64), "returns [] f64, finite");
  }
  probes.push_back({"binary_cross_entropy: prediction 1.5",
                    [] { nn::binary_cross_entropy(full({4}, 1.5), zeros({4})); },
                    {"binary_cross_entropy", "1.5"}});
  probes.push_back({"binary_cross_entropy: prediction -0.5",
                    [] { nn::binary_cross_entropy(full({4}, -0.5), zeros({4})); },
                    {"binary_cross_entropy", "-0.5"}});
  probes.push_back(returns(
      "binary_cross_entropy: prediction 0, target 1",
      [] { return nn::binary_cross_entropy(zeros({4}), ones({4})); }, "returns [] f32, finite"));
  probes.push_back(returns(
      "bce_with_logits: logits 1e30",
      [] { return nn::bce_with_logits(full({4}, 1e30), zeros({4})); }, "returns [] f32, finite"));
  // cross_entropy takes logits (N, C) and i64 labels (N).
  auto ce = [](Tensor logits, Tensor labels, R r = R::mean) {
    return [=] { return nn::cross_entropy(logits, labels, r); };
  };
  auto ce_err = [&](std::string what, Tensor logits, Tensor labels, std::vector<std::string> p) {
    auto f = ce(logits, labels);
    probes.push_back({"cross_entropy: " + what, [f] { f(); }, std::move(p)});
  };
  ce_err("label -1", zeros({2, 5}), full({2}, -1, DType::i64), {"cross_entropy", "-1"});
  ce_err("1-d logits", zeros({5}), zeros({1}, DType::i64), {"cross_entropy", "[5]"});
  ce_err("2-d labels", zeros({2, 5}), zeros({2, 1}, DType::i64), {"cross_entropy", "[2, 1]"});
  ce_err("i64 logits", zeros({2, 5}, DType::i64), zeros({2}, DType::i64), {"cross_entropy", "i64"});
  ce_err("zero classes", zeros({2, 0}), zeros({2}, DType::i64), {"cross_entropy", "[2, 0]"});
  ce_err("empty batch", zeros({0, 5}), zeros({0}, DType::i64), {"cross_entropy", "empty batch"});
  ce_err("undefined labels", zeros({2, 5}), Tensor(), {"cross_entropy", "undefined"});
  probes.push_back(returns("cross_entropy: empty batch, sum",
                           ce(zeros({0, 5}), zeros({0}, DType::i64), R::sum),
                           "returns [] f32, finite"));
  probes.push_back(returns("cross_entropy: NaN logits",
                           ce(full({2, 5}, kNaN), zeros({2}, DType::i64)),
                           "returns [] f32, NaN in 1 of 1"));
  probes.push_back(returns("cross_entropy: logits 1e30",
                           ce(full({2, 5}, 1e30), zeros({2}, DType::i64)),
                           "returns [] f32, finite"));
  probes.push_back(returns("cross_entropy: f64 logits",
                           ce(zeros({2, 5}, DType::f64), zeros({2}, DType::i64)),
                           "returns [] f64, finite"));
  probes.push_back({"reduce_loss: mean of empty",
                    [] { nn::reduce_loss(zeros({0}), R::mean); },
                    {"reduce_loss", "[0]", "empty batch"}});
  run(probes);
}

TEST_CASE("probes: reduction sweep") {
  const Category category("reduction sweep");
  using Red = std::function<Tensor(const Tensor&, const std::vector<int64_t>&)>;
  const std::vector<std::pair<std::string, Red>> reds = {
      {"sum", [](auto& x, auto& d) { return sum(x, d); }},
      {"mean", [](auto& x, auto& d) { return mean(x, d); }},
      {"max", [](auto& x, auto& d) { return max(x, d); }},
      {"min", [](auto& x, auto& d) { return min(x, d); }},
      {"var", [](auto& x, auto& d) { return var(x, d); }},
      {"logsumexp", [](auto& x, auto& d) { return logsumexp(x, d); }},
  };
  // What each gives for an empty tensor (all dims), for (0, 3) reduced over dim 0, and NaN.
  const std::map<std::string, std::array<std::string, 3>> empty_gives = {
      {"sum", {"returns [] f32, finite", "returns [3] f32, finite", ""}},
      {"mean", {"", "", ""}},
      {"max", {"", "", ""}},
      {"min", {"", "", ""}},
      {"var", {"", "", ""}},
      {"logsumexp", {"returns [] f32, inf in 1 of 1", "returns [3] f32, inf in 3 of 3", ""}},
  };
  std::vector<Probe> probes;
  for (const auto& [name, f] : reds) {
    auto add = [&, f = f, name = name](std::string what, Tensor x, std::vector<int64_t> d,
                                       std::string expected, std::vector<std::string> parts) {
      if (expected.empty())
        probes.push_back({name + ": " + what, [=] { f(x, d); }, std::move(parts)});
      else
        probes.push_back(returns(
            name + ": " + what, [=] { return f(x, d); }, expected));
    };
    const auto& e = empty_gives.at(name);
    add("dim 2 of a 2-d tensor", zeros({2, 3}), {2}, "", {name, "2"});
    add("dim -3 of a 2-d tensor", zeros({2, 3}), {-3}, "", {name, "-3"});
    add("dim repeated", zeros({2, 3}), {1, 1}, "", {name, "1"});
    add("empty tensor", zeros({0}), {}, e[0], {name, "[0]"});
    add("empty dim", zeros({0, 3}), {0}, e[1], {name, "[0, 3]"});
    add("NaN input", full({2, 3}, kNaN), {1}, "returns [2] f32, NaN in 2 of 2", {});
    add("undefined input", Tensor(), {}, "", {name, "undefined"});
    add("i64 input", zeros({2, 3}, DType::i64), {1},
        name == "sum" || name == "max" || name == "min" ? "returns [2] i64, finite" : "",
        {name, "i64"});
  }
  using U = std::function<Tensor(const Tensor&, int64_t)>;
  const std::vector<std::pair<std::string, U>> along = {
      {"softmax", [](auto& x, int64_t d) { return softmax(x, d); }},
      {"log_softmax", [](auto& x, int64_t d) { return log_softmax(x, d); }},
      {"argmax", [](auto& x, int64_t d) { return argmax(x, d); }},
  };
  for (const auto& [name, f] : along) {
    auto ff = f;
    const std::string n = name;
    probes.push_back({n + ": dim -3", [=] { ff(zeros({2, 3}), -3); }, {n, "-3"}});
    probes.push_back({n + ": undefined input", [=] { ff(Tensor(), 0); }, {n, "undefined"}});
    if (n == "argmax")
      probes.push_back(returns(
          n + ": i64 input",
          [=] {
            return ff(zeros({2, 3}, DType::i64), 1);
          },
          "returns [2] i64, finite"));
    else
      probes.push_back({n + ": i64 input", [=] { ff(zeros({2, 3}, DType::i64), 1); }, {n, "i64"}});
    if (n == "argmax")
      probes.push_back({n + ": empty dim", [=] { ff(zeros({2, 0}), 1); }, {n, "[2, 0]"}});
    else
      probes.push_back(returns(
          n + ": empty dim",
          [=] {
            return ff(zeros({2, 0}), 1);
          },
          "returns [2, 0] f32, empty"));
    probes.push_back(returns(
        n + ": NaN input",
        [=] {
          return ff(full({2, 3}, kNaN), 1);
        },
        n == "argmax" ? "returns [2] i64, finite" : "returns [2, 3] f32, NaN in 6 of 6"));
  }
  probes.push_back(returns(
      "var: correction 1 of one element", [] { return var(zeros({1}), {0}); },
      "returns [] f32, NaN in 1 of 1"));
  probes.push_back(returns(
      "var: correction -1", [] { return var(zeros({3}), {0}, -1); }, "returns [] f32, finite"));
  probes.push_back({"sum_to: shape not broadcastable",
                    [] {
                      sum_to(zeros({2, 3}), {4});
                    },
                    {"sum_to"}});
  run(probes);
}

TEST_CASE("probes: elementwise and shape sweep") {
  const Category category("elementwise and shape sweep");
  using Bin = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<std::string, Bin>> bins = {
      {"add", [](auto& a, auto& b) { return add(a, b); }},
      {"sub", [](auto& a, auto& b) { return sub(a, b); }},
      {"mul", [](auto& a, auto& b) { return mul(a, b); }},
      {"div", [](auto& a, auto& b) { return div(a, b); }},
      {"pow", [](auto& a, auto& b) { return pow(a, b); }},
      {"maximum", [](auto& a, auto& b) { return maximum(a, b); }},
      {"minimum", [](auto& a, auto& b) { return minimum(a, b); }},
      {"eq", [](auto& a, auto& b) { return eq(a, b); }},
      {"lt", [](auto& a, auto& b) { return lt(a, b); }},
  };
  std::vector<Probe> probes;
  for (const auto& [name, f] : bins) {
    auto ff = f;
    const std::string n = name;
    probes.push_back({n + ": shapes do not broadcast",
                      [=] {
                        ff(zeros({2, 3}), zeros({4}));
                      },
                      {n, "[2, 3]", "[4]"}});
    // Mixed dtypes are promoted (as NumPy): what the result is.
    probes.push_back(returns(
        n + ": f32 and i64", [=] { return ff(zeros({2}), zeros({2}, DType::i64)); },
        n == "div" ? "returns [2] f32, NaN in 2 of 2"  // 0 / 0
                   : "returns [2] f32, finite"));
    probes.push_back(returns(
        n + ": f32 and f64", [=] { return ff(zeros({2}), zeros({2}, DType::f64)); },
        n == "div" ? "returns [2] f64, NaN in 2 of 2" : "returns [2] f64, finite"));
    probes.push_back({n + ": undefined operand", [=] { ff(zeros({2}), Tensor()); }, {n}});
    probes.push_back(returns(
        n + ": empty and scalar",
        [=] {
          return ff(zeros({0, 3}), full({}, 2));
        },
        "returns [0, 3] f32, empty"));
  }
  probes.push_back(returns(
      "div: 0 / 0", [] { return div(zeros({2}), zeros({2})); }, "returns [2] f32, NaN in 2 of 2"));
  probes.push_back(returns(
      "div: 1 / 0", [] { return div(ones({2}), zeros({2})); }, "returns [2] f32, inf in 2 of 2"));
  probes.push_back(returns(
      "log: of -1", [] { return log(full({2}, -1)); }, "returns [2] f32, NaN in 2 of 2"));
  probes.push_back(returns(
      "sqrt: of -1", [] { return sqrt(full({2}, -1)); }, "returns [2] f32, NaN in 2 of 2"));
  probes.push_back(returns(
      "exp: of 1000", [] { return exp(full({2}, 1000)); }, "returns [2] f32, inf in 2 of 2"));
  using Un = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<std::string, Un>> uns = {
      {"exp", [](auto& x) { return exp(x); }},
      {"log", [](auto& x) { return log(x); }},
      {"sqrt", [](auto& x) { return sqrt(x); }},
      {"tanh", [](auto& x) { return tanh(x); }},
      {"sigmoid", [](auto& x) { return sigmoid(x); }},
      {"relu", [](auto& x) { return relu(x); }},
      {"abs", [](auto& x) { return abs(x); }},
      {"softplus", [](auto& x) { return softplus(x); }},
  };
  for (const auto& [name, f] : uns) {
    auto ff = f;
    const std::string n = name;
    probes.push_back({n + ": undefined input", [=] { ff(Tensor()); }, {n, "undefined"}});
  }
  probes.push_back({"clamp: lo > hi", [] { clamp(zeros({2}), 1, 0); }, {"clamp"}});
  probes.push_back({"clamp: NaN bound", [] { clamp(zeros({2}), kNaN, 1); }, {"clamp", "nan"}});
  probes.push_back(returns(
      "where: f32 condition", [] { return where(zeros({2}), zeros({2}), zeros({2})); },
      "returns [2] f32, finite"));
  probes.push_back({"where: shapes do not broadcast",
                    [] { where(gt(zeros({2}), 0.0), zeros({3}), zeros({2})); },
                    {"where", "[3]"}});
  probes.push_back({"cast: undefined", [] { cast(Tensor(), DType::f64); }, {"cast"}});
  // Shape ops.
  probes.insert(
      probes.end(),
      {
          {"transpose: dim 2 of a 2-d tensor",
           [] {
             transpose(zeros({2, 3}), 0, 2);
           },
           {"transpose", "2"}},
          {"permute: repeated dim",
           [] {
             permute(zeros({2, 3}), {0, 0});
           },
           {"permute"}},
          {"permute: too few dims",
           [] {
             permute(zeros({2, 3}), {0});
           },
           {"permute"}},
          {"slice: step 0", [] { slice(zeros({4}), 0, 0, 4, 0); }, {"slice", "step"}},
          {"slice: step -1", [] { slice(zeros({4}), 0, 0, 4, -1); }, {"slice", "-1"}},
          {"slice: dim 1 of a 1-d tensor", [] { slice(zeros({4}), 1, 0, 4); }, {"slice", "1"}},
          returns(
              "slice: end INT64_MAX", [] { return slice(zeros({4}), 0, 1, kMax); },
              "returns [3] f32, finite"),
          returns(
              "slice: start after end", [] { return slice(zeros({4}), 0, 3, 1); },
              "returns [0] f32, empty"),
          {"expand: incompatible",
           [] {
             expand(zeros({2, 3}), {2, 4});
           },
           {"expand", "[2, 4]"}},
          {"expand: fewer dims",
           [] {
             expand(zeros({2, 3}), {3});
           },
           {"expand"}},
          {"expand: to -2", [] { expand(zeros({1}), {-2}); }, {"expand", "-2"}},
          {"squeeze: dim 5",
           [] {
             squeeze(zeros({2, 1}), 5);
           },
           {"squeeze", "5"}},
          {"squeeze: a dim of size 2",
           [] {
             squeeze(zeros({2, 1}), 0);
           },
           {"squeeze", "size 2"}},
          {"unsqueeze: dim 4 of a 2-d tensor",
           [] {
             unsqueeze(zeros({2, 3}), 4);
           },
           {"unsqueeze", "4"}},
          {"flatten: start after end",
           [] {
             flatten(zeros({2, 3, 4}), 2, 1);
           },
           {"flatten"}},
          {"view: of a transposed tensor",
           [] {
             view(transpose(zeros({2, 3}), 0, 1), {6});
           },
           {"view", "[3, 2]"}},
          {"reshape: two -1",
           [] {
             reshape(zeros({2, 3}), {-1, -1});
           },
           {"reshape"}},
          {"reshape: -1 with a 0 dim",
           [] {
             reshape(zeros({0, 3}), {0, -1});
           },
           {"reshape"}},
          {"reshape: INT64_MAX x 2",
           [] {
             reshape(zeros({2}), {kMax, 2});
           },
           {"reshape"}},
          {"concat: no tensors", [] { concat({}, 0); }, {"concat"}},
          {"concat: dim 3",
           [] {
             concat({zeros({2}), zeros({2})}, 3);
           },
           {"concat", "3"}},
          {"concat: f32 and f64",
           [] {
             concat({zeros({2}), zeros({2}, DType::f64)}, 0);
           },
           {"concat", "f64"}},
          {"stack: shapes differ",
           [] {
             stack({zeros({2}), zeros({3})}, 0);
           },
           {"stack", "[3]"}},
          {"stack: no tensors", [] { stack({}, 0); }, {"stack"}},
          {"split: sizes do not add up",
           [] {
             split(zeros({5}), {2, 2}, 0);
           },
           {"split", "5"}},
          {"split: size -1",
           [] {
             split(zeros({5}), {-1, 6}, 0);
           },
           {"split", "-1"}},
          {"pad: odd number of pads",
           [] {
             pad(zeros({2, 3}), {1});
           },
           {"pad"}},
          {"pad: crops more than the size",
           [] {
             pad(zeros({2, 3}), {-2, -2});
           },
           {"pad"}},
          {"pad: INT64_MAX",
           [] {
             pad(zeros({2, 3}), {kMax, kMax});
           },
           {"pad"}},
          {"gather: index out of range",
           [] {
             gather(zeros({2, 3}), 1, full({2, 1}, 3, DType::i64));
           },
           {"gather", "3"}},
          {"gather: f32 index",
           [] {
             gather(zeros({2, 3}), 1, zeros({2, 1}));
           },
           {"gather", "f32"}},
          {"index_select: index -1",
           [] {
             index_select(zeros({4, 2}), 0, full({1}, -1, DType::i64));
           },
           {"index_select", "-1"}},
          {"index_select: 2-d index",
           [] {
             index_select(zeros({4, 2}), 0, zeros({1, 1}, DType::i64));
           },
           {"index_select"}},
          {"matmul: 0-d operand", [] { matmul(zeros({}), zeros({2})); }, {"matmul", "[]"}},
          {"matmul: batch dims do not broadcast",
           [] {
             matmul(zeros({2, 3, 4}), zeros({3, 4, 5}));
           },
           {"matmul", "[2, 3, 4]"}},
          {"matmul: i64",
           [] {
             matmul(zeros({2, 2}, DType::i64), zeros({2, 2}, DType::i64));
           },
           {"matmul", "i64"}},
          {"matmul: f32 and f64",
           [] {
             matmul(zeros({2, 2}), zeros({2, 2}, DType::f64));
           },
           {"matmul", "f64"}},
          returns(
              "matmul: inner size 0",
              [] {
                return matmul(zeros({2, 0}), zeros({0, 3}));
              },
              "returns [2, 3] f32, finite"),
          {"linear: weight of another width",
           [] {
             linear(zeros({2, 3}), zeros({4, 5}));
           },
           {"linear", "[4, 5]"}},
          {"linear: bias of another size",
           [] {
             linear(zeros({2, 3}), zeros({4, 3}), zeros({5}));
           },
           {"linear", "[5]"}},
      });
  run(probes);
}

TEST_CASE("probes: convolution, pooling and upsampling geometry") {
  const Category category("convolution, pooling and upsampling geometry");
  const Tensor x = zeros({1, 1, 8, 8});
  const Tensor w = zeros({1, 1, 3, 3});
  auto c = [=](Conv2dOptions o) { return [=] { conv2d(x, w, Tensor(), o); }; };
  auto t = [=](ConvTranspose2dOptions o) { return [=] { conv_transpose2d(x, w, Tensor(), o); }; };
  auto mp = [=](Pool2dOptions o) { return [=] { max_pool2d(x, o); }; };
  auto ap = [=](Pool2dOptions o) { return [=] { avg_pool2d(x, o); }; };
  std::vector<Probe> probes = {
      {"conv2d: stride_h 0", c({.stride_h = 0}), {"conv2d", "stride"}},
      {"conv2d: pad_w -1", c({.pad_w = -1}), {"conv2d", "-1"}},
      {"conv2d: pad_h INT64_MAX", c({.pad_h = kMax}), {"conv2d"}},
      {"conv2d: dilation_w INT64_MAX", c({.dilation_w = kMax}), {"conv2d"}},
      returns(
          "conv2d: stride_h INT64_MAX", [=] { return conv2d(x, w, Tensor(), {.stride_h = kMax}); },
          "returns [1, 1, 1, 6] f32, finite"),
      {"conv2d: 3-d weight",
       [=] {
         conv2d(x, zeros({1, 3, 3}));
       },
       {"conv2d", "[1, 3, 3]"}},
      {"conv2d: bias of another size", [=] { conv2d(x, w, zeros({2})); }, {"conv2d", "[2]"}},
      {"conv2d: weight channels differ",
       [=] {
         conv2d(x, zeros({1, 2, 3, 3}));
       },
       {"conv2d", "[1, 2, 3, 3]"}},
      {"conv2d: i64 input",
       [=] {
         conv2d(zeros({1, 1, 8, 8}, DType::i64), w);
       },
       {"conv2d", "i64"}},
      {"conv_transpose2d: stride_w 0", t({.stride_w = 0}), {"conv_transpose2d", "stride"}},
      {"conv_transpose2d: stride INT64_MAX",
       t({.stride_h = kMax, .stride_w = kMax}),
       {"conv_transpose2d"}},
      {"conv_transpose2d: output_pad_h INT64_MAX", t({.output_pad_h = kMax}), {"conv_transpose2d"}},
      {"conv_transpose2d: pad_h INT64_MAX", t({.pad_h = kMax}), {"conv_transpose2d"}},
      {"conv_transpose2d: dilation_h INT64_MAX", t({.dilation_h = kMax}), {"conv_transpose2d"}},
      {"conv_transpose2d: weight channels differ",
       [=] {
         conv_transpose2d(x, zeros({2, 1, 3, 3}));
       },
       {"conv_transpose2d", "[2, 1, 3, 3]"}},
      {"max_pool2d: kernel 0", mp({.kernel_h = 0, .kernel_w = 0}), {"max_pool2d", "0"}},
      {"max_pool2d: kernel INT64_MAX", mp({.kernel_h = kMax, .kernel_w = 2}), {"max_pool2d"}},
      {"max_pool2d: stride -1",
       mp({.kernel_h = 2, .kernel_w = 2, .stride_h = -1}),
       {"max_pool2d", "-1"}},
      returns(
          "max_pool2d: stride INT64_MAX",
          [=] {
            return max_pool2d(x,
                              {.kernel_h = 2, .kernel_w = 2, .stride_h = kMax, .stride_w = kMax});
          },
          "returns [1, 1, 1, 1] f32, finite"),
      {"max_pool2d: padding over half the kernel",
       mp({.kernel_h = 2, .kernel_w = 2, .pad_h = 2}),
       {"max_pool2d"}},
      {"max_pool2d: pad INT64_MAX",
       mp({.kernel_h = 2, .kernel_w = 2, .pad_w = kMax}),
       {"max_pool2d"}},
      {"max_pool2d: kernel larger than the input",
       mp({.kernel_h = 9, .kernel_w = 9}),
       {"max_pool2d"}},
      {"max_pool2d: 3-d input",
       [] {
         max_pool2d(zeros({1, 8, 8}), 2, 2);
       },
       {"max_pool2d", "[1, 8, 8]"}},
      {"max_pool2d: i64 input",
       [] {
         max_pool2d(zeros({1, 1, 8, 8}, DType::i64), 2, 2);
       },
       {"max_pool2d", "i64"}},
      returns(
          "max_pool2d: empty batch",
          [] {
            return max_pool2d(zeros({0, 1, 8, 8}), 2, 2);
          },
          "returns [0, 1, 4, 4] f32, empty"),
      returns(
          "max_pool2d: NaN input",
          [] {
            return max_pool2d(full({1, 1, 4, 4}, kNaN), 2, 2);
          },
          "returns [1, 1, 2, 2] f32, NaN in 4 of 4"),
      {"avg_pool2d: kernel 0", ap({.kernel_h = 0, .kernel_w = 0}), {"avg_pool2d", "0"}},
      {"avg_pool2d: kernel INT64_MAX", ap({.kernel_h = kMax, .kernel_w = kMax}), {"avg_pool2d"}},
      {"avg_pool2d: stride -1",
       ap({.kernel_h = 2, .kernel_w = 2, .stride_w = -1}),
       {"avg_pool2d", "-1"}},
      {"avg_pool2d: pad INT64_MAX",
       ap({.kernel_h = 2, .kernel_w = 2, .pad_h = kMax}),
       {"avg_pool2d"}},
      {"avg_pool2d: 3-d input",
       [] {
         avg_pool2d(zeros({1, 8, 8}), 2, 2);
       },
       {"avg_pool2d", "[1, 8, 8]"}},
      returns(
          "avg_pool2d: ceil_mode",
          [=] {
            return avg_pool2d(
                x, {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .ceil_mode = true});
          },
          "returns [1, 1, 4, 4] f32, finite"),
      {"upsample_nearest2d: scale 0",
       [=] { upsample_nearest2d(x, 0, 2); },
       {"upsample_nearest2d", "0"}},
      {"upsample_nearest2d: scale -1",
       [=] { upsample_nearest2d(x, 2, -1); },
       {"upsample_nearest2d", "-1"}},
      {"upsample_nearest2d: scale INT64_MAX",
       [=] { upsample_nearest2d(x, kMax, kMax); },
       {"upsample_nearest2d"}},
      {"upsample_nearest2d: scale 2^31",
       [=] { upsample_nearest2d(x, 1LL << 31, 1LL << 31); },
       {"upsample_nearest2d"}},
      {"upsample_nearest2d: 3-d input",
       [] {
         upsample_nearest2d(zeros({1, 8, 8}), 2, 2);
       },
       {"upsample_nearest2d", "[1, 8, 8]"}},
      {"dropout: p 2", [] { dropout(zeros({2}), 2); }, {"dropout", "2"}},
      {"dropout: p NaN", [] { dropout(zeros({2}), kNaN); }, {"dropout", "nan"}},
      {"dropout: p NaN, not training",
       [] { dropout(zeros({2}), kNaN, false); },
       {"dropout", "nan"}},
      {"embedding: 1-d weight",
       [] { embedding(zeros({10}), zeros({2}, DType::i64)); },
       {"embedding", "[10]"}},
  };
  run(probes);
}

TEST_CASE("probes: creation") {
  const Category category("creation");
  run({
      {"zeros: dim -1",
       [] {
         zeros({-1, 2});
       },
       {"zeros", "-1"}},
      {"ones: INT64_MAX elements", [] { ones({kMax}); }, {"ones"}},
      // Documented (value_cast): NaN becomes 0 in an integer tensor, large values saturate.
      returns(
          "full: i64 NaN", [] { return full({2}, kNaN, DType::i64); }, "returns [2] i64, finite"),
      returns(
          "full: i64 1e30", [] { return full({2}, 1e30, DType::i64); }, "returns [2] i64, finite"),
      returns(
          "full: f32 1e300", [] { return full({2}, 1e300); }, "returns [2] f32, inf in 2 of 2"),
      {"arange: step 0", [] { arange(0, 10, 0); }, {"arange", "0"}},
      {"arange: NaN end", [] { arange(0, kNaN, 1); }, {"arange"}},
      {"arange: 2^62 elements", [] { arange(0, 4.7e18, 1); }, {"arange"}},
      {"randn: NaN mean", [] { randn({2}, default_generator(), DType::f32, kNaN, 1); }, {"randn"}},
      {"randn: i64", [] { randn({2}, default_generator(), DType::i64); }, {"randn", "i64"}},
      {"rand: infinite range",
       [] { rand({2}, default_generator(), DType::f32, 0, kInf); },
       {"rand"}},
      {"from_buffer: negative dim",
       [] {
         float v = 0;
         from_buffer(&v, {-1}, DType::f32);
       },
       {"from_buffer", "-1"}},
      {"Tensor::item: 2 elements", [] { zeros({2}).item<float>(); }, {"item", "[2]"}},
      returns_value(
          "Tensor::item: f32 read as i64", [] { return double(full({}, 2.5).item<int64_t>()); },
          "returns 2"),
      {"Tensor::size: dim 3", [] { zeros({2}).size(3); }, {"size", "3"}},
      {"Tensor::shape: undefined", [] { (void)Tensor().shape(); }, {"undefined"}},
      {"Tensor::to: undefined", [] { Tensor().to(DType::f64); }, {"undefined"}},
  });
}

TEST_CASE("probes: optimizer and schedule options") {
  const Category category("optimizer and schedule options");
  auto params = [] { return Tensors{zeros({2})}; };
  std::vector<Probe> probes;
  using Make = std::function<void(double lr, double wd)>;
  const std::vector<std::pair<std::string, Make>> opts = {
      {"SGD", [=](double lr, double wd) { optim::SGD(params(), {.lr = lr, .weight_decay = wd}); }},
      {"Adam",
       [=](double lr, double wd) { optim::Adam(params(), {.lr = lr, .weight_decay = wd}); }},
      {"AdamW",
       [=](double lr, double wd) { optim::AdamW(params(), {.lr = lr, .weight_decay = wd}); }},
      {"RMSProp",
       [=](double lr, double wd) { optim::RMSProp(params(), {.lr = lr, .weight_decay = wd}); }},
      {"Adagrad",
       [=](double lr, double wd) { optim::Adagrad(params(), {.lr = lr, .weight_decay = wd}); }},
  };
  for (const auto& [name, make] : opts) {
    auto m = make;
    const std::string n = name;
    probes.push_back({n + ": lr NaN", [=] { m(kNaN, 0); }, {n, "learning rate", "nan"}});
    probes.push_back({n + ": lr -1", [=] { m(-1, 0); }, {n, "learning rate", "-1"}});
    probes.push_back({n + ": lr inf", [=] { m(kInf, 0); }, {n, "learning rate", "inf"}});
    probes.push_back({n + ": weight_decay -1", [=] { m(0.01, -1); }, {n, "weight_decay", "-1"}});
    probes.push_back(
        {n + ": weight_decay NaN", [=] { m(0.01, kNaN); }, {n, "weight_decay", "nan"}});
  }
  auto step = [](auto make) {
    return [make] {
      Tensor w = zeros({2, 2});
      auto opt = make(Tensors{w});
      opt.step({zeros({2, 2}), zeros({2, 2})});
    };
  };
  probes.insert(
      probes.end(),
      {
          {"SGD: momentum -1",
           [=] { optim::SGD(params(), {.momentum = -1}); },
           {"SGD", "momentum", "-1"}},
          {"SGD: dampening NaN",
           [=] { optim::SGD(params(), {.momentum = 0.9, .dampening = kNaN}); },
           {"SGD", "dampening"}},
          {"Adam: beta1 1", [=] { optim::Adam(params(), {.beta1 = 1}); }, {"Adam", "beta1", "1"}},
          {"Adam: beta2 -0.5",
           [=] { optim::Adam(params(), {.beta2 = -0.5}); },
           {"Adam", "beta2", "-0.5"}},
          {"Adam: eps -1", [=] { optim::Adam(params(), {.eps = -1}); }, {"Adam", "eps", "-1"}},
          {"Adam: eps NaN", [=] { optim::Adam(params(), {.eps = kNaN}); }, {"Adam", "eps"}},
          {"AdamW: beta1 NaN",
           [=] { optim::AdamW(params(), {.beta1 = kNaN}); },
           {"AdamW", "beta1"}},
          {"RMSProp: alpha 1.5",
           [=] { optim::RMSProp(params(), {.alpha = 1.5}); },
           {"RMSProp", "alpha", "1.5"}},
          {"RMSProp: eps -1", [=] { optim::RMSProp(params(), {.eps = -1}); }, {"RMSProp", "eps"}},
          {"RMSProp: momentum -1",
           [=] { optim::RMSProp(params(), {.momentum = -1}); },
           {"RMSProp", "momentum", "-1"}},
          {"Adagrad: lr_decay -1",
           [=] { optim::Adagrad(params(), {.lr_decay = -1}); },
           {"Adagrad", "lr_decay", "-1"}},
          {"Adagrad: eps -1", [=] { optim::Adagrad(params(), {.eps = -1}); }, {"Adagrad", "eps"}},
          {"Adagrad: initial_accumulator_value -1",
           [=] { optim::Adagrad(params(), {.initial_accumulator_value = -1}); },
           {"Adagrad", "initial_accumulator_value", "-1"}},
          {"SGD: two gradients for one parameter",
           step([](Tensors p) { return optim::SGD(p); }),
           {"SGD", "2"}},
          {"Adam: two gradients for one parameter",
           step([](Tensors p) { return optim::Adam(p); }),
           {"Adam", "2"}},
          {"RMSProp: two gradients for one parameter",
           step([](Tensors p) { return optim::RMSProp(p); }),
           {"RMSProp", "2"}},
          {"Adagrad: two gradients for one parameter",
           step([](Tensors p) { return optim::Adagrad(p); }),
           {"Adagrad", "2"}},
          {"SGD: set_lr NaN",
           [=] {
             optim::SGD opt(params());
             opt.set_lr(kNaN);
           },
           {"learning rate", "nan"}},
          {"Adam: i64 parameter", [] { optim::Adam({zeros({2}, DType::i64)}); }, {"Adam", "i64"}},
          {"SGD: undefined parameter", [] { optim::SGD({Tensor()}); }, {"SGD"}},
          {"CosineDecay: total_steps 0",
           [] { optim::CosineDecay{.total_steps = 0}(1); },
           {"CosineDecay", "total_steps"}},
          // Allowed (as PyTorch's eta_min): the rate rises towards min_lr.
          returns_value(
              "CosineDecay: min_lr above base_lr",
              [] { return optim::CosineDecay{.base_lr = 1e-3, .min_lr = 1}(1); },
              "returns 0.00100246"),
          {"CosineDecay: min_lr NaN",
           [] { optim::CosineDecay{.min_lr = kNaN}(1); },
           {"CosineDecay", "min_lr"}},
          {"ExponentialDecay: base_lr inf",
           [] { optim::ExponentialDecay{.base_lr = kInf}(1); },
           {"ExponentialDecay", "base_lr", "inf"}},
          {"CosineDecay: base_lr NaN",
           [] { optim::CosineDecay{.base_lr = kNaN}(1); },
           {"CosineDecay", "base_lr"}},
          {"StepDecay: base_lr -1",
           [] { optim::StepDecay{.base_lr = -1}(1); },
           {"StepDecay", "base_lr", "-1"}},
          // Documented: a negative step counts as step 0.
          returns_value(
              "StepDecay: step -1", [] { return optim::StepDecay{}(-1); }, "returns 0.001"),
          {"ExponentialDecay: gamma NaN",
           [] { optim::ExponentialDecay{.gamma = kNaN}(1); },
           {"ExponentialDecay", "gamma"}},
          {"LinearWarmup: warmup_steps -1",
           [] { optim::LinearWarmup{.warmup_steps = -1, .after = {}}(1); },
           {"LinearWarmup", "-1"}},
          {"clip_by_global_norm: max_norm -1",
           [] { optim::clip_by_global_norm({zeros({2})}, -1); },
           {"clip_by_global_norm", "-1"}},
          {"clip_by_global_norm: max_norm NaN",
           [] { optim::clip_by_global_norm({zeros({2})}, kNaN); },
           {"clip_by_global_norm", "nan"}},
          returns(
              "clip_by_global_norm: NaN gradient",
              [] { return optim::clip_by_global_norm({full({2}, kNaN)}, 1)[0]; },
              "returns [2] f32, NaN in 2 of 2"),
          {"clip_by_value: limit -1",
           [] { optim::clip_by_value({zeros({2})}, -1); },
           {"clip_by_value", "-1"}},
          {"Batches: batch_size 0",
           [] {
             nn::Batches({zeros({4, 2})}, {.batch_size = 0});
           },
           {"Batches", "batch_size"}},
          {"Batches: first dims differ",
           [] {
             nn::Batches({zeros({4, 2}), zeros({5})});
           },
           {"Batches", "[5]"}},
          {"Batches: no tensors", [] { nn::Batches(Tensors{}); }, {"Batches"}},
          {"Batches: 0-d tensor",
           [] { nn::Batches({zeros({})}); },
           {"Batches", "at least one dimension"}},
          returns_value(
              "Batches: zero samples",
              [] {
                return double(nn::Batches({zeros({0, 2})}).size());
              },
              "returns 0"),
      });
  run(probes);
}

TEST_CASE("probes: hostile files") {
  const Category category("hostile files");
  // Every refused seed of the fuzz corpus (tests/fuzz/corpus/<target>/bad-*), through the loader
  // a user calls for it.
  const fs::path corpus = testing::source_path("tests/fuzz/corpus");
  std::vector<Probe> probes;
  const std::vector<std::pair<std::string, std::string>> targets = {
      {"idx", "read_idx"}, {"image", "read_image"}, {"safetensors", "load_safetensors"}};
  for (const auto& [dir, op] : targets) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(corpus / dir))
      if (e.path().filename().string().rfind("bad-", 0) == 0) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string path = f.string(), o = op;
      probes.push_back({o + ": corpus " + f.filename().string(),
                        [path, o] {
                          if (o == "read_idx") io::read_idx(path);
                          if (o == "read_image") io::read_image(path);
                          if (o == "load_safetensors") io::load_safetensors(path);
                        },
                        {o, f.filename().string()}});
    }
  }
  std::vector<fs::path> ckpts;
  for (const auto& e : fs::directory_iterator(corpus / "checkpoint"))
    if (e.path().filename().string().rfind("bad-", 0) == 0) ckpts.push_back(e.path());
  std::sort(ckpts.begin(), ckpts.end());
  for (const fs::path& f : ckpts) {
    const std::string path = f.string();
    probes.push_back({"load_checkpoint: corpus " + f.filename().string(),
                      [path] {
                        // The model the corpus checkpoints were written for.
                        fuzz::CheckpointRig rig;
                        nn::load_checkpoint(path, rig.model, rig.opt, rig.gen, &rig.batches);
                      },
                      {"load_checkpoint", f.filename().string()}});
  }
  const TempFile junk("hello, not a data file");
  // An IDX header claiming 2^31 x 2^31 bytes: must be refused from the file size, not allocated.
  const TempFile idx_huge(std::string("\0\0\x08\x02\x80\0\0\0\x80\0\0\0", 12));
  // A PNG signature and nothing else.
  const TempFile png_sig(std::string("\x89PNG\r\n\x1a\n", 8));
  // A safetensors header length of 2 with a header "{}" but a tensor past the end.
  const std::string st_body = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string st_len(8, '\0');
  st_len[0] = static_cast<char>(st_body.size());
  const TempFile st_short(st_len + st_body + std::string(8, '\0'));
  const std::string missing_dir = "/nonexistent/encore";
  probes.insert(
      probes.end(),
      {
          {"read_idx: 2^31 x 2^31 header",
           [&] { io::read_idx(idx_huge.path); },
           {"read_idx", "2147483648"}},
          {"read_idx: i64 output of u8 data",
           [&] { io::read_idx(idx_huge.path, DType::i64); },
           {"read_idx"}},
          {"read_image: missing file",
           [&] { io::read_image(missing_dir + "/x.png"); },
           {"read_image", "/nonexistent/encore/x.png"}},
          {"read_image: a directory",
           [] { io::read_image(fs::temp_directory_path().string()); },
           {"read_image"}},
          {"read_image: PNG signature only", [&] { io::read_image(png_sig.path); }, {"read_image"}},
          {"read_image: channels -1",
           [&] { io::read_image(png_sig.path, -1); },
           {"read_image", "-1"}},
          {"load_safetensors: missing file",
           [&] { io::load_safetensors(missing_dir + "/x.safetensors"); },
           {"load_safetensors", "/nonexistent/encore/x.safetensors"}},
          {"load_safetensors: a directory",
           [] { io::load_safetensors(fs::temp_directory_path().string()); },
           {"load_safetensors"}},
          {"load_safetensors: tensor past the end",
           [&] { io::load_safetensors(st_short.path); },
           {"load_safetensors"}},
          {"save_safetensors: into a missing folder",
           [&] {
             io::save_safetensors(missing_dir + "/x.safetensors", {{"w", zeros({2})}});
           },
           {"save_safetensors", "/nonexistent/encore"}},
          {"save_safetensors: undefined tensor",
           [] {
             io::save_safetensors("/tmp/encore_probe_undefined.safetensors", {{"w", Tensor()}});
           },
           {"save_safetensors", "w"}},
          {"write_png: into a missing folder",
           [&] {
             io::write_png(missing_dir + "/x.png", zeros({1, 4, 4}));
           },
           {"write_png", "/nonexistent/encore"}},
          {"write_png: 4-d image",
           [] {
             io::write_png("/tmp/x.png", zeros({1, 1, 4, 4}));
           },
           {"write_png", "[1, 1, 4, 4]"}},
          {"write_png: empty image",
           [] {
             io::write_png("/tmp/x.png", zeros({1, 0, 4}));
           },
           {"write_png", "[1, 0, 4]"}},
          {"write_image_grid: nrow 0",
           [] {
             io::write_image_grid("/tmp/x.png", zeros({2, 1, 4, 4}), 0);
           },
           {"nrow", "0"}},
          {"make_grid: padding -1",
           [] {
             io::make_grid(zeros({2, 1, 4, 4}), 2, -1);
           },
           {"make_grid", "-1"}},
          {"load_mnist: a file, not a folder",
           [] { nn::load_mnist("README.md"); },
           {"load_mnist", "README.md"}},
          {"load_mnist_bytes: missing folder",
           [&] { nn::load_mnist_bytes(missing_dir); },
           {"load_mnist", "/nonexistent/encore"}},
          {"Module::load: missing file",
           [&] { nn::Linear(2, 2).load(missing_dir + "/x.safetensors"); },
           {"load: load_safetensors", "/nonexistent/encore/x.safetensors"}},
          {"Module::load: another model's weights",
           [] {
             const std::string path =
                 (fs::temp_directory_path() /
                  ("encore_probe_" + std::to_string(::getpid()) + "_other.safetensors"))
                     .string();
             nn::Linear(3, 2).save(path);
             struct Remove {
               std::string p;
               ~Remove() { std::remove(p.c_str()); }
             } remove{path};
             nn::Linear(2, 2).load(path);
           },
           {"load_state_dict", "[2, 3]"}},
          {"Module::save: into a missing folder",
           [&] { nn::Linear(2, 2).save(missing_dir + "/x.safetensors"); },
           {"save: save_safetensors", "/nonexistent/encore"}},
          {"load_checkpoint: missing file",
           [&] {
             nn::Linear model(2, 2);
             optim::Adam opt(model.parameters());
             Generator gen(2);
             nn::load_checkpoint(missing_dir + "/c.safetensors", model, opt, gen);
           },
           {"load_checkpoint", "/nonexistent/encore/c.safetensors"}},
          {"load_checkpoint: a text file",
           [&] {
             nn::Linear model(2, 2);
             optim::Adam opt(model.parameters());
             Generator gen(2);
             nn::load_checkpoint(junk.path, model, opt, gen);
           },
           {"load_checkpoint", "load_safetensors"}},
          {"save_checkpoint: into a missing folder",
           [&] {
             nn::Linear model(2, 2);
             optim::Adam opt(model.parameters());
             Generator gen(2);
             nn::save_checkpoint(missing_dir + "/c.safetensors", model, opt, gen, {});
           },
           {"save_checkpoint", "/nonexistent/encore"}},
      });
  run(probes);
}

TEST_CASE("probes: model sweep") {
  const Category category("model sweep");
  Generator* g = &probe_gen();
  auto dense = [g] {
    return std::make_shared<models::DenseAutoencoder>(
        models::DenseAutoencoderOptions{.hidden = {16}, .code = 4, .gen = g});
  };
  auto conv = [g] {
    return std::make_shared<models::ConvAutoencoder>(
        models::ConvAutoencoderOptions{.latent = 4, .channels = 2, .gen = g});
  };
  auto vae = [g] {
    return std::make_shared<models::VAE>(models::VAEOptions{.hidden = 8, .code = 2, .gen = g});
  };
  auto lstm = [] {
    return std::make_shared<models::LSTMAutoencoder>(
        models::LSTMAutoencoderOptions{.input_dim = 8, .hidden = 4});
  };
  (void)g;
  std::vector<Probe> probes = {
      {"DenseAutoencoder: code 0",
       [] { models::DenseAutoencoder({.hidden = {16}, .code = 0}); },
       {"DenseAutoencoder", "code"}},
      {"DenseAutoencoder: hidden width -1",
       [] { models::DenseAutoencoder({.hidden = {-1}, .code = 4}); },
       {"DenseAutoencoder", "-1"}},
      {"DenseAutoencoder: input 0",
       [] { models::DenseAutoencoder({.input = 0}); },
       {"DenseAutoencoder", "input"}},
      {"DenseAutoencoder: bn_eps 0",
       [] { models::DenseAutoencoder({.hidden = {16}, .code = 4, .bn_eps = 0}); },
       {"eps", "0"}},
      {"DenseAutoencoder: i64 input",
       [=] {
         dense()->loss(zeros({2, 784}, DType::i64));
       },
       {"DenseAutoencoder", "i64"}},
      {"DenseAutoencoder: empty batch",
       [=] {
         dense()->loss(zeros({0, 784}));
       },
       {"DenseAutoencoder", "[0, 784]"}},
      {"DenseAutoencoder: undefined input",
       [=] { dense()->loss(Tensor()); },
       {"DenseAutoencoder", "undefined"}},
      {"DenseAutoencoder: target of another shape",
       [=] {
         dense()->loss(zeros({2, 784}), zeros({3, 784}));
       },
       {"DenseAutoencoder", "[3, 784]"}},
      {"DenseAutoencoder: encode of another width",
       [=] {
         dense()->encode(zeros({2, 10}));
       },
       {"DenseAutoencoder.encode", "[2, 10]"}},
      returns(
          "DenseAutoencoder: NaN input",
          [=] {
            auto m = dense();
            m->eval();
            return m->loss(full({2, 784}, kNaN));
          },
          "returns [] f32, NaN in 1 of 1"),
      {"ConvAutoencoder: latent 0",
       [] { models::ConvAutoencoder({.latent = 0}); },
       {"ConvAutoencoder", "latent"}},
      {"ConvAutoencoder: channels -1",
       [] { models::ConvAutoencoder({.channels = -1}); },
       {"ConvAutoencoder", "-1"}},
      {"ConvAutoencoder: 27 x 27 images",
       [=] {
         conv()->loss(zeros({2, 1, 27, 27}));
       },
       {"ConvAutoencoder.loss", "[2, 1, 27, 27]"}},
      {"ConvAutoencoder: 3 channels",
       [=] {
         conv()->loss(zeros({2, 3, 28, 28}));
       },
       {"ConvAutoencoder.loss", "[2, 3, 28, 28]"}},
      {"ConvAutoencoder: i64 input",
       [=] {
         conv()->loss(zeros({2, 1, 28, 28}, DType::i64));
       },
       {"ConvAutoencoder", "i64"}},
      {"ConvAutoencoder: decode of another width",
       [=] {
         conv()->decode(zeros({2, 5}));
       },
       {"ConvAutoencoder.decode", "[2, 5]"}},
      {"ConvAutoencoder: empty batch",
       [=] {
         conv()->loss(zeros({0, 1, 28, 28}));
       },
       {"ConvAutoencoder.loss", "[0, 1, 28, 28]"}},
      {"VAE: hidden 0", [] { models::VAE({.hidden = 0}); }, {"VAE", "hidden"}},
      {"VAE: code -1", [] { models::VAE({.code = -1}); }, {"VAE", "-1"}},
      {"VAE: wrong input width",
       [=] {
         vae()->loss(zeros({2, 10}), *g);
       },
       {"VAE", "[2, 10]"}},
      {"VAE: i64 input",
       [=] {
         vae()->loss(zeros({2, 784}, DType::i64), *g);
       },
       {"VAE", "i64"}},
      {"VAE: decode of another width",
       [=] {
         vae()->decode(zeros({2, 3}));
       },
       {"VAE.decode", "[2, 3]"}},
      {"VAE: sample -1 images", [=] { vae()->sample(-1, *g); }, {"VAE", "-1"}},
      returns(
          "VAE: NaN input",
          [=] {
            return vae()->loss(full({2, 784}, kNaN), *g);
          },
          "returns [] f32, NaN in 1 of 1"),
      {"LSTMAutoencoder: hidden 0",
       [] { models::LSTMAutoencoder({.hidden = 0}); },
       {"LSTMAutoencoder", "hidden"}},
      {"LSTMAutoencoder: input_dim -1",
       [] { models::LSTMAutoencoder({.input_dim = -1}); },
       {"LSTMAutoencoder", "-1"}},
      {"LSTMAutoencoder: wrong input width",
       [=] {
         lstm()->loss(zeros({2, 5, 3}));
       },
       {"LSTMAutoencoder", "[2, 5, 3]"}},
      {"LSTMAutoencoder: lengths longer than T",
       [=] {
         lstm()->loss(zeros({2, 5, 8}), full({2}, 9, DType::i64));
       },
       {"LSTMAutoencoder", "9"}},
      {"LSTMAutoencoder: f32 lengths",
       [=] {
         lstm()->loss(zeros({2, 5, 8}), zeros({2}));
       },
       {"LSTMAutoencoder", "f32"}},
      {"LSTMAutoencoder: decode -1 steps",
       [=] {
         lstm()->decode({zeros({2, 4}), zeros({2, 4})}, -1);
       },
       {"LSTMAutoencoder", "-1"}},
      {"LSTMAutoencoder: empty batch",
       [=] {
         lstm()->loss(zeros({0, 5, 8}));
       },
       {"LSTMAutoencoder", "[0, 5, 8]"}},
      {"RecursiveAutoencoder: n 0",
       [] { models::RecursiveAutoencoder(0); },
       {"RecursiveAutoencoder", "0"}},
      {"RecursiveAutoencoder: leaves of another width",
       [] {
         models::RecursiveAutoencoder(4).loss(zeros({3, 5}));
       },
       {"RecursiveAutoencoder", "[3, 5]"}},
      {"RecursiveAutoencoder: one leaf",
       [] {
         models::RecursiveAutoencoder(4).loss(zeros({1, 4}));
       },
       {"RecursiveAutoencoder", "[1, 4]"}},
      {"RecursiveAutoencoder: i64 leaves",
       [] {
         models::RecursiveAutoencoder(4).loss(zeros({3, 4}, DType::i64));
       },
       {"RecursiveAutoencoder", "i64"}},
      {"RecursiveAutoencoder: encode of another width",
       [] {
         models::RecursiveAutoencoder(4).encode(zeros({3, 4}));
       },
       {"RecursiveAutoencoder.encode", "[3, 4]"}},
      {"RecursiveAutoencoder: NaN leaves",
       [] {
         models::RecursiveAutoencoder(4).loss(full({3, 4}, kNaN));
       },
       {"RecursiveAutoencoder.forward", "NaN"}},
      {"PCA: 0 components", [] { models::PCA(4, 0); }, {"PCA", "0"}},
      {"PCA: more components than dims", [] { models::PCA(4, 5); }, {"PCA", "5"}},
      {"PCA: fit one sample",
       [] {
         models::PCA(4, 2).fit(zeros({1, 4}));
       },
       {"PCA.fit", "2 samples"}},
      {"PCA: fit of another width",
       [] {
         models::PCA(4, 2).fit(zeros({8, 5}));
       },
       {"PCA", "[8, 5]"}},
      {"PCA: encode before fit",
       [] {
         models::PCA(4, 2).encode(zeros({8, 4}));
       },
       {"PCA"}},
      {"PCA: fit NaN data",
       [] {
         models::PCA(4, 2).fit(full({8, 4}, kNaN));
       },
       {"PCA"}},
      {"PCA: fit i64 data",
       [] {
         models::PCA(4, 2).fit(zeros({8, 4}, DType::i64));
       },
       {"PCA", "i64"}},
      {"Corruption: noise_sigma -1",
       [] { models::Corruption({.noise_sigma = -1}); },
       {"Corruption", "-1"}},
      {"Corruption: mask_prob 1.5",
       [] { models::Corruption({.mask_prob = 1.5}); },
       {"Corruption", "1.5"}},
      {"Corruption: lo above hi", [] { models::Corruption({.lo = 1, .hi = 0}); }, {"Corruption"}},
      {"Corruption: i64 input",
       [g] { models::Corruption().apply(zeros({2}, DType::i64), *g); },
       {"Corruption.apply", "i64"}},
      {"Corruption: undefined input",
       [g] { models::Corruption().apply(Tensor(), *g); },
       {"Corruption.apply", "undefined"}},
  };
  run(probes);
}
