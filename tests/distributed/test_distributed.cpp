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
  nn::Distributed dist(argc, argv, {.timeout_seconds = 120, .bucket_bytes = 4096});
  g_dist = &dist;
  doctest::Context ctx(argc, argv);
  const int failed = ctx.run();
  // Both ranks report the same status, so mpirun's is the suite's.
  const double any = dist.all_reduce_max({double(failed != 0)}, "end")[0];
  return any > 0 ? 1 : 0;
}
