// Checkpoints: a run stopped after N steps and resumed from the file by a fresh model,
// optimizer, Generator and Batches matches the uninterrupted N+M steps bitwise (Adam and SGD
// with momentum; at a pass boundary and mid-pass); every way a checkpoint can fail to fit
// throws an encore::Error naming the file and leaves everything unchanged; and safetensors
// files go both ways with Python (tests/nn/interchange.py, json + numpy only).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "nn/nn.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::expect_error;
using encore::testing::source_path;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// A fresh temp directory, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("encore_test_checkpoint_" + std::to_string(::getpid()) +
                                        "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

/// One thread for the scope: the bitwise comparisons assume a fixed summation order.
struct OneThread {
  int previous = get_num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(previous); }
};

/// A user-defined model: Linear -> BatchNorm1d -> tanh -> Dropout -> Linear. It has parameters,
/// buffers (running statistics) and a random layer drawing from the run's Generator, so a
/// resume must restore all three.
class Net : public nn::Module {
 public:
  Net(int64_t hidden, uint64_t init_seed, Generator* dropout_gen) : init_(init_seed) {
    fc1_ = register_module(
        "fc1", std::make_shared<nn::Linear>(4, hidden, nn::LinearOptions{.gen = &init_}));
    bn_ = register_module("bn", std::make_shared<nn::BatchNorm1d>(hidden));
    drop_ = register_module("drop", std::make_shared<nn::Dropout>(0.2, dropout_gen));
    fc2_ = register_module(
        "fc2", std::make_shared<nn::Linear>(hidden, 3, nn::LinearOptions{.gen = &init_}));
  }
  /// x: (N, 4) -> (N, 3)
  Tensor forward(const Tensor& x) {
    return fc2_->forward(drop_->forward(tanh(bn_->forward(fc1_->forward(x)))));
  }
  std::string describe() const override { return "Net"; }

 private:
  Generator init_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
  std::shared_ptr<nn::BatchNorm1d> bn_;
  std::shared_ptr<nn::Dropout> drop_;
};

/// The fixed regression data: 64 examples, (64, 4) -> (64, 3).
struct Data {
  Tensor x, y;
  Data() {
    Generator g(5);
    x = randn({64, 4}, g);
    y = randn({64, 3}, g);
  }
};

/// Runs steps [from, to) of the loop: step s uses batch s % size of the pass, and a new pass
/// (a new order) starts whenever that index is 0.
void train(Net& net, optim::Optimizer& opt, nn::Batches& batches, int64_t from, int64_t to) {
  for (int64_t s = from; s < to; ++s) {
    const int64_t i = s % batches.size();
    if (i == 0) batches.reshuffle();
    Tensors b = batches.batch(i);
    GradientTape tape;
    Tensor loss = nn::mse_loss(net.forward(b[0]), b[1]);
    opt.step(tape.gradient(loss, net.parameters()));
  }
}

/// Raw bytes of every parameter and buffer, by name.
std::map<std::string, std::string> bytes_of(const nn::Module& m) {
  std::map<std::string, std::string> out;
  for (const auto& [name, t] : m.state_dict()) {
    Tensor c = t.contiguous();
    out[name] = std::string(static_cast<const char*>(c.raw_data()),
                            static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  }
  return out;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& kind, const Tensors& params) {
  if (kind == "Adam") return std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = 0.01});
  return std::make_unique<optim::SGD>(
      params, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3});
}

/// Trains `total` steps straight, and again as `stop` steps, a checkpoint, and total - stop
/// steps by fresh objects resumed from it; checks both end bitwise equal. with_order = false
/// leaves the batches' order out of the checkpoint (only right at a pass boundary).
void check_resume(const std::string& kind, int64_t stop, int64_t total, bool with_order) {
  OneThread one;
  Data data;
  nn::BatchesOptions bo{.batch_size = 16};  // 4 batches a pass

  // Stopped at `stop` and checkpointed.
  TempDir dir;
  const std::string path = dir.file("run.safetensors");
  std::map<std::string, std::string> at_stop;
  {
    Generator gen_b(11);
    Net net_b(8, 1, &gen_b);
    auto opt_b = make_optimizer(kind, net_b.parameters());
    nn::Batches batches_b({data.x, data.y}, bo, gen_b);
    train(net_b, *opt_b, batches_b, 0, stop);
    at_stop = bytes_of(net_b);
    opt_b->set_lr(opt_b->lr() * 0.5);  // as a schedule would; must survive the resume
    nn::save_checkpoint(path, net_b, *opt_b, gen_b,
                        {.step = stop, .epoch = stop / 4, .extra = {{"note", "halfway"}}},
                        with_order ? &batches_b : nullptr);
  }

  // Fresh objects: another initialisation, another seed, then the checkpoint.
  Generator gen_c(12345);
  Net net_c(8, 2, &gen_c);
  auto opt_c = make_optimizer(kind, net_c.parameters());
  nn::Batches batches_c({data.x, data.y}, bo, gen_c);
  CHECK(bytes_of(net_c) != at_stop);
  nn::TrainingState st =
      nn::load_checkpoint(path, net_c, *opt_c, gen_c, with_order ? &batches_c : nullptr);
  CHECK(st.step == stop);
  CHECK(st.epoch == stop / 4);
  CHECK(st.extra == std::map<std::string, std::string>{{"note", "halfway"}});
  CHECK(bytes_of(net_c) == at_stop);
  CHECK(opt_c->steps() == stop);
  train(net_c, *opt_c, batches_c, stop, total);

  // Uninterrupted, with the same learning-rate change at `stop`.
  Generator gen_d(11);
  Net net_d(8, 1, &gen_d);
  auto opt_d = make_optimizer(kind, net_d.parameters());
  nn::Batches batches_d({data.x, data.y}, bo, gen_d);
  train(net_d, *opt_d, batches_d, 0, stop);
  opt_d->set_lr(opt_d->lr() * 0.5);
  CHECK(opt_c->lr() == opt_d->lr());
  train(net_d, *opt_d, batches_d, stop, total);

  std::map<std::string, std::string> resumed = bytes_of(net_c), straight = bytes_of(net_d);
  REQUIRE(resumed.size() == straight.size());
  for (const auto& entry : straight) {
    const std::string& name = entry.first;
    CAPTURE(name);
    CHECK(resumed.at(name) == entry.second);  // bitwise
  }
  CHECK(opt_c->steps() == total);
  CHECK(straight != at_stop);  // the M steps did move the weights
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Resume exactness

TEST_CASE("checkpoint: Adam resumes bitwise at a pass boundary") {
  check_resume("Adam", 8, 14, true);
  check_resume("Adam", 8, 14, false);  // at a boundary the next order comes from the Generator
}

TEST_CASE("checkpoint: Adam resumes bitwise mid-pass with the batches' order") {
  check_resume("Adam", 6, 13, true);
}

TEST_CASE("checkpoint: SGD with momentum resumes bitwise") {
  check_resume("SGD", 8, 15, true);
  check_resume("SGD", 5, 11, true);
}

TEST_CASE("checkpoint: resuming mid-pass without the order diverges") {
  // The reason save_checkpoint takes the Batches: without it the rest of the pass is drawn
  // anew and the run is no longer the uninterrupted one.
  OneThread one;
  Data data;
  TempDir dir;
  const std::string path = dir.file("run.safetensors");
  Generator g1(11);
  Net net(8, 1, &g1);
  optim::Adam opt(net.parameters(), {.lr = 0.01});
  nn::Batches b({data.x, data.y}, {.batch_size = 16}, g1);
  train(net, opt, b, 0, 6);
  nn::save_checkpoint(path, net, opt, g1, {.step = 6});
  train(net, opt, b, 6, 8);

  Generator g2(0);
  Net fresh(8, 2, &g2);
  optim::Adam opt2(fresh.parameters(), {.lr = 0.01});
  nn::Batches b2({data.x, data.y}, {.batch_size = 16}, g2);
  nn::load_checkpoint(path, fresh, opt2, g2, &b2);  // the file has no order: b2 keeps none
  CHECK_FALSE(b2.order().defined());
  train(fresh, opt2, b2, 6, 8);
  CHECK(bytes_of(fresh) != bytes_of(net));
}

TEST_CASE("checkpoint: the file holds the documented tensors and metadata") {
  OneThread one;
  Data data;
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  Generator gen(3);
  Net net(5, 1, &gen);
  optim::Adam opt(net.parameters());
  nn::Batches b({data.x, data.y}, {.batch_size = 16}, gen);
  train(net, opt, b, 0, 2);
  const Generator::State gs = gen.state();
  nn::save_checkpoint(path, net, opt, gen, {.step = 2, .epoch = 0, .extra = {{"lr0", "1e-3"}}}, &b);
  io::SafeTensors f = io::load_safetensors(path);
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "encore-checkpoint-1"},
                                                         {"step", "2"},
                                                         {"epoch", "0"},
                                                         {"optimizer", "Adam"},
                                                         {"lr0", "1e-3"}});
  for (const char* k :
       {"model.fc1.weight", "model.fc1.bias", "model.bn.weight", "model.bn.running_mean",
        "model.bn.running_var", "model.bn.num_batches_tracked", "model.fc2.weight",
        "optim.0.exp_avg", "optim.0.exp_avg_sq", "optim.0.step", "optim.step", "optim.lr",
        "optim.hyper.beta1", "generator.state", "data.order"}) {
    CAPTURE(k);
    CHECK(f.tensors.count(k) == 1);
  }
  CHECK(f.tensors.at("model.fc1.weight").shape() == Shape{5, 4});
  CHECK(f.tensors.at("optim.step").item<double>() == 2.0);
  CHECK(f.tensors.at("optim.0.step").item<double>() == 2.0);
  std::vector<int64_t> g = f.tensors.at("generator.state").to_vector<int64_t>();
  for (size_t i = 0; i < 4; ++i) CHECK(static_cast<uint64_t>(g[i]) == gs[i]);
  CHECK(f.tensors.at("data.order").to_vector<int64_t>() == b.order().to_vector<int64_t>());
  // Written atomically: nothing but the checkpoint in the directory.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("checkpoint: a checkpoint that does not fit throws naming the file, changing nothing") {
  OneThread one;
  Data data;
  TempDir dir;
  const std::string path = dir.file("adam.safetensors");
  {
    Generator gen(1);
    Net net(8, 1, &gen);
    optim::Adam opt(net.parameters());
    nn::Batches b({data.x, data.y}, {.batch_size = 16}, gen);
    train(net, opt, b, 0, 3);
    nn::save_checkpoint(path, net, opt, gen, {.step = 3}, &b);
  }
  // The target: trained a little so its state is not the file's.
  Generator gen(77);
  Net net(8, 9, &gen);
  optim::Adam adam(net.parameters());
  nn::Batches b({data.x, data.y}, {.batch_size = 16}, gen);
  train(net, adam, b, 0, 1);
  const auto model_before = bytes_of(net);
  const auto gen_before = gen.state();
  const auto order_before = b.order().to_vector<int64_t>();
  auto unchanged = [&] {
    CHECK(bytes_of(net) == model_before);
    CHECK(gen.state() == gen_before);
    CHECK(adam.steps() == 1);
    CHECK(b.order().to_vector<int64_t>() == order_before);
  };

  SUBCASE("another optimizer type") {
    optim::SGD sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
    std::string e = expect_error([&] { nn::load_checkpoint(path, net, sgd, gen, &b); });
    CHECK(contains(e, path));
    CHECK(contains(e, "'Adam'"));
    CHECK(contains(e, "'SGD'"));
    CHECK(sgd.steps() == 0);
    unchanged();
  }
  SUBCASE("a model of another shape") {
    Net wide(9, 1, &gen);
    optim::Adam wide_opt(wide.parameters());
    const auto wide_before = bytes_of(wide);
    std::string e = expect_error([&] { nn::load_checkpoint(path, wide, wide_opt, gen, &b); });
    CHECK(contains(e, path));
    CHECK(contains(e, "'fc1.weight' has shape [8, 4] in the file but [9, 4] in the model"));
    CHECK(contains(e, "fc2.weight"));
    CHECK(bytes_of(wide) == wide_before);
    unchanged();
  }
  SUBCASE("an optimizer over other parameters (model fits, optimizer does not)") {
    // The model loads first; when the optimizer then rejects its state the model is restored.
    Tensors some = net.parameters();
    some.resize(2);
    optim::Adam partial(some);
    std::string e = expect_error([&] { nn::load_checkpoint(path, net, partial, gen, &b); });
    CHECK(contains(e, path));
    CHECK(contains(e, "Adam.load_state_dict"));
    unchanged();
  }
  SUBCASE("batches of another size") {
    nn::Batches other({zeros({10, 4})}, {.batch_size = 5}, gen);
    std::string e = expect_error([&] { nn::load_checkpoint(path, net, adam, gen, &other); });
    CHECK(contains(e, path));
    CHECK(contains(e, "data.order"));
    unchanged();
  }
  SUBCASE("a truncated file") {
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string cut = dir.file("cut.safetensors");
    for (size_t keep : {all.size() - 1, all.size() / 2, size_t{100}, size_t{5}, size_t{0}}) {
      CAPTURE(keep);
      std::ofstream(cut, std::ios::binary | std::ios::trunc)
          .write(all.data(), std::streamsize(keep));
      std::string e = expect_error([&] { nn::load_checkpoint(cut, net, adam, gen, &b); });
      CHECK(contains(e, cut));
    }
    unchanged();
  }
  SUBCASE("a plain model save") {
    const std::string plain = dir.file("model.safetensors");
    net.save(plain);
    std::string e = expect_error([&] { nn::load_checkpoint(plain, net, adam, gen, &b); });
    CHECK(contains(e, plain));
    CHECK(contains(e, "not an encore training checkpoint"));
    CHECK(contains(e, "Module::load"));
    net.save(plain, {{"format", "pt"}});  // PyTorch's safetensors metadata
    e = expect_error([&] { nn::load_checkpoint(plain, net, adam, gen, &b); });
    CHECK(contains(e, "'pt'"));
    unchanged();
  }
  SUBCASE("a missing file") {
    const std::string none = dir.file("none.safetensors");
    CHECK(contains(expect_error([&] { nn::load_checkpoint(none, net, adam, gen); }), none));
    unchanged();
  }
  SUBCASE("reserved metadata keys cannot be saved as extra") {
    const std::string other = dir.file("other.safetensors");
    std::string e = expect_error([&] {
      nn::save_checkpoint(other, net, adam, gen, {.extra = {{"step", "5"}}});
    });
    CHECK(contains(e, "reserved"));
    CHECK_FALSE(fs::exists(other));
  }
}

// ---------------------------------------------------------------------------------------------
// Interchange with Python (tests/nn/interchange.py: json + numpy, its own safetensors parser)

namespace {

/// A module with every dtype and an empty and a 0-d tensor, for the interchange tests.
class Interop : public nn::Module {
 public:
  Interop()
      : fc_(register_module("fc", std::make_shared<nn::Linear>(3, 2))),
        scale_(register_parameter("scale", zeros({3}, DType::f64))),
        count_(register_buffer("count", zeros({2, 2}, DType::i64))),
        scalar_(register_buffer("scalar", zeros(Shape{}))),
        empty_(register_buffer("empty", zeros({0, 4}))) {}
  std::string describe() const override { return "Interop"; }
  std::shared_ptr<nn::Linear> fc_;
  Tensor scale_, count_, scalar_, empty_;
};

// The values interchange.py's `write` uses, written out independently here.
const std::vector<float> kWeight = {0.5f, -1.25f, 3.0f, 0.001f, 65504.0f, -0.0f};
const std::vector<float> kBias = {std::ldexp(1.0f, -140), 2.5f};  // a subnormal
const std::vector<double> kScale = {1.0 / 3.0, -2.5e-300, 1e300};
const std::vector<int64_t> kCount = {-(int64_t{1} << 62), (int64_t{1} << 53) + 1, 0, -1};

/// interchange.py: under $ENCORE_SOURCE_ROOT, else found walking up from the working directory
/// and the executable.
fs::path script_path() { return source_path("tests/nn/interchange.py"); }

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// The exit code of a shell command (-1 when it did not exit normally).
int run(const std::string& cmd) {
  int status = std::system(cmd.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A python3 that imports numpy: /usr/bin/python3, else python3 on PATH; "" if none.
std::string find_python() {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (run(std::string(py) + " -c 'import numpy' >/dev/null 2>&1") == 0) return py;
  return "";
}

/// Runs interchange.py with args; returns the exit code, and its output in *log.
int run_script(const std::string& python, const std::string& args, const TempDir& dir,
               std::string* log) {
  const std::string out = dir.file("script.log");
  int rc = run(shell_quote(python) + " " + shell_quote(script_path().string()) + " " + args + " >" +
               shell_quote(out) + " 2>&1");
  std::ifstream in(out);
  *log = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return rc;
}

template <class T>
json values_of(const Tensor& t) {
  json a = json::array();
  for (T v : t.to_vector<T>()) a.push_back(v);
  return a;
}

}  // namespace

TEST_CASE("checkpoint: interchange with Python (numpy reads our file, we read numpy's)") {
  const std::string python = find_python();
  if (python.empty()) {
    MESSAGE("skipped: python3-numpy missing");
    return;
  }
  REQUIRE_MESSAGE(fs::exists(script_path()), "cannot find ", script_path().string(),
                  " (set ENCORE_SOURCE_ROOT)");
  TempDir dir;
  std::string log;

  SUBCASE("read: a Module save checked by an independent parser") {
    Interop m;
    {
      NoGrad no_grad;
      m.fc_->weight().copy_(view(from_vector(kWeight, {6}), {2, 3}));
      m.fc_->bias().copy_(from_vector(kBias, {2}));
      m.scale_.copy_(from_vector(kScale, {3}));
      m.count_.copy_(view(from_vector(kCount, {4}), {2, 2}));
      m.scalar_.fill_(7);
    }
    const std::map<std::string, std::string> meta = {
        {"format", "pt"}, {"source", "encore"}, {"note", "\xc3\xbcnicode \xe2\x9c\x93"}};
    const std::string file = dir.file("module.safetensors");
    m.save(file, meta);

    json expected = {{"metadata", meta}, {"tensors", json::object()}};
    for (const auto& [name, t] : m.state_dict()) {
      json e = {{"shape", t.shape().vec()}};
      if (t.dtype() == DType::f32) {
        e["dtype"] = "F32";
        e["data"] = values_of<float>(t);
      } else if (t.dtype() == DType::f64) {
        e["dtype"] = "F64";
        e["data"] = values_of<double>(t);
      } else {
        e["dtype"] = "I64";
        e["data"] = values_of<int64_t>(t);
      }
      expected["tensors"][name] = e;
    }
    CHECK(expected["tensors"].size() == 6);
    const std::string exp_file = dir.file("expected.json");
    std::ofstream(exp_file) << expected.dump(1);
    int rc =
        run_script(python, "read " + shell_quote(file) + " " + shell_quote(exp_file), dir, &log);
    CHECK_MESSAGE(rc == 0, "interchange.py read failed (exit ", rc, "):\n", log);

    // The checker does check: a wrong expected value makes it fail.
    expected["tensors"]["count"]["data"][1] = (int64_t{1} << 53);
    std::ofstream(exp_file, std::ios::trunc) << expected.dump(1);
    rc = run_script(python, "read " + shell_quote(file) + " " + shell_quote(exp_file), dir, &log);
    CHECK_MESSAGE(rc == 1, "a wrong expectation should fail (exit ", rc, "):\n", log);
    CHECK(contains(log, "count"));
  }

  SUBCASE("write: numpy's file loads with io::load_safetensors and Module::load") {
    const std::string file = dir.file("numpy.safetensors");
    int rc = run_script(python, "write " + shell_quote(file), dir, &log);
    REQUIRE_MESSAGE(rc == 0, "interchange.py write failed (exit ", rc, "):\n", log);

    io::SafeTensors f = io::load_safetensors(file);
    CHECK(f.metadata ==
          std::map<std::string, std::string>{{"format", "pt"},
                                             {"source", "interchange.py"},
                                             {"note", "\xc3\xbcnicode \xe2\x9c\x93"}});
    REQUIRE(f.tensors.size() == 6);
    const Tensor& w = f.tensors.at("fc.weight");
    CHECK(w.dtype() == DType::f32);
    CHECK(w.shape() == Shape{2, 3});
    CHECK(w.to_vector<float>() == kWeight);
    CHECK(std::signbit(w.to_vector<float>()[5]));  // -0.0 kept
    CHECK(f.tensors.at("fc.bias").to_vector<float>() == kBias);
    CHECK(f.tensors.at("scale").dtype() == DType::f64);
    CHECK(f.tensors.at("scale").to_vector<double>() == kScale);
    CHECK(f.tensors.at("count").dtype() == DType::i64);
    CHECK(f.tensors.at("count").shape() == Shape{2, 2});
    CHECK(f.tensors.at("count").to_vector<int64_t>() == kCount);
    CHECK(f.tensors.at("scalar").shape() == Shape{});
    CHECK(f.tensors.at("scalar").item<float>() == 7.0f);
    CHECK(f.tensors.at("empty").shape() == Shape{0, 4});

    Interop m;
    nn::LoadReport r = m.load(file);
    CHECK(r.missing.empty());
    CHECK(r.unexpected.empty());
    CHECK(m.fc_->weight().to_vector<float>() == kWeight);
    CHECK(m.fc_->bias().to_vector<float>() == kBias);
    CHECK(m.scale_.to_vector<double>() == kScale);
    CHECK(m.count_.to_vector<int64_t>() == kCount);
    CHECK(m.scalar_.item<float>() == 7.0f);
    // The loaded weights work: fc([1, 1, 1]) = row sums + bias, 0.5 - 1.25 + 3 + 2^-140 and
    // 0.001 + 65504 - 0 + 2.5, rounded to f32 in any summation order (ulp(65504) = 1/256).
    Tensor y = m.fc_->forward(ones({1, 3}));
    CHECK(y.to_vector<float>() == std::vector<float>{2.25f, 65506.5f});

    // A plain Linear rejects the file, naming it and the keys that do not fit.
    nn::Linear fc(3, 2);
    std::string e = expect_error([&] { fc.load(file); });
    CHECK(contains(e, file));
    CHECK(contains(e, "unexpected key 'fc.weight'"));
  }
}

// ---------------------------------------------------------------------------------------------
// Temp files of interrupted saves

TEST_CASE("a save removes the temp files interrupted saves to the same path left") {
  TempDir dir;
  const std::string target = dir.file("run.ckpt");
  const std::string base = "run.ckpt.tmp.";
  // A pid that has exited: a child that is reaped at once.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  const std::string dead = std::to_string(child), self = std::to_string(::getpid());
  auto touch = [&](const std::string& name) {
    std::ofstream(dir.file(name)) << "partial";
    return name;
  };
  const std::string of_dead = touch(base + dead + ".3");
  const std::string of_self = touch(base + self + ".999999");  // a reused pid, not ours now
  const std::string of_live = touch(base + "1.0");             // pid 1 is alive: kept
  const std::string old_live = touch(base + "1.1");            // alive but untouched for hours
  fs::last_write_time(dir.file(old_live), fs::file_time_type::clock::now() - std::chrono::hours(3));
  const std::vector<std::string> kept = {
      touch("other.ckpt.tmp." + dead + ".0"),  // another target's
      touch(base + "x.1"),
      touch(base + dead),
      touch(base + dead + ".1.2"),
      touch("run.ckpt.tmp"),
  };

  nn::Linear model(2, 3);
  model.save(target);
  CHECK(fs::exists(target));
  CHECK_FALSE(fs::exists(dir.file(of_dead)));
  CHECK_FALSE(fs::exists(dir.file(of_self)));
  CHECK_FALSE(fs::exists(dir.file(old_live)));
  CHECK(fs::exists(dir.file(of_live)));
  for (const std::string& name : kept) CHECK_MESSAGE(fs::exists(dir.file(name)), name);
  // The saved file itself is intact and loads.
  nn::Linear again(2, 3);
  CHECK(again.load(target).missing.empty());
}
