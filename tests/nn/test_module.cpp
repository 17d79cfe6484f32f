// Module: dotted naming of nested parameters and buffers, trainable flags, train()/eval()
// recursion, save -> load round trips and every way loading can go wrong (all problems in one
// error), summary(), and a user-defined layer (STYLE.md's GatedDense) trained with a tape.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "nn/nn.h"
#include "tests/support/support.h"

using namespace encore;
namespace fs = std::filesystem;

namespace {

/// A user's layer, exactly as STYLE.md shows it: a Linear and a learned sigmoid gate.
class GatedDense : public nn::Module {
 public:
  GatedDense(int64_t in, int64_t out, Generator& gen)
      : fc_(register_module("fc",
                            std::make_shared<nn::Linear>(in, out, nn::LinearOptions{.gen = &gen}))),
        gate_(register_parameter("gate", zeros({out}))) {}
  /// x: (N, in) -> (N, out)
  Tensor forward(const Tensor& x) { return fc_->forward(x) * sigmoid(gate_); }
  std::string describe() const override { return "GatedDense"; }

 private:
  std::shared_ptr<nn::Linear> fc_;
  Tensor gate_;
};

/// A layer with a parameter, a buffer and a child, to exercise naming.
class Block : public nn::Module {
 public:
  explicit Block(int64_t n, Generator& gen)
      : fc_(register_module("fc",
                            std::make_shared<nn::Linear>(n, n, nn::LinearOptions{.gen = &gen}))),
        bn_(register_module("bn", std::make_shared<nn::BatchNorm1d>(n))),
        scale_(register_parameter("scale", ones({n}))),
        steps_(register_buffer("steps", zeros({1}))) {}
  Tensor forward(const Tensor& x) { return bn_->forward(fc_->forward(x)) * scale_; }
  std::string describe() const override { return "Block"; }
  std::shared_ptr<nn::BatchNorm1d> bn() const { return bn_; }

 private:
  std::shared_ptr<nn::Linear> fc_;
  std::shared_ptr<nn::BatchNorm1d> bn_;
  Tensor scale_, steps_;
};

class Net : public nn::Module {
 public:
  explicit Net(uint64_t seed) : gen_(seed) {
    enc_ = register_module("enc", std::make_shared<Block>(3, gen_));
    head_ = register_module("head",
                            std::make_shared<nn::Linear>(3, 2, nn::LinearOptions{.gen = &gen_}));
  }
  Tensor forward(const Tensor& x) { return head_->forward(relu(enc_->forward(x))); }
  std::string describe() const override { return "Net"; }
  std::shared_ptr<Block> enc() const { return enc_; }

 private:
  Generator gen_;
  std::shared_ptr<Block> enc_;
  std::shared_ptr<nn::Linear> head_;
};

/// A call that throws nothing gives "(no error)", which reads well in a failed CHECK.
std::string error_of(auto&& f) { return encore::testing::error_of(f, "(no error)"); }

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<std::string> names_of(const nn::NamedTensors& ts) {
  std::vector<std::string> out;
  for (auto& [n, t] : ts) out.push_back(n);
  return out;
}

/// A unique file path in the temp directory, removed when the guard goes.
struct TempFile {
  fs::path path;
  explicit TempFile(const std::string& stem) {
    static int counter = 0;
    path = fs::temp_directory_path() / ("encore_test_module_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++) + "_" + stem + ".safetensors");
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  std::string str() const { return path.string(); }
};

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

static_assert(!std::is_copy_constructible_v<nn::Linear>, "modules are not copyable");
static_assert(!std::is_copy_assignable_v<nn::Module>, "modules are not copyable");

TEST_CASE("parameters and buffers get dotted names in registration order") {
  // As PyTorch: a module's own tensors first, then each child's, depth first.
  Net net(1);
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"enc.scale", "enc.fc.weight", "enc.fc.bias", "enc.bn.weight",
                                 "enc.bn.bias", "head.weight", "head.bias"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"enc.steps", "enc.bn.running_mean", "enc.bn.running_var",
                                 "enc.bn.num_batches_tracked"});
  CHECK(net.parameters().size() == 7);
  CHECK(net.buffers().size() == 4);
  CHECK(net.num_parameters() == 9 + 3 + 3 + 3 + 3 + 6 + 2);
  CHECK(net.state_dict().size() == 11);
  CHECK(names_of(net.enc()->named_parameters())[1] == "fc.weight");
  CHECK(net.children().size() == 2);
  CHECK(net.children()[1].first == "head");
}

TEST_CASE("parameters are trainable, buffers are not") {
  Net net(1);
  for (const Tensor& p : net.parameters()) CHECK(p.trainable());
  for (const Tensor& b : net.buffers()) CHECK_FALSE(b.trainable());
  // A tape watches parameters automatically but not buffers.
  GradientTape tape;
  Tensor y = net.forward(ones({4, 3}));
  CHECK(tape.watched_variables().size() == net.parameters().size());
  // state_dict aliases: writing through it changes the module.
  Tensor w = net.state_dict().at("head.bias");
  w.fill_(3);
  CHECK(net.named_parameters().back().second.to_vector<float>() == std::vector<float>{3, 3});
}

TEST_CASE("train() and eval() apply recursively") {
  Net net(1);
  CHECK(net.is_training());
  CHECK(net.enc()->bn()->is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.enc()->is_training());
  CHECK_FALSE(net.enc()->bn()->is_training());
  net.enc()->train();
  CHECK_FALSE(net.is_training());
  CHECK(net.enc()->bn()->is_training());
  net.train();
  CHECK(net.enc()->bn()->is_training());
}

TEST_CASE("registration errors") {
  struct Bad : nn::Module {
    void add(const std::string& name, Tensor t) { register_parameter(name, t); }
    void add_buffer(const std::string& name, Tensor t) { register_buffer(name, t); }
    std::string describe() const override { return "Bad"; }
  };
  Bad m;
  m.add("w", zeros({2}));
  CHECK(error_of([&] { m.add("w", zeros({2})); }) ==
        "register: name 'w' is already registered in Bad");
  CHECK(error_of([&] { m.add_buffer("w", zeros({2})); }) ==
        "register: name 'w' is already registered in Bad");
  CHECK(error_of([&] { m.add("a.b", zeros({2})); }) ==
        "register: invalid name 'a.b' (must be non-empty and contain no '.')");
  CHECK(contains(error_of([&] { m.add("i", zeros({2}, DType::i64)); }), "must be f32 or f64"));
}

TEST_CASE("save -> load round trip") {
  TempFile file("roundtrip");
  Net a(1), b(2);
  // Make the buffers non-trivial: one training step updates the running statistics.
  a.forward(randn({5, 3}));
  REQUIRE_FALSE(
      same_values(a.state_dict().at("enc.fc.weight"), b.state_dict().at("enc.fc.weight")));
  a.save(file.str(), {{"model", "Net"}});
  nn::Module& target = b;
  nn::LoadReport report = target.load(file.str());
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (auto& entry : sa) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    INFO(name);
    CHECK(same_values(t, sb.at(name)));
    CHECK(t.dtype() == sb.at(name).dtype());
  }
  CHECK(sb.at("enc.bn.num_batches_tracked").item<int64_t>() == 1);
  a.eval();
  b.eval();
  Tensor x = randn({4, 3});
  CHECK(same_values(a.forward(x), b.forward(x)));
  // Loading keeps the parameter handles: b's parameters are the same tensors as before.
  CHECK(b.named_parameters().front().second.same(b.state_dict().at("enc.scale")));
}

TEST_CASE("loading reports every problem at once") {
  Net net(1);
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : net.state_dict()) state.emplace(n, t.clone());
  state.at("head.weight") = zeros({3, 2});  // wrong shape (model: [2, 3])
  state.erase("enc.scale");                 // missing
  state.erase("enc.bn.running_var");        // missing
  state.emplace("enc.extra", zeros({1}));   // unexpected
  TempFile file("broken");
  io::save_safetensors(file.str(), state);
  const std::vector<float> before = net.state_dict().at("enc.fc.weight").to_vector<float>();

  SUBCASE("strict: shape, missing and unexpected keys in one error") {
    std::string msg = error_of([&] { net.load(file.str()); });
    INFO(msg);
    CHECK(contains(msg, file.str()));
    CHECK(contains(msg, "4 problem(s) loading state into Net"));
    CHECK(contains(msg, "'head.weight' has shape [3, 2] in the file but [2, 3] in the model"));
    CHECK(contains(msg, "missing key 'enc.scale'"));
    CHECK(contains(msg, "missing key 'enc.bn.running_var'"));
    CHECK(contains(msg, "unexpected key 'enc.extra'"));
    // Nothing was copied.
    CHECK(net.state_dict().at("enc.fc.weight").to_vector<float>() == before);
  }
  SUBCASE("non-strict: a shape mismatch still throws") {
    std::string msg = error_of([&] { net.load(file.str(), /*strict=*/false); });
    CHECK(contains(msg, "1 problem(s)"));
    CHECK(contains(msg, "'head.weight' has shape [3, 2]"));
  }
  SUBCASE("non-strict: missing and unexpected keys are reported, the rest is loaded") {
    state.at("head.weight") = full({2, 3}, 0.5);
    io::save_safetensors(file.str(), state);
    nn::LoadReport r = net.load(file.str(), /*strict=*/false);
    CHECK(r.missing == std::vector<std::string>{"enc.bn.running_var", "enc.scale"});
    CHECK(r.unexpected == std::vector<std::string>{"enc.extra"});
    CHECK(net.state_dict().at("head.weight").to_vector<float>() == std::vector<float>(6, 0.5f));
  }
  SUBCASE("a wrong dtype") {
    state.at("head.weight") = zeros({2, 3}, DType::f64);
    io::save_safetensors(file.str(), state);
    CHECK(contains(error_of([&] { net.load(file.str(), false); }),
                   "'head.weight' has dtype f64 in the file but f32 in the model"));
  }
}

TEST_CASE("loading checks BatchNorm's values, not only their shapes") {
  Net net(1);
  std::map<std::string, Tensor> good;
  for (auto& [n, t] : net.state_dict()) good.emplace(n, t.clone());
  const std::vector<float> before = net.state_dict().at("enc.fc.weight").to_vector<float>();
  auto load_with = [&](const std::string& key, const Tensor& value) {
    std::map<std::string, Tensor> state = good;
    state.at(key) = value;
    return error_of([&] { net.load_state_dict(state); });
  };
  const std::string count = "enc.bn.num_batches_tracked";
  // -1 made the running mean NaN on the next step (momentum 1 / 0); INT64_MAX overflowed.
  CHECK(contains(load_with(count, scalar(-1, DType::i64)),
                 "'enc.bn.num_batches_tracked' is -1; BatchNorm1d(3) counts batches in [0, 2^53]"));
  CHECK(contains(load_with(count, from_vector(std::vector<int64_t>{INT64_MAX}, Shape{})),
                 "'enc.bn.num_batches_tracked' is 9223372036854775807"));
  CHECK(
      contains(load_with(count, scalar(double(nn::BatchNorm::kMaxBatchesTracked) * 2, DType::i64)),
               "counts batches in [0, 2^53]"));
  CHECK(contains(load_with("enc.bn.running_var", tensor({1, -0.5, 1})),
                 "'enc.bn.running_var' has the negative variance -0.5 for channel 1"));
  // A rejected load copies nothing.
  CHECK(net.state_dict().at("enc.fc.weight").to_vector<float>() == before);
  CHECK(net.state_dict().at(count).item<int64_t>() == 0);
  // The limits themselves load.
  CHECK(load_with(count, scalar(double(nn::BatchNorm::kMaxBatchesTracked), DType::i64)) ==
        "(no error)");
  CHECK(net.state_dict().at(count).item<int64_t>() == nn::BatchNorm::kMaxBatchesTracked);
  CHECK(load_with("enc.bn.running_var", zeros({3})) == "(no error)");
}

TEST_CASE("loading a truncated or missing file throws a clear error") {
  Net net(1);
  TempFile file("truncated");
  net.save(file.str());
  const auto size = fs::file_size(file.path);
  for (uintmax_t keep : {size - 4, size / 2, uintmax_t{5}}) {
    CAPTURE(keep);
    fs::resize_file(file.path, keep);
    std::string msg = error_of([&] { net.load(file.str()); });
    INFO(msg);
    CHECK(msg != "(no error)");
    CHECK(contains(msg, file.str()));
  }
  CHECK(contains(error_of([&] { net.load("/nonexistent/dir/model.safetensors"); }), "cannot open"));
}

TEST_CASE("summary() lists the tree with parameter counts") {
  Net net(1);
  CHECK(net.summary() ==
        "Net\n"
        "  enc: Block  [3 params]\n"
        "    fc: Linear(3 -> 3)  [12 params]\n"
        "    bn: BatchNorm1d(3)  [6 params]\n"
        "  head: Linear(3 -> 2)  [8 params]\n"
        "total parameters: 29\n");
  auto seq = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 2),
                                              std::make_shared<nn::ReLU>());
  CHECK(seq->summary() ==
        "Sequential(2 modules)\n"
        "  0: Linear(4 -> 2)  [10 params]\n"
        "  1: ReLU\n"
        "total parameters: 10\n");
}

TEST_CASE("a user-defined layer trains with a GradientTape") {
  Generator gen(42);
  auto model = std::make_shared<GatedDense>(8, 4, gen);
  CHECK(names_of(model->named_parameters()) ==
        std::vector<std::string>{"gate", "fc.weight", "fc.bias"});
  Tensor x = randn({32, 8}, gen);
  Tensor target = matmul(x, randn({8, 4}, gen)) * 0.5;
  auto loss_of = [&] { return mean(square(model->forward(x) - target)); };
  const double first = loss_of().item();
  const double lr = 0.1;
  double last = first;
  for (int step = 0; step < 30; ++step) {
    GradientTape tape;
    Tensor loss = loss_of();
    Tensors grads = tape.gradient(loss, model->parameters());
    NoGrad no_grad;
    Tensors params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(params[i] - grads[i] * lr);
    CHECK(loss.item() <= last + 1e-6);  // plain gradient descent with a small step: monotone
    last = loss.item();
  }
  CHECK(loss_of().item() < 0.5 * first);
  // The gate learned something too.
  CHECK(sum(abs(model->state_dict().at("gate"))).item() > 0);
}

namespace user_code {
// A user's layer that does not override describe().
class Plain : public nn::Module {
 public:
  Plain() : w_(register_parameter("w", zeros({2}))) {}

 private:
  Tensor w_;
};
}  // namespace user_code

TEST_CASE("a load mismatch names the module's class when describe() is not overridden") {
  user_code::Plain m;
  CHECK(m.describe() == "user_code::Plain");
  std::string msg = error_of([&] { m.load_state_dict({{"w", zeros({3})}}); });
  CHECK(msg ==
        "load_state_dict: 1 problem(s) loading state into user_code::Plain:\n  'w' has shape [3] "
        "in the file but [2] in the model");
  // Through a file: the file's name comes first.
  TempFile file("plain");
  io::save_safetensors(file.str(), {{"w", zeros({3})}});
  std::string from_file = error_of([&] { m.load(file.str()); });
  CHECK(from_file.rfind("load: " + file.str() + ": ", 0) == 0);
  CHECK(contains(from_file, "user_code::Plain"));
  CHECK(contains(from_file, "'w' has shape [3]"));
}
