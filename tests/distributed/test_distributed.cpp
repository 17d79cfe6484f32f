// nn::Distributed and the Trainer's data-parallel mode, run as 2 MPI ranks by run.sh:
//   mpirun --allow-run-as-root --oversubscribe -np 2 test_distributed
// Every rank runs every test case; a failed check on any rank fails the job.
//   test_distributed --hang   rank 1 hangs before its first step; rank 0 must abort naming it
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "nn/nn.h"

using namespace encore;

namespace {

nn::Distributed* g_dist = nullptr;

constexpr int64_t kIn = 12;

/// A small MLP autoencoder without batch norm: its gradient is a mean over the batch, so two
/// half batches averaged equal one whole batch up to float rounding.
std::shared_ptr<nn::Sequential> make_mlp(uint64_t seed) {
  Generator g(seed);
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(kIn, 10, nn::LinearOptions{.gen = &g}),
      std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(10, kIn, nn::LinearOptions{.gen = &g}));
}

/// 60 examples: batch 15 gives 4 batches an epoch, shards of 8 and 7 rows (unequal weights).
Tensor make_data() {
  Generator g(7);
  return randn({60, kIn}, g);
}

struct Run {
  std::vector<std::vector<float>> params;
  std::vector<int64_t> shard_rows;  // rows each loss call saw
  nn::FitResult result;
};

/// Trains for `epochs` with SGD (momentum) on batches of 15: distributed when dist is given.
Run train(nn::Distributed* dist, uint64_t model_seed, int64_t epochs, const std::string& out = "",
          bool resume = false) {
  auto model = make_mlp(model_seed);
  Tensor data = make_data();
  Generator gen(3);
  optim::SGD opt(model->parameters(), {.lr = 0.05, .momentum = 0.9});
  nn::Batches batches({data}, {.batch_size = 15}, gen);
  nn::Trainer trainer(*model, opt, gen,
                      {.epochs = epochs,
                       .out_dir = out,
                       .resume = resume,
                       .name = "mlp",
                       .progress = false,
                       .handle_sigint = false,
                       .distributed = dist});
  Run r;
  r.result = trainer.fit(batches, [&](const Tensors& b) {
    r.shard_rows.push_back(b[0].size(0));
    return nn::mse_loss(model->forward(b[0]), b[0]);
  });
  for (const Tensor& p : model->parameters()) r.params.push_back(p.to_vector<float>());
  return r;
}

double max_abs_diff(const Run& a, const Run& b) {
  REQUIRE(a.params.size() == b.params.size());
  double d = 0;
  for (size_t i = 0; i < a.params.size(); ++i) {
    REQUIRE(a.params[i].size() == b.params[i].size());
    for (size_t k = 0; k < a.params[i].size(); ++k)
      d = std::max(d, std::fabs(double(a.params[i][k]) - double(b.params[i][k])));
  }
  return d;
}

/// Rank 0's parameters, on every rank.
Run from_rank0(const Run& r) {
  Run out = r;
  Tensors ts;
  for (auto& p : out.params) ts.push_back(from_vector<float>(p, {int64_t(p.size())}));
  g_dist->broadcast(ts, "test");
  for (size_t i = 0; i < ts.size(); ++i) out.params[i] = ts[i].to_vector<float>();
  return out;
}

// Float tolerance of the comparisons with one process: the distributed gradient sums each
// rank's mean over its 8 or 7 rows, weighted 8/15 and 7/15, where one process takes the mean
// of 15 rows directly; both round differently at ~1e-7 relative per step, and 8 SGD steps
// (momentum 0.9) of parameters of size ~1 keep the drift far below 1e-5. A wrong shard
// (both ranks on the same rows), wrong weights or a missing average move the parameters by
// 1e-3 or more.
constexpr double kTol = 1e-5;

/// A folder every rank agrees on (rank 0's pid), removed by rank 0 at the end.
std::string shared_dir(const std::string& tag) {
  const double pid = g_dist->all_reduce_max({g_dist->is_root() ? double(getpid()) : 0.0}, "dir")[0];
  return (std::filesystem::temp_directory_path() /
          ("encore_dist_" + tag + "_" + std::to_string(int64_t(pid))))
      .string();
}

}  // namespace

TEST_CASE("two ranks run as one world") {
  REQUIRE(g_dist->size() == 2);
  CHECK(nn::mpi_available());
  const std::vector<double> s = g_dist->all_reduce_sum({double(g_dist->rank()), 1.0}, "test");
  CHECK(s[0] == 1.0);
  CHECK(s[1] == 2.0);
}

TEST_CASE("shards split a batch into disjoint slices covering it") {
  const nn::Distributed::Slice a = g_dist->slice(15);
  CHECK(a.length == (g_dist->rank() == 0 ? 8 : 7));
  CHECK(a.begin == (g_dist->rank() == 0 ? 0 : 8));
  Tensor x = reshape(arange(15), {15, 1});
  Tensors sh = g_dist->shard({x});
  CHECK(sh[0].size(0) == a.length);
  CHECK(sh[0].to_vector<double>().front() == double(a.begin));
  // A batch smaller than the ranks cannot be shared; the error names the shape.
  CHECK_THROWS_WITH_AS(g_dist->shard({zeros({1, 3})}), doctest::Contains("[1, 3]"), Error);
}

TEST_CASE("broadcast gives every rank rank 0's weights") {
  auto model = make_mlp(100 + uint64_t(g_dist->rank()));  // different weights per rank
  auto reference = make_mlp(100);                         // rank 0's
  g_dist->broadcast(*model);
  Tensors a = model->parameters(), b = reference->parameters();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector<float>() == b[i].to_vector<float>());
}

TEST_CASE("a gradient all-reduce averages with the ranks' weights, in several buckets") {
  // Parameters of 3000 floats (12 kB) in buckets of 4 kB: several buckets and a split.
  Tensors params{zeros({3000}), zeros({10}), zeros({5}, DType::f64)};
  const double r = g_dist->rank();
  Tensors grads{full({3000}, r + 1), full({10}, 10 * (r + 1)),
                full({5}, 100.0 * (r + 1), DType::f64)};
  const int64_t buckets_before = g_dist->stats().buckets;
  std::vector<double> extras{r};
  g_dist->all_reduce_gradients(grads, params, r == 0 ? 0.25 : 0.75, &extras, 0);
  // 0.25 * 1 + 0.75 * 2 = 1.75
  CHECK(grads[0].to_vector<float>() == std::vector<float>(3000, 1.75f));
  CHECK(grads[1].to_vector<float>() == std::vector<float>(10, 17.5f));
  CHECK(grads[2].to_vector<double>() == std::vector<double>(5, 175.0));
  CHECK(extras[0] == 1.0);
  CHECK(g_dist->stats().buckets - buckets_before >= 2);
  // A gradient of the wrong shape is refused before anything is exchanged.
  Tensors bad{zeros({2999}), zeros({10}), zeros({5}, DType::f64)};
  CHECK_THROWS_WITH_AS(g_dist->all_reduce_gradients(bad, params, 0.5), doctest::Contains("[2999]"),
                       Error);
}

TEST_CASE("two ranks with batch B/2 end where one process with batch B does") {
  // Rank 1 starts from other weights: the broadcast at the start of fit() must fix that.
  Run dist = train(g_dist, 11 + uint64_t(g_dist->rank()), 2);
  Run single = train(nullptr, 11, 2);
  CHECK(dist.result.steps == 8);
  // Every loss call saw this rank's shard of the 15-row batches.
  for (int64_t rows : dist.shard_rows) CHECK(rows == (g_dist->rank() == 0 ? 8 : 7));
  for (int64_t rows : single.shard_rows) CHECK(rows == 15);
  // The ranks hold bitwise the same parameters (the same averaged gradient on both)...
  CHECK(max_abs_diff(dist, from_rank0(dist)) == 0.0);
  // ...which are those of one process, within float tolerance (kTol above).
  CHECK(max_abs_diff(dist, single) <= kTol);
  // The reported loss is the global batch's (averaged), not the shard's.
  CHECK(std::fabs(dist.result.history.back().train_loss -
                  single.result.history.back().train_loss) <= 1e-5);
  // Training moved the weights: the comparison is not between two unchanged models.
  Run untrained = single;
  auto fresh = make_mlp(11);
  Tensors fp = fresh->parameters();
  for (size_t i = 0; i < fp.size(); ++i) untrained.params[i] = fp[i].to_vector<float>();
  CHECK(max_abs_diff(single, untrained) > 1e-3);
}

TEST_CASE("a distributed checkpoint resumes in one process, and the other way round") {
  Run reference = train(nullptr, 21, 2);

  // Distributed epoch 1 (rank 0 writes), then one process resumes for epoch 2.
  const std::string a = shared_dir("a");
  train(g_dist, 21, 1, a);
  g_dist->barrier("test");
  if (g_dist->is_root()) {
    CHECK(std::filesystem::exists(a + "/checkpoint.safetensors"));
    CHECK(std::filesystem::exists(a + "/metrics.json"));
    Run resumed = train(nullptr, 99, 2, a, /*resume=*/true);  // the seed is overwritten
    CHECK(resumed.result.resumed);
    CHECK(resumed.result.steps == 8);
    CHECK(resumed.shard_rows.size() == 4);  // only epoch 2 ran here
    CHECK(max_abs_diff(resumed, reference) <= kTol);
  }
  g_dist->barrier("test");

  // One process writes epoch 1, then two ranks resume for epoch 2.
  const std::string b = shared_dir("b");
  if (g_dist->is_root()) train(nullptr, 21, 1, b);
  g_dist->barrier("test");
  Run resumed = train(g_dist, 99 + uint64_t(g_dist->rank()), 2, b, /*resume=*/true);
  CHECK(resumed.result.resumed);
  CHECK(resumed.result.steps == 8);
  CHECK(resumed.shard_rows.size() == 4);
  CHECK(max_abs_diff(resumed, reference) <= kTol);
  CHECK(max_abs_diff(resumed, from_rank0(resumed)) == 0.0);
  g_dist->barrier("test");
  if (g_dist->is_root()) {
    std::filesystem::remove_all(a);
    std::filesystem::remove_all(b);
  }
}

TEST_CASE("BatchNorm running statistics: per rank, or averaged over the ranks") {
  auto run = [](nn::BatchNormSync sync) {
    Generator g(5);
    auto bn = std::make_shared<nn::BatchNorm1d>(4);
    // Each rank's rows have another mean (rank r: r * 3), so per-rank statistics differ.
    Tensor x = randn({8, 4}, g) + 3.0 * double(g_dist->rank());
    bn->forward(x);
    if (sync == nn::BatchNormSync::average_running_stats) g_dist->average_buffers(*bn);
    return bn->running_mean().to_vector<float>();
  };
  std::vector<float> own = run(nn::BatchNormSync::per_rank);
  std::vector<float> avg = run(nn::BatchNormSync::average_running_stats);
  Tensor t = from_vector<float>(own, {4});
  std::vector<double> sum = g_dist->all_reduce_sum(t.to_vector<double>(), "test");
  for (size_t c = 0; c < 4; ++c) CHECK(avg[c] == doctest::Approx(sum[c] / 2).epsilon(1e-5));
  // The ranks' own statistics differ (else the average would prove nothing).
  std::vector<double> hi = g_dist->all_reduce_max(t.to_vector<double>(), "test");
  std::vector<double> lo = g_dist->all_reduce_min(t.to_vector<double>(), "test");
  CHECK(hi[0] - lo[0] > 0.1);
}

namespace {

/// What a BatchNorm computes on a batch: the output, the input gradient, gamma's and beta's
/// gradients and the running statistics, all in f64.
struct BnResult {
  std::vector<double> y, dx, dgamma, dbeta, running_mean, running_var;
};

/// Rows [begin, begin + len) of x along dim 0, as a tensor of its own.
Tensor rows(const Tensor& x, int64_t begin, int64_t len) {
  return narrow(x, 0, begin, len).clone();
}

/// BatchNorm (1d over `shape` (N, C) or (N, C, L), 2d over (N, C, H, W)) in f64 on rows
/// [begin, begin + len) of a global batch every rank generates alike (rows shifted by 0.4 *
/// row, so two shards have other moments), with gamma and beta not 1 and 0. The loss is a mean
/// over the rows it sees: sum(tanh(y) * r) / len, r fixed. When `group` is given the layer
/// synchronises over it, and the gradients of gamma and beta are all-reduced with the weight
/// len / N, as the Trainer does; dx is returned times that weight (the scale of the global
/// loss), so it compares with one process's dx on the whole batch.
BnResult run_bn(const Shape& shape, int64_t begin, int64_t len, nn::Distributed* group) {
  const int64_t n = shape[0], c = shape[1];
  Generator g(17);
  Tensor shift = reshape(arange(n, DType::f64), {n, 1}) * 0.4;
  Shape flat = {n, numel(shape) / n};
  Tensor x_all = reshape(reshape(randn(shape, g, DType::f64), flat) + shift, shape);
  Tensor r_all = randn(shape, g, DType::f64);
  std::shared_ptr<nn::BatchNorm> bn;
  const nn::BatchNormOptions o{.momentum = 0.3, .dtype = DType::f64};
  if (shape.size() == 4)
    bn = std::make_shared<nn::BatchNorm2d>(c, o);
  else
    bn = std::make_shared<nn::BatchNorm1d>(c, o);
  bn->weight().copy_(randn({c}, g, DType::f64) * 0.5 + 1.0);
  bn->bias().copy_(randn({c}, g, DType::f64));
  bn->running_var().fill_(2.0);  // so the update's count (N - 1 or len - 1) shows
  const double w = double(len) / double(n);
  if (group) {
    bn->set_process_group(group);
    group->set_gradient_weight(w);
  }
  Tensor x = rows(x_all, begin, len), r = rows(r_all, begin, len);
  GradientTape tape;
  tape.watch(x);
  Tensor y = bn->forward(x);
  Tensor loss = sum(tanh(y) * r) / double(len);
  Tensors grads = tape.gradient(loss, {x, bn->weight(), bn->bias()});
  BnResult res;
  res.y = y.to_vector<double>();
  if (group) {
    Tensors gb{grads[1], grads[2]};
    group->all_reduce_gradients(gb, {bn->weight(), bn->bias()}, w);
    grads[1] = gb[0];
    grads[2] = gb[1];
    grads[0] = grads[0] * w;
  }
  res.dx = grads[0].to_vector<double>();
  res.dgamma = grads[1].to_vector<double>();
  res.dbeta = grads[2].to_vector<double>();
  res.running_mean = bn->running_mean().to_vector<double>();
  res.running_var = bn->running_var().to_vector<double>();
  return res;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t k = 0; k < a.size(); ++k) d = std::max(d, std::fabs(a[k] - b[k]));
  return d;
}

/// Elements [begin * per_row, (begin + len) * per_row) of v: a shard's rows of a flat result.
std::vector<double> row_part(const std::vector<double>& v, int64_t begin, int64_t len,
                             int64_t per_row) {
  return {v.begin() + begin * per_row, v.begin() + (begin + len) * per_row};
}

}  // namespace

TEST_CASE("synchronized BatchNorm: uneven shards compute what one process does on the batch") {
  for (const Shape& shape : {Shape{15, 4}, Shape{15, 3, 5}, Shape{15, 3, 2, 3}}) {
    CAPTURE(to_string(shape));
    const nn::Distributed::Slice s = g_dist->slice(15);  // 8 rows on rank 0, 7 on rank 1
    const int64_t per_row = numel(shape) / 15;
    BnResult one = run_bn(shape, 0, 15, nullptr);
    BnResult sync = run_bn(shape, s.begin, s.length, g_dist);
    BnResult own = run_bn(shape, s.begin, s.length, nullptr);  // per-rank statistics
    // Output and input gradient: this rank's rows of one process's.
    CHECK(max_diff(sync.y, row_part(one.y, s.begin, s.length, per_row)) <= 1e-12);
    CHECK(max_diff(sync.dx, row_part(one.dx, s.begin, s.length, per_row)) <= 1e-12);
    // gamma's and beta's gradients after the weighted all-reduce, and the running statistics
    // (momentum 0.3, unbiased variance with the global count 15 * per-channel elements).
    CHECK(max_diff(sync.dgamma, one.dgamma) <= 1e-12);
    CHECK(max_diff(sync.dbeta, one.dbeta) <= 1e-12);
    CHECK(max_diff(sync.running_mean, one.running_mean) <= 1e-12);
    CHECK(max_diff(sync.running_var, one.running_var) <= 1e-12);
    // Per-rank statistics are another computation (the shards' moments differ): the checks
    // above can fail.
    CHECK(max_diff(own.y, row_part(one.y, s.begin, s.length, per_row)) > 1e-2);
    CHECK(max_diff(own.running_mean, one.running_mean) > 1e-2);
  }
}

TEST_CASE("synchronized BatchNorm: the backward matches finite differences of the global loss") {
  // The global loss L = sum over ranks of w_r L_r, L_r = sum(tanh(y_r) * r_r) / n_r, as a
  // function of all 15 rows: both ranks perturb the same global element (only its owner's
  // input changes) and all-reduce their weighted losses. Perturbing a row moves the global
  // moments, so the other rank's loss moves too: the cross-rank terms of the vjp are checked.
  const Shape shape{15, 3};
  const int64_t n = 15, c = 3;
  const nn::Distributed::Slice s = g_dist->slice(n);
  const double w = double(s.length) / double(n);
  Generator g(23);
  Tensor x_all = randn(shape, g, DType::f64) * 2.0 + 1.0;
  Tensor r_all = randn(shape, g, DType::f64);
  auto bn = std::make_shared<nn::BatchNorm1d>(c, nn::BatchNormOptions{.dtype = DType::f64});
  bn->weight().copy_(randn({c}, g, DType::f64) + 1.0);
  bn->set_process_group(g_dist);
  g_dist->set_gradient_weight(w);
  Tensor r = rows(r_all, s.begin, s.length);
  auto global_loss = [&](const Tensor& x) {
    const double local = (sum(tanh(bn->forward(x)) * r) / double(s.length)).item<double>();
    return g_dist->all_reduce_sum({w * local}, "test")[0];
  };
  Tensor x = rows(x_all, s.begin, s.length);
  Tensor dx;
  {
    GradientTape tape;
    tape.watch(x);
    Tensor loss = sum(tanh(bn->forward(x)) * r) / double(s.length);
    dx = tape.gradient(loss, x) * w;  // on the global loss's scale
  }
  std::vector<double> analytic = g_dist->all_reduce_sum(
      [&] {
        std::vector<double> v(size_t(n * c), 0.0);
        const std::vector<double> mine = dx.to_vector<double>();
        std::copy(mine.begin(), mine.end(), v.begin() + s.begin * c);
        return v;
      }(),
      "test");
  const double h = 1e-6;
  double worst = 0, largest = 0;
  NoGrad no_grad;
  for (int64_t i = 0; i < n * c; ++i) {
    const int64_t row = i / c;
    const bool mine = row >= s.begin && row < s.begin + s.length;
    Tensor xp = x.clone(), xm = x.clone();
    if (mine) {
      std::vector<double> vp = xp.to_vector<double>(), vm = xm.to_vector<double>();
      vp[size_t(i - s.begin * c)] += h;
      vm[size_t(i - s.begin * c)] -= h;
      xp = from_vector<double>(vp, xp.shape());
      xm = from_vector<double>(vm, xm.shape());
    }
    const double fd = (global_loss(xp) - global_loss(xm)) / (2 * h);
    worst = std::max(worst, std::fabs(fd - analytic[size_t(i)]));
    largest = std::max(largest, std::fabs(analytic[size_t(i)]));
  }
  CHECK(worst <= 1e-7);
  CHECK(largest > 1e-2);  // the gradient is not zero
}

TEST_CASE("synchronized BatchNorm: second-order gradients are refused, not wrong") {
  auto bn = std::make_shared<nn::BatchNorm1d>(2, nn::BatchNormOptions{.dtype = DType::f64});
  bn->set_process_group(g_dist);
  g_dist->set_gradient_weight(0.5);
  Generator g(3);
  Tensor x = randn({4, 2}, g, DType::f64);
  GradientTape outer;
  outer.watch(x);
  GradientTape inner;
  inner.watch(x);
  Tensor loss = sum(bn->forward(x) * bn->forward(x));
  CHECK_THROWS_WITH_AS(inner.gradient(loss, {x}), doctest::Contains("differentiated again"), Error);
}

namespace {

/// Linear - BatchNorm1d - Tanh - Linear in f64.
std::shared_ptr<nn::Sequential> make_bn_mlp(uint64_t seed) {
  Generator g(seed);
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(kIn, 6, nn::LinearOptions{.dtype = DType::f64, .gen = &g}),
      std::make_shared<nn::BatchNorm1d>(6, nn::BatchNormOptions{.dtype = DType::f64}),
      std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(6, kIn, nn::LinearOptions{.dtype = DType::f64, .gen = &g}));
}

/// Parameters, then buffers (running statistics), of a model, flattened.
std::vector<double> state_of(nn::Module& m) {
  std::vector<double> v;
  for (const Tensor& p : m.parameters())
    for (double d : p.to_vector<double>()) v.push_back(d);
  for (const Tensor& b : m.buffers())
    for (double d : b.to_vector<double>()) v.push_back(d);
  return v;
}

/// 2 epochs of SGD with momentum on batches of 15 of f64 data whose rows have other means
/// (so the shards' moments differ) under the Trainer: distributed when dist is given (its
/// options synchronise BatchNorm).
std::vector<double> train_bn_mlp(nn::Distributed* dist, uint64_t seed) {
  auto model = make_bn_mlp(seed);
  Generator dg(7);
  Tensor data = randn({60, kIn}, dg, DType::f64) + reshape(arange(60, DType::f64), {60, 1}) * 0.05;
  Generator gen(3);
  optim::SGD opt(model->parameters(), {.lr = 0.05, .momentum = 0.9});
  nn::Batches batches({data}, {.batch_size = 15}, gen);
  nn::Trainer trainer(*model, opt, gen,
                      {.epochs = 2,
                       // No files: with dist == nullptr both test processes would write the
                       // same out/metrics.json at once (their atomic renames raced).
                       .out_dir = "",
                       .name = "bn_mlp",
                       .progress = false,
                       .handle_sigint = false,
                       .distributed = dist});
  trainer.fit(batches, [&](const Tensors& b) { return nn::mse_loss(model->forward(b[0]), b[0]); });
  // fit() gave the BatchNorm the group for its duration only.
  auto* bn = dynamic_cast<nn::BatchNorm*>(model->children()[1].second.get());
  REQUIRE(bn != nullptr);
  CHECK(bn->process_group() == nullptr);
  return state_of(*model);
}

/// The Trainer's distributed step by hand, with per-rank BatchNorm statistics.
std::vector<double> train_bn_mlp_per_rank(uint64_t seed) {
  auto model = make_bn_mlp(seed);
  Generator dg(7);
  Tensor data = randn({60, kIn}, dg, DType::f64) + reshape(arange(60, DType::f64), {60, 1}) * 0.05;
  Generator gen(3);
  optim::SGD opt(model->parameters(), {.lr = 0.05, .momentum = 0.9});
  nn::Batches batches({data}, {.batch_size = 15}, gen);
  const Tensors params = model->parameters();
  for (int epoch = 0; epoch < 2; ++epoch)
    for (const Tensors& batch : batches) {
      Tensors shard = g_dist->shard(batch);
      GradientTape tape;
      Tensor loss = nn::mse_loss(model->forward(shard[0]), shard[0]);
      Tensors grads = tape.gradient(loss, params);
      g_dist->all_reduce_gradients(grads, params, double(shard[0].size(0)) / 15.0);
      opt.step(grads);
    }
  return state_of(*model);
}

}  // namespace

TEST_CASE("synchronized BatchNorm: SGD on two ranks ends where one process does") {
  REQUIRE(g_dist->options().batch_norm == nn::BatchNormSync::synchronized);
  const std::vector<double> one = train_bn_mlp(nullptr, 31);
  const std::vector<double> two = train_bn_mlp(g_dist, 31 + uint64_t(g_dist->rank()));
  const std::vector<double> own = train_bn_mlp_per_rank(31);
  const std::vector<double> start = state_of(*make_bn_mlp(31));
  // Parameters and running statistics after 8 steps, in f64: the same up to rounding.
  CHECK(max_diff(two, one) <= 1e-10);
  // Both ranks hold the same state (the running statistics too, without averaging them).
  std::vector<double> hi = g_dist->all_reduce_max(two, "test");
  std::vector<double> lo = g_dist->all_reduce_min(two, "test");
  CHECK(max_diff(hi, lo) == 0.0);
  // Per-rank statistics train another model, and training moved the weights: the comparison
  // above can fail.
  CHECK(max_diff(own, one) > 1e-4);
  CHECK(max_diff(one, start) > 1e-2);
}

namespace {

/// Wide enough for several 4 kB buckets (the suite's bucket_bytes): 12 -> 300 -> 12 in f64,
/// with a BatchNorm in the middle whose synchronised backward runs a blocking all-reduce
/// between the buckets of the last layer and those of the first.
std::shared_ptr<nn::Sequential> make_wide_bn_mlp(uint64_t seed) {
  Generator g(seed);
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(kIn, 300, nn::LinearOptions{.dtype = DType::f64, .gen = &g}),
      std::make_shared<nn::BatchNorm1d>(300, nn::BatchNormOptions{.dtype = DType::f64}),
      std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(300, kIn, nn::LinearOptions{.dtype = DType::f64, .gen = &g}));
}

Tensor wide_data() {
  Generator dg(9);
  return randn({60, kIn}, dg, DType::f64) + reshape(arange(60, DType::f64), {60, 1}) * 0.05;
}

}  // namespace

TEST_CASE("overlap: gradients reported during the walk reduce to all_reduce_gradients' bitwise") {
  Generator g(5);
  // f32, 12 -> 200 -> 12: four buckets of at most 4 kB (the weights get one each).
  nn::Sequential model(std::make_shared<nn::Linear>(kIn, 200, nn::LinearOptions{.gen = &g}),
                       std::make_shared<nn::Tanh>(),
                       std::make_shared<nn::Linear>(200, kIn, nn::LinearOptions{.gen = &g}));
  const Tensors params = model.parameters();
  Generator dg(11 + uint64_t(g_dist->rank()));  // each rank its own data
  Tensor x = randn({7, kIn}, dg);
  const double weight = g_dist->rank() == 0 ? 0.4 : 0.6;
  Tensors plain;
  {
    GradientTape tape;
    plain = tape.gradient(nn::mse_loss(model.forward(x), x), params);
    g_dist->all_reduce_gradients(plain, params, weight, nullptr, 100);
  }
  const int64_t overlapped_before = g_dist->stats().buckets_overlapped;
  const int64_t buckets_before = g_dist->stats().buckets;
  Tensors over;
  std::vector<double> extras{double(g_dist->rank())};
  {
    GradientTape tape;
    Tensor loss = nn::mse_loss(model.forward(x), x);
    g_dist->begin_gradients(params, weight, 101);
    over = tape.gradient(loss, params, {.on_ready = [&](size_t i, const Tensor& gr) {
                           g_dist->gradient_ready(i, gr);
                         }});
    g_dist->finish_gradients(over, &extras);
  }
  REQUIRE(over.size() == plain.size());
  for (size_t i = 0; i < over.size(); ++i)
    CHECK(over[i].to_vector<float>() == plain[i].to_vector<float>());
  CHECK(extras[0] == 1.0);
  const int64_t buckets = g_dist->stats().buckets - buckets_before;
  const int64_t overlapped = g_dist->stats().buckets_overlapped - overlapped_before;
  // b2 | w2 | b1 | w1: each bucket started from gradient_ready, inside tape.gradient(), the
  // last one (w1, final only once the first matmul's vjp ran) at the end of the walk.
  CHECK(buckets == 4);
  CHECK(overlapped == buckets);
  // Misuse is refused naming the call.
  g_dist->begin_gradients(params, weight);
  CHECK_THROWS_WITH_AS(g_dist->gradient_ready(0, zeros({3})), doctest::Contains("[3]"), Error);
  CHECK_THROWS_WITH_AS(g_dist->gradient_ready(99, zeros({3})), doctest::Contains("out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(g_dist->begin_gradients(params, weight), doctest::Contains("not finished"),
                       Error);
  Tensors none(params.size());
  g_dist->finish_gradients(none);  // undefined gradients count as zeros
  CHECK(none[0].to_vector<float>() == std::vector<float>(size_t(params[0].numel()), 0.0f));
}

TEST_CASE(
    "overlap: synchronized BatchNorm and buckets started during the walk, under the Trainer") {
  REQUIRE(g_dist->options().batch_norm == nn::BatchNormSync::synchronized);
  const uint64_t seed = 41;  // the same weights on both ranks: the hand-made loop does no broadcast
  // The Trainer: buckets start from the tape's on_ready, between BatchNorm's all-reduces.
  std::vector<double> trainer_state;
  const int64_t overlapped_before = g_dist->stats().buckets_overlapped;
  {
    auto model = make_wide_bn_mlp(seed);
    Tensor data = wide_data();
    Generator gen(3);
    optim::SGD opt(model->parameters(), {.lr = 0.05, .momentum = 0.9});
    nn::Batches batches({data}, {.batch_size = 15}, gen);
    nn::Trainer trainer(*model, opt, gen,
                        {.epochs = 2,
                         .name = "wide_bn_mlp",
                         .progress = false,
                         .handle_sigint = false,
                         .distributed = g_dist});
    trainer.fit(batches,
                [&](const Tensors& b) { return nn::mse_loss(model->forward(b[0]), b[0]); });
    trainer_state = state_of(*model);
  }
  const int64_t overlapped = g_dist->stats().buckets_overlapped - overlapped_before;
  // The same steps by hand with the exchange after the walk (all_reduce_gradients).
  std::vector<double> after_walk;
  {
    auto model = make_wide_bn_mlp(seed);
    Tensor data = wide_data();
    Generator gen(3);
    optim::SGD opt(model->parameters(), {.lr = 0.05, .momentum = 0.9});
    nn::Batches batches({data}, {.batch_size = 15}, gen);
    const Tensors params = model->parameters();
    REQUIRE(nn::set_batch_norm_process_group(*model, g_dist) == 1);
    int64_t step = 1000;
    for (int epoch = 0; epoch < 2; ++epoch)
      for (const Tensors& batch : batches) {
        Tensors shard = g_dist->shard(batch);
        const double weight = double(shard[0].size(0)) / 15.0;
        g_dist->set_gradient_weight(weight);
        GradientTape tape;
        Tensor loss = nn::mse_loss(model->forward(shard[0]), shard[0]);
        Tensors grads = tape.gradient(loss, params);
        g_dist->all_reduce_gradients(grads, params, weight, nullptr, step++);
        opt.step(grads);
      }
    nn::set_batch_norm_process_group(*model, nullptr);
    after_walk = state_of(*model);
  }
  CHECK(max_diff(trainer_state, after_walk) <= 1e-12);
  // 8 steps, each with at least the last layer's weight bucket started in the walk.
  CHECK(overlapped >= 8);
  // Both ranks agree, and one process on the whole batches ends at the same place.
  std::vector<double> hi = g_dist->all_reduce_max(trainer_state, "test");
  std::vector<double> lo = g_dist->all_reduce_min(trainer_state, "test");
  CHECK(max_diff(hi, lo) == 0.0);
  // Training moved the weights (the comparisons can fail).
  CHECK(max_diff(trainer_state, state_of(*make_wide_bn_mlp(seed))) > 1e-3);
}

namespace {

/// --hang: rank 1 sleeps before its first step far beyond the 2 s timeout.
int hang(int argc, char** argv) {
  nn::Distributed dist(argc, argv, {.timeout_seconds = 2});
  auto model = make_mlp(1);
  Tensor data = make_data();
  Generator gen(3);
  optim::SGD opt(model->parameters(), {.lr = 0.05});
  nn::Batches batches({data}, {.batch_size = 15}, gen);
  nn::Trainer trainer(
      *model, opt, gen,
      {.out_dir = "", .progress = false, .handle_sigint = false, .distributed = &dist});
  trainer.fit(batches, [&](const Tensors& b) {
    if (dist.rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
    return nn::mse_loss(model->forward(b[0]), b[0]);
  });
  return 0;  // not reached: rank 0 aborts the job
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--hang") == 0) return hang(argc, argv);
  // Synchronised BatchNorm for the Trainer test of it; the other Trainer tests train models
  // without BatchNorm.
  nn::Distributed dist(argc, argv,
                       {.timeout_seconds = 120,
                        .bucket_bytes = 4096,
                        .batch_norm = nn::BatchNormSync::synchronized});
  g_dist = &dist;
  doctest::Context ctx(argc, argv);
  const int failed = ctx.run();
  // Both ranks report the same status, so mpirun's is the suite's.
  const double any = dist.all_reduce_max({double(failed != 0)}, "end")[0];
  return any > 0 ? 1 : 0;
}
