// The training loop (nn::Trainer) and the plots (encore::plot): the files a run writes
// (history.csv, metrics.json, checkpoint, loss.png) and their contents; loss going down on a
// small regression; exact resume (one thread) from an end-of-epoch checkpoint, from a mid-epoch
// one (checkpoint_every, after a crash), and after SIGINT; a NaN loss or non-finite parameters
// stop training with an error naming the step and never reach a checkpoint; PNG output.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/nn.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::expect_error;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// A fresh temp directory, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("encore_test_train_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string dir(const std::string& name) const { return (path / name).string(); }
};

/// One thread for the scope: the bitwise comparisons assume a fixed summation order.
struct OneThread {
  int previous = get_num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(previous); }
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Linear -> tanh -> Dropout (drawing from the run's Generator) -> Linear: parameters, and a
/// random layer, so an exact resume must restore the Generator too.
class Net : public nn::Module {
 public:
  Net(uint64_t init_seed, Generator* dropout_gen) : init_(init_seed) {
    fc1_ = register_module("fc1",
                           std::make_shared<nn::Linear>(4, 16, nn::LinearOptions{.gen = &init_}));
    drop_ = register_module("drop", std::make_shared<nn::Dropout>(0.1, dropout_gen));
    fc2_ = register_module("fc2",
                           std::make_shared<nn::Linear>(16, 2, nn::LinearOptions{.gen = &init_}));
  }
  /// x: (N, 4) -> (N, 2)
  Tensor forward(const Tensor& x) { return fc2_->forward(drop_->forward(tanh(fc1_->forward(x)))); }
  std::string describe() const override { return "Net"; }

 private:
  Generator init_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
  std::shared_ptr<nn::Dropout> drop_;
};

/// A small regression: y = x A with A fixed, 64 training and 32 validation rows.
struct Problem {
  Tensor x, y, val_x, val_y;
  Problem() {
    Generator g(123);
    Tensor a = randn({4, 2}, g);
    x = randn({64, 4}, g);
    y = matmul(x, a);
    val_x = randn({32, 4}, g);
    val_y = matmul(val_x, a);
  }
};

/// Everything one run owns: its Generator, model, optimizer and Batches, built the same way
/// each time, so two runs differ only by what the Trainer does with them.
struct Run {
  Generator gen{7};
  std::shared_ptr<Net> model = std::make_shared<Net>(1, &gen);
  optim::Adam opt{model->parameters(), {.lr = 0.02}};
  const Problem& p;
  nn::Batches batches;
  explicit Run(const Problem& problem)
      : p(problem), batches({problem.x, problem.y}, {.batch_size = 8}, gen) {}

  nn::FitResult fit(nn::FitOptions o, const std::function<void(int64_t)>& before_step = {}) {
    o.progress = false;
    nn::Trainer trainer(*model, opt, gen, std::move(o));
    int64_t calls = 0;
    return trainer.fit(
        batches,
        [&](const Tensors& b) {
          if (before_step) before_step(calls);
          ++calls;
          return nn::mse_loss(model->forward(b[0]), b[1]);
        },
        [&] {
          return nn::Metrics{{"val_loss", nn::mse_loss(model->forward(p.val_x), p.val_y).item()}};
        });
  }
};

/// Parameters compared element by element with ==: a resumed run must be bitwise the same.
void check_same_parameters(const nn::Module& a, const nn::Module& b) {
  nn::NamedTensors pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    std::vector<float> va = pa[i].second.to_vector<float>(), vb = pb[i].second.to_vector<float>();
    REQUIRE(va.size() == vb.size());
    size_t differ = 0;
    for (size_t k = 0; k < va.size(); ++k) differ += va[k] != vb[k];
    INFO(pa[i].first);
    CHECK(differ == 0);
  }
}

void check_same_history(const nn::FitResult& a, const nn::FitResult& b) {
  REQUIRE(a.history.size() == b.history.size());
  for (size_t i = 0; i < a.history.size(); ++i) {
    INFO("epoch " << i + 1);
    CHECK(a.history[i].epoch == b.history[i].epoch);
    CHECK(a.history[i].train_loss == b.history[i].train_loss);
    CHECK(a.history[i].metrics == b.history[i].metrics);
  }
}

/// The step of a checkpoint file, from its metadata.
int64_t checkpoint_step(const std::string& dir) {
  io::SafeTensors f = io::load_safetensors(dir + "/checkpoint.safetensors");
  return std::stoll(f.metadata.at("step"));
}

}  // namespace

TEST_CASE("Trainer writes history.csv, metrics.json, a checkpoint and loss.png") {
  TempDir tmp;
  Problem p;
  Run run(p);
  std::string out = tmp.dir("run");
  nn::FitResult r = run.fit({.epochs = 3,
                             .out_dir = out,
                             .name = "tiny",
                             .config = {{"lr", "0.02"}, {"quiet", "false"}, {"data", "x/y"}}});
  REQUIRE(r.history.size() == 3);
  CHECK(r.steps == 24);  // 64 rows in batches of 8, 3 epochs
  CHECK_FALSE(r.interrupted);
  CHECK_FALSE(r.resumed);

  std::string csv = read_text(fs::path(out) / "history.csv");
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  CHECK(line == "epoch,train_loss,val_loss,seconds,lr");
  for (int epoch = 1; epoch <= 3; ++epoch) {
    REQUIRE(std::getline(lines, line));
    CHECK(line.rfind(std::to_string(epoch) + ",", 0) == 0);
    std::vector<std::string> cells;
    std::stringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    REQUIRE(cells.size() == 5);
    CHECK(std::stod(cells[1]) == doctest::Approx(r.history[epoch - 1].train_loss).epsilon(1e-8));
    CHECK(std::stod(cells[4]) == doctest::Approx(0.02));
  }
  CHECK_FALSE(std::getline(lines, line));

  json m = json::parse(read_text(fs::path(out) / "metrics.json"));
  CHECK(m.at("name") == "tiny");
  CHECK(m.at("encore_version").get<std::string>() != "unknown");
  CHECK(m.at("steps") == 24);
  CHECK(m.at("epochs_completed") == 3);
  CHECK(m.at("final_metrics").at("val_loss").get<double>() ==
        doctest::Approx(r.final_metrics.at("val_loss")));
  CHECK(m.at("config").at("lr").is_number());  // "0.02" stored as a number
  CHECK(m.at("config").at("lr").get<double>() == doctest::Approx(0.02));
  CHECK(m.at("config").at("quiet") == false);
  CHECK(m.at("config").at("data") == "x/y");
  CHECK(m.at("wall_seconds").get<double>() > 0);
  CHECK(m.at("steps_per_second").get<double>() > 0);
  CHECK(m.at("samples_per_second").get<double>() > 0);
  CHECK_FALSE(m.at("machine").at("cpu").get<std::string>().empty());
  CHECK(m.at("machine").at("cores").get<int>() >= 1);
  CHECK(m.at("machine").at("threads").get<int>() == get_num_threads());
  CHECK_FALSE(m.at("machine").at("openblas_kernel").get<std::string>().empty());
  CHECK(m.at("history").size() == 3);

  CHECK(fs::exists(fs::path(out) / "checkpoint.safetensors"));
  CHECK(checkpoint_step(out) == 24);
  if (plot::available()) CHECK(fs::file_size(fs::path(out) / "loss.png") > 1000);

  // write_metrics adds the program's own results and notes.
  nn::Trainer t(*run.model, run.opt, run.gen, {.out_dir = out});
  t.write_metrics({{"pca_error", 13.87}}, {{"picture", "x.png"}});
  json m2 = json::parse(read_text(fs::path(out) / "metrics.json"));
  CHECK(m2.at("results").at("pca_error") == 13.87);
  CHECK(m2.at("notes").at("picture") == "x.png");
}

TEST_CASE("Trainer: the loss goes down on a small regression") {
  Problem p;
  Run run(p);
  nn::FitResult r = run.fit({.epochs = 30, .out_dir = ""});
  REQUIRE(r.history.size() == 30);
  double first = r.history.front().metrics.at("val_loss");
  double last = r.history.back().metrics.at("val_loss");
  INFO("val_loss " << first << " -> " << last);
  // The targets have variance ~4; a fitted 16-unit net gets far below it.
  CHECK(first > 0.5);
  CHECK(last < 0.2 * first);
  CHECK(last < 0.3);
}

TEST_CASE("Trainer: fit sees the batches a hand-written loop over the Batches sees") {
  Problem p;
  auto batches_seen = [&](bool trainer) {
    Generator gen(11);
    nn::Linear model(4, 2, nn::LinearOptions{.gen = &gen});
    optim::SGD opt(model.parameters(), {.lr = 0.01});
    nn::Batches batches({p.x, p.y}, {.batch_size = 16}, gen);
    std::vector<std::vector<float>> seen;
    auto loss = [&](const Tensors& b) {
      seen.push_back(b[0].to_vector<float>());
      return nn::mse_loss(model.forward(b[0]), b[1]);
    };
    if (trainer) {
      nn::Trainer t(model, opt, gen, {.epochs = 3, .out_dir = "", .progress = false});
      t.fit(batches, loss);
    } else {
      for (int epoch = 0; epoch < 3; ++epoch)
        for (const Tensors& b : batches) {  // the README's loop
          GradientTape tape;
          Tensor l = loss(b);
          opt.step(tape.gradient(l, model.parameters()));
        }
    }
    return seen;
  };
  std::vector<std::vector<float>> by_trainer = batches_seen(true), by_hand = batches_seen(false);
  REQUIRE(by_trainer.size() == 12);  // 64 rows in batches of 16, 3 epochs
  CHECK(by_trainer == by_hand);
  CHECK(by_trainer[0] != by_trainer[4]);  // each epoch draws a new order
  CHECK(by_trainer[4] != by_trainer[8]);
}

TEST_CASE("Trainer: resuming from an end-of-epoch checkpoint is bitwise the same") {
  OneThread one;
  TempDir tmp;
  Problem p;
  Run full(p);
  nn::FitResult rf = full.fit({.epochs = 4, .out_dir = tmp.dir("full")});

  std::string out = tmp.dir("split");
  Run first(p);
  first.fit({.epochs = 2, .out_dir = out});
  CHECK(checkpoint_step(out) == 16);
  Run second(p);  // a fresh process's objects: same construction, state from the checkpoint
  nn::FitResult rs = second.fit({.epochs = 4, .out_dir = out, .resume = true});
  CHECK(rs.resumed);
  CHECK(rs.steps == 32);
  check_same_parameters(*full.model, *second.model);
  check_same_history(rf, rs);

  // Resuming a finished run only evaluates and reports.
  Run third(p);
  nn::FitResult rt = third.fit({.epochs = 4, .out_dir = out, .resume = true});
  CHECK(rt.steps == 32);
  CHECK(rt.history.size() == 4);
  check_same_parameters(*full.model, *third.model);
  CHECK(rt.final_metrics == rf.final_metrics);
}

TEST_CASE("Trainer: resuming from a mid-epoch checkpoint (checkpoint_every) is bitwise the same") {
  OneThread one;
  TempDir tmp;
  Problem p;
  Run full(p);
  nn::FitResult rf = full.fit({.epochs = 3, .out_dir = tmp.dir("full")});

  std::string out = tmp.dir("crash");
  Run crashed(p);
  // A crash in step 12 (0-based 11): the last checkpoint is the one after step 9, in epoch 2.
  CHECK_THROWS_AS(crashed.fit({.epochs = 3, .out_dir = out, .checkpoint_every = 3},
                              [](int64_t call) {
                                if (call == 11) throw std::runtime_error("simulated crash");
                              }),
                  std::runtime_error);
  CHECK(checkpoint_step(out) == 9);
  Run resumed(p);
  nn::FitResult rr = resumed.fit({.epochs = 3, .out_dir = out, .resume = true});
  CHECK(rr.resumed);
  CHECK(rr.steps == 24);
  check_same_parameters(*full.model, *resumed.model);
  check_same_history(rf, rr);
}

namespace {
int g_outer_sigints = 0;
void outer_handler(int) { ++g_outer_sigints; }
}  // namespace

TEST_CASE("Trainer: SIGINT writes a checkpoint, returns interrupted, and resume is exact") {
  OneThread one;
  TempDir tmp;
  Problem p;
  Run full(p);
  nn::FitResult rf = full.fit({.epochs = 2, .out_dir = tmp.dir("full")});

  struct sigaction mine = {}, previous = {};
  mine.sa_handler = outer_handler;
  sigemptyset(&mine.sa_mask);
  sigaction(SIGINT, &mine, &previous);

  std::string out = tmp.dir("sigint");
  Run stopped(p);
  nn::FitResult ri = stopped.fit({.epochs = 2, .out_dir = out}, [](int64_t call) {
    if (call == 4) std::raise(SIGINT);  // during step 5 of epoch 1
  });
  CHECK(ri.interrupted);
  CHECK(ri.steps == 5);  // the step in progress was finished
  CHECK(ri.history.empty());
  CHECK(checkpoint_step(out) == 5);
  CHECK(json::parse(read_text(fs::path(out) / "metrics.json")).at("interrupted") == true);
  CHECK(g_outer_sigints == 0);  // the Trainer handled it...
  struct sigaction now = {};
  sigaction(SIGINT, nullptr, &now);
  bool restored = now.sa_handler == &outer_handler;
  CHECK(restored);  // ...and put the previous handler back
  sigaction(SIGINT, &previous, nullptr);

  Run resumed(p);
  nn::FitResult rr = resumed.fit({.epochs = 2, .out_dir = out, .resume = true});
  CHECK(rr.resumed);
  CHECK_FALSE(rr.interrupted);
  CHECK(rr.steps == 16);
  check_same_parameters(*full.model, *resumed.model);
  check_same_history(rf, rr);
}

TEST_CASE("Trainer: a NaN loss stops training with an error naming the step") {
  TempDir tmp;
  Problem p;
  Run run(p);
  std::string out = tmp.dir("nan");
  nn::Trainer trainer(*run.model, run.opt, run.gen,
                      {.epochs = 2, .out_dir = out, .checkpoint_every = 1, .progress = false});
  int64_t calls = 0;
  std::string msg = expect_error([&] {
    trainer.fit(run.batches, [&](const Tensors& b) {
      Tensor loss = nn::mse_loss(run.model->forward(b[0]), b[1]);
      return ++calls == 11 ? loss * std::numeric_limits<double>::quiet_NaN() : loss;
    });
  });
  CHECK(msg.find("nan at step 11 ") != std::string::npos);
  CHECK(msg.find("epoch 2, step 3 of 8") != std::string::npos);
  CHECK(checkpoint_step(out) == 10);  // the last good step; nothing written after it
  for (const Tensor& t : run.model->parameters())
    for (float v : t.to_vector<float>()) REQUIRE(std::isfinite(v));
}

TEST_CASE("Trainer: a non-finite gradient under a finite loss stops training, naming it") {
  TempDir tmp;
  Problem p;
  Run run(p);
  std::string out = tmp.dir("nan_grad");
  nn::Trainer trainer(*run.model, run.opt, run.gen,
                      {.epochs = 1, .out_dir = out, .checkpoint_every = 1, .progress = false});
  const Tensor w = run.model->named_parameters().front().second;
  const std::string w_name = run.model->named_parameters().front().first;
  int64_t calls = 0;
  std::string msg = expect_error([&] {
    trainer.fit(run.batches, [&](const Tensors& b) {
      Tensor loss = nn::mse_loss(run.model->forward(b[0]), b[1]);
      // 0 * sqrt(0 * w) is 0, but its gradient is 0 * inf = NaN at every element of w.
      return ++calls == 4 ? loss + 0.0 * sum(sqrt(w * 0.0)) : loss;
    });
  });
  CAPTURE(msg);
  CHECK(msg.find("gradient of parameter '" + w_name + "'") != std::string::npos);
  CHECK(msg.find("not finite at step 4 (epoch 1, step 4 of 8)") != std::string::npos);
  CHECK(msg.find("although the loss is") != std::string::npos);
  CHECK(checkpoint_step(out) == 3);
  for (const Tensor& t : run.model->parameters())
    for (float v : t.to_vector<float>()) REQUIRE(std::isfinite(v));
}

TEST_CASE("Trainer: non-finite parameters are never checkpointed") {
  TempDir tmp;
  Problem p;
  Run run(p);
  std::string out = tmp.dir("inf");
  int64_t calls = 0;
  nn::FitOptions o{.epochs = 1, .out_dir = out, .checkpoint_every = 1, .progress = false};
  o.on_gradients = [&](Tensors& grads) {
    if (++calls == 3) grads[0] = full(grads[0].shape(), std::numeric_limits<double>::infinity());
  };
  o.handle_sigint = false;
  nn::Trainer trainer(*run.model, run.opt, run.gen, o);
  // SGD-like effect through Adam: an infinite gradient makes fc1.weight NaN.
  std::string msg = expect_error([&] {
    trainer.fit(run.batches,
                [&](const Tensors& b) { return nn::mse_loss(run.model->forward(b[0]), b[1]); });
  });
  CHECK(msg.find("fc1.weight") != std::string::npos);
  CHECK(msg.find("after step 3") != std::string::npos);
  CHECK(checkpoint_step(out) == 2);
}

TEST_CASE("Trainer: steps without a Batches, and the errors a caller can cause") {
  TempDir tmp;
  Generator gen(3);
  auto model = std::make_shared<nn::Linear>(3, 1, nn::LinearOptions{.gen = &gen});
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  Tensor x = randn({16, 3}, gen), y = sum(x, {1}, /*keepdim=*/true);
  std::vector<int64_t> seen;
  nn::Trainer trainer(*model, opt, gen, {.epochs = 2, .out_dir = "", .progress = false});
  nn::FitResult r = trainer.fit(5, [&](int64_t step) {
    seen.push_back(step);
    return nn::mse_loss(model->forward(x), y);
  });
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(r.history.size() == 2);
  CHECK(r.history[1].train_loss < r.history[0].train_loss);

  CHECK(expect_error([&] {
          nn::Trainer bad(*model, opt, gen, {.epochs = 0});
        }).find("epochs must be at least 1") != std::string::npos);
  CHECK(expect_error([&] {
          nn::Trainer bad(*model, opt, gen, {.out_dir = "", .resume = true});
        }).find("resume needs an out_dir") != std::string::npos);
  CHECK(expect_error([&] {
          trainer.fit(0, [&](int64_t) { return scalar(0); });
        }).find("steps_per_epoch must be at least 1") != std::string::npos);
  std::string msg =
      expect_error([&] { trainer.fit(2, [&](int64_t) { return model->forward(x); }); });
  CHECK(msg.find("must return a scalar, got [16, 1]") != std::string::npos);

  // A checkpoint written with another batch size does not resume silently.
  std::string out = tmp.dir("spe");
  nn::Trainer a(*model, opt, gen, {.out_dir = out, .progress = false});
  a.fit(4, [&](int64_t) { return nn::mse_loss(model->forward(x), y); });
  nn::Trainer b(*model, opt, gen, {.out_dir = out, .resume = true, .progress = false});
  msg =
      expect_error([&] { b.fit(5, [&](int64_t) { return nn::mse_loss(model->forward(x), y); }); });
  CHECK(msg.find("written with 4 steps per epoch, this run has 5") != std::string::npos);
}

TEST_CASE("Trainer: lr_schedule sets the rate before each step, history records it") {
  Generator gen(5);
  auto model = std::make_shared<nn::Linear>(3, 1, nn::LinearOptions{.gen = &gen});
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  Tensor x = randn({8, 3}, gen), y = sum(x, {1}, /*keepdim=*/true);
  std::vector<double> rates;
  nn::FitOptions o{.epochs = 2, .out_dir = "", .progress = false};
  o.lr_schedule = [](int64_t step) {
    return step < 4 ? 0.0 : 0.0625 * double(step - 3);
  };  // exact in binary
  nn::Trainer trainer(*model, opt, gen, o);
  std::vector<float> before = model->weight().to_vector<float>();
  std::vector<float> after_epoch1;
  nn::FitResult r = trainer.fit(
      4,
      [&](int64_t) {
        rates.push_back(opt.lr());
        return nn::mse_loss(model->forward(x), y);
      },
      [&] {
        if (after_epoch1.empty()) after_epoch1 = model->weight().to_vector<float>();
        return nn::Metrics{};
      });
  CHECK(rates == std::vector<double>{0, 0, 0, 0, 0.0625, 0.125, 0.1875, 0.25});
  REQUIRE(r.history.size() == 2);
  CHECK(r.history[0].lr == 0.0);  // the rate of the epoch's last step
  CHECK(r.history[1].lr == 0.25);
  CHECK(after_epoch1 == before);  // lr 0 throughout epoch 1: nothing moved
  CHECK(model->weight().to_vector<float>() != before);
}

TEST_CASE("plots: the legend goes to the corner the lines leave free") {
  using plot::Corner;
  plot::Series falling{.label = "loss", .x = {0, 1, 2, 3, 4}, .y = {10, 4, 2, 1.5, 1.2}};
  CHECK(plot::legend_corner({falling}, {}) == Corner::top_right);
  // A rising line crosses the top right and bottom left; of the two free corners, the first
  // in Corner's order.
  plot::Series rising{.label = "accuracy", .x = {0, 10}, .y = {0, 10}};
  CHECK(plot::legend_corner({rising}, {}) == Corner::top_left);
  // A second line along the top leaves only the bottom right.
  plot::Series top{.label = "ceiling", .x = {0, 10}, .y = {10, 10}};
  CHECK(plot::legend_corner({rising, top}, {}) == Corner::bottom_right);
  // A log axis decides in log space: 5000 on an axis from 1 to 10000 sits mid-height on a
  // linear axis but near the top on a log one.
  plot::Series wall{.label = "wall", .x = {0, 0}, .y = {1, 10000}};  // the left edge, full height
  plot::Series high{.label = "high", .x = {5, 10}, .y = {5000, 5000}};
  CHECK(plot::legend_corner({wall, high}, {}) == Corner::top_right);
  CHECK(plot::legend_corner({wall, high}, {.log_y = true}) == Corner::bottom_right);
}

TEST_CASE("plots: PNG files with the PNG signature, and input checks") {
  TempDir tmp;
  std::string png = (tmp.path / "line.png").string();
  plot::Series a{.label = "train", .x = {1, 2, 3, 4}, .y = {1.0, 0.5, 0.3, 0.25}};
  plot::Series b{.label = "validation #1", .x = {1, 2, 3, 4}, .y = {1.1, 0.6, 0.4, 0.38}};
  CHECK(expect_error([&] {
          plot::line_plot(png, {plot::Series{.x = {1, 2}, .y = {1}}}, {});
        }).find("2 x values and 1 y values") != std::string::npos);
  CHECK(expect_error([&] {
          plot::scatter_plot(png, {1, 2}, {1, 2}, {0}, {});
        }).find("same length") != std::string::npos);
  CHECK(expect_error([&] { plot::histogram(png, {a}, 0, {}); }).find("bins") != std::string::npos);
  if (!plot::available()) {
    CHECK_FALSE(plot::line_plot(png, {a, b}, {}));
    return;
  }
  CHECK(expect_error([&] {
          plot::line_plot((tmp.path / "no" / "such" / "dir.png").string(), {a}, {});
        }).find("cannot write") != std::string::npos);
  const std::string signature = "\x89PNG\r\n\x1a\n";
  auto check_png = [&](const std::string& file) {
    std::string bytes = read_text(file);
    INFO(file);
    REQUIRE(bytes.size() > 1000);
    CHECK(bytes.substr(0, 8) == signature);
  };
  CHECK(plot::line_plot(png, {a, b}, {.title = "loss", .xlabel = "epoch", .ylabel = "loss"}));
  check_png(png);
  std::string log_png = (tmp.path / "log.png").string();  // non-positive points dropped on log y
  plot::Series c{.label = "c", .x = {1, 2, 3}, .y = {1, 0, NAN}};
  CHECK(plot::line_plot(log_png, {a, c}, {.log_y = true}));
  check_png(log_png);
  std::string scatter = (tmp.path / "scatter.png").string();
  CHECK(plot::scatter_plot(scatter, {0, 1, 2, 3}, {0, 1, 0, 1}, {0, 1, 2, 1}, {.title = "codes"}));
  check_png(scatter);
  std::string hist = (tmp.path / "hist.png").string();
  CHECK(plot::histogram(hist, {a, b}, 5, {.title = "errors"}));
  check_png(hist);
  // Degenerate input still gives a picture: no data at all, a page PLplot cannot lay out as
  // asked (clamped to 300..8000 pixels, at most 3:1), huge values.
  std::string odd = (tmp.path / "odd.png").string();
  CHECK(plot::histogram(odd, {}, 10, {}));
  check_png(odd);
  CHECK(plot::line_plot(odd, {plot::Series{.x = {0, 1e300}, .y = {-1e300, 1e300}}},
                        {.width = 1, .height = 100000}));
  check_png(odd);
}
