// recursive_ae: seed 001's recursive autoencoder - a merge network trained by the greedy tree
// it builds over a sequence of vectors, the root's summed reconstruction error as the loss.
//
// The defaults are the seed's: n = 10, the 20 leaves ones(10) * i for i in 0..9 twice, Adam
// (Keras' defaults: lr 1e-3, eps 1e-7), 100 iterations (one per "epoch" of the training loop,
// so history.csv and loss.png have the loss of every iteration). It prints the root loss from
// start to end and the final tree as the seed's Node.print, and saves the model.
//   --mode all|adjacent   all pairs i < j (the seed), or neighbours only with unit-normalised
//                         hidden vectors (Socher et al. 2011)
//   --impl literal|fast   every candidate on the tape (the seed), or batched cached scoring
//                         with only the chosen merges recorded (same tree, same gradients)
//   --leaves N            N standard-normal leaves instead of the seed's (any N but 20, or
//                         --random-leaves)
//   --timing              then time one training iteration (tape, tree, gradient, Adam step)
//                         against the leaf count, 20 to --timing-max leaves, for both modes:
//                         fast at every count, literal while an iteration stays under
//                         --literal-budget CPU seconds; process CPU time (the machine may be
//                         shared) and wall time; timing.png (log axes), timing.csv/.json
//
//   build/examples/recursive_ae [--mode all] [--impl fast] [--epochs 100] [--timing]
//                               [--out out/recursive_ae] [--threads 1] ...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "examples/common/common.h"
#include "models/models.h"
#include "nn/plot.h"
#include "nn/train.h"

using namespace encore;

namespace {

using Clock = std::chrono::steady_clock;

/// The process's CPU time: on a machine shared by many jobs it is what one iteration costs,
/// where the wall time also counts the time slices other processes took (run with --threads 1).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

/// One point of the timing sweep.
struct Timing {
  std::string mode, impl;
  int64_t leaves = 0;
  double cpu_ms = 0;  ///< median CPU time of one training iteration (the process's)
  double ms = 0;      ///< median wall time of one training iteration
  double ms_min = 0;  ///< the fastest one (the least disturbed on a shared machine)
  int reps = 0;       ///< timed iterations (after one untimed warm-up)
  double root = 0;    ///< the root loss of the first (warm-up) iteration
  std::string tree;   ///< its structure, to compare literal with fast
};

/// Times a training iteration of a fresh model (seed `seed`) on `leaves`.
Timing time_iterations(models::MergeMode mode, models::MergeImpl impl, const Tensor& leaves,
                       uint64_t seed, double lr, int reps) {
  Generator gen(seed);
  models::RecursiveAutoencoder model(leaves.size(1), {.mode = mode, .impl = impl, .gen = &gen});
  optim::Adam opt(model.parameters(), {.lr = lr, .eps = 1e-7});
  Timing t{models::to_string(mode), models::to_string(impl), leaves.size(0)};
  double cpu = 0;
  auto iteration = [&] {
    auto t0 = Clock::now();
    double c0 = cpu_seconds();
    GradientTape tape;
    models::NodePtr root = model.forward(leaves);
    opt.step(tape.gradient(root->score, model.parameters()));
    cpu = cpu_seconds() - c0;
    return std::pair{std::chrono::duration<double>(Clock::now() - t0).count(), root};
  };
  auto [warm, root] = iteration();
  t.root = root->score.item<double>();
  t.tree = root->structure();
  t.reps = cpu > 1.0 || warm > 5.0 ? 1 : reps;  // slow points: one timed iteration is enough
  std::vector<double> ms, cpu_ms;
  for (int r = 0; r < t.reps; ++r) {
    ms.push_back(1e3 * iteration().first);
    cpu_ms.push_back(1e3 * cpu);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu_ms.begin(), cpu_ms.end());
  t.cpu_ms = cpu_ms[cpu_ms.size() / 2];
  t.ms = ms[ms.size() / 2];
  t.ms_min = ms.front();
  return t;
}

void print_timing(const Timing& t) {
  std::printf(
      "timing: %-8s %5lld leaves  %-7s %10.3f ms CPU per iteration (wall: median %.3f, min "
      "%.3f, of %d)\n",
      t.mode.c_str(), static_cast<long long>(t.leaves), t.impl.c_str(), t.cpu_ms, t.ms, t.ms_min,
      t.reps);
  std::fflush(stdout);
}

std::vector<Timing> timing_sweep(int64_t dim, int64_t max_leaves, double literal_budget,
                                 uint64_t seed, double lr, int reps) {
  std::vector<int64_t> counts;
  for (int64_t c : {20, 50, 100, 200, 500, 1000, 2000, 5000})
    if (c <= max_leaves) counts.push_back(c);
  std::vector<Timing> out;
  for (models::MergeMode mode : {models::MergeMode::all_pairs, models::MergeMode::adjacent}) {
    bool literal = true;
    for (int64_t count : counts) {
      Generator gen(seed + uint64_t(count));
      Tensor leaves = randn({count, dim}, gen);
      Timing fast = time_iterations(mode, models::MergeImpl::fast, leaves, seed, lr, reps);
      print_timing(fast);
      out.push_back(fast);
      if (!literal) continue;
      Timing lit = time_iterations(mode, models::MergeImpl::literal, leaves, seed, lr, reps);
      print_timing(lit);
      std::printf("        literal / fast %.1fx (CPU), same tree %s, root %.9g vs %.9g\n",
                  lit.cpu_ms / fast.cpu_ms, lit.tree == fast.tree ? "yes" : "NO", lit.root,
                  fast.root);
      out.push_back(lit);
      literal = lit.cpu_ms < 1e3 * literal_budget;
    }
  }
  return out;
}

void write_timing(const nn::Trainer& trainer, const std::vector<Timing>& ts,
                  std::map<std::string, std::string>& notes) {
  const std::string csv = trainer.out_path("timing.csv"), json = trainer.out_path("timing.json");
  if (csv.empty()) return;
  std::ofstream c(csv), j(json);
  c << "mode,impl,leaves,cpu_ms_per_iteration,wall_ms_median,wall_ms_min,reps,root_loss\n";
  j << "[\n";
  for (size_t k = 0; k < ts.size(); ++k) {
    const Timing& t = ts[k];
    char line[320];
    std::snprintf(line, sizeof(line), "%s,%s,%lld,%.6g,%.6g,%.6g,%d,%.9g\n", t.mode.c_str(),
                  t.impl.c_str(), static_cast<long long>(t.leaves), t.cpu_ms, t.ms, t.ms_min,
                  t.reps, t.root);
    c << line;
    std::snprintf(line, sizeof(line),
                  "  {\"mode\": \"%s\", \"impl\": \"%s\", \"leaves\": %lld, "
                  "\"cpu_ms_per_iteration\": %.6g, \"wall_ms_median\": %.6g, \"wall_ms_min\": "
                  "%.6g, \"reps\": %d, \"root_loss\": %.9g}%s\n",
                  t.mode.c_str(), t.impl.c_str(), static_cast<long long>(t.leaves), t.cpu_ms, t.ms,
                  t.ms_min, t.reps, t.root, k + 1 < ts.size() ? "," : "");
    j << line;
  }
  j << "]\n";
  notes["timing.csv"] =
      "CPU and wall ms per training iteration by mode, implementation and leaf count";
  notes["timing.json"] = "the same numbers as JSON";
  std::vector<plot::Series> series;
  for (const std::string mode : {"all", "adjacent"})
    for (const std::string impl : {"fast", "literal"}) {
      plot::Series s{(mode == "all" ? "all pairs, " : "adjacent, ") + impl};
      for (const Timing& t : ts)
        if (t.mode == mode && t.impl == impl) {
          s.x.push_back(double(t.leaves));
          s.y.push_back(t.cpu_ms);
        }
      if (!s.x.empty()) series.push_back(s);
    }
  if (plot::line_plot(trainer.out_path("timing.png"), series,
                      {.title = "recursive autoencoder: one training iteration",
                       .xlabel = "leaves",
                       .ylabel = "CPU ms per iteration (1 thread)",
                       .log_x = true,
                       .log_y = true}))
    notes["timing.png"] = "CPU ms per training iteration against leaf count, log-log";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"recursive_ae: seed 001's recursive autoencoder (greedy merge tree)"};
  examples::CommonFlags f{.epochs = 100, .lr = 1e-3, .out = "out/recursive_ae"};
  examples::add_common_flags(app, f, /*data_flag=*/false);
  std::string mode_name = "all", impl_name = "fast";
  int64_t leaves_n = 20, dim = 10, timing_max = 1000;
  bool random_leaves = false, timing = false;
  double literal_budget = 2.0;
  int reps = 5;
  app.add_option("--mode", mode_name, "candidate pairs: all (the seed) or adjacent (Socher)")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "adjacent"}));
  app.add_option("--impl", impl_name, "literal (every candidate on the tape) or fast")
      ->capture_default_str()
      ->check(CLI::IsMember({"literal", "fast"}));
  app.add_option("--leaves", leaves_n, "leaf count (20 with the seed's leaves, else random)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(2), int64_t(100000)));
  app.add_option("--dim", dim, "leaf vector size n")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  app.add_flag("--random-leaves", random_leaves, "standard-normal leaves even for 20")
      ->capture_default_str();
  app.add_flag("--timing", timing, "time an iteration against leaf count after training")
      ->capture_default_str();
  app.add_option("--timing-max", timing_max, "largest leaf count of the timing sweep")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(20), int64_t(5000)));
  app.add_option("--literal-budget", literal_budget,
                 "seconds per iteration beyond which literal stops growing in the sweep")
      ->capture_default_str()
      ->check(examples::finite_positive());
  app.add_option("--timing-reps", reps, "timed iterations per point (median and min)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  return examples::run("recursive_ae", [&] {
    examples::setup(f);
    Generator gen(f.seed);
    models::RecursiveOptions ro{.mode = models::parse_merge_mode(mode_name),
                                .impl = models::parse_merge_impl(impl_name),
                                .gen = &gen};
    auto model = std::make_shared<models::RecursiveAutoencoder>(dim, ro);
    if (examples::prepare_model(*model, f)) return;
    std::printf("%s", model->summary().c_str());
    const bool seed_data = leaves_n == 20 && !random_leaves;
    Tensor leaves = seed_data ? models::seed_leaves(dim) : randn({leaves_n, dim}, gen);
    std::printf("leaves: %lld of size %lld (%s)\n", static_cast<long long>(leaves_n),
                static_cast<long long>(dim),
                seed_data ? "the seed's: ones(n) * i for i in 0..9, twice" : "standard normal");

    // Keras' Adam defaults, as the seed's tf.keras.optimizers.Adam(): lr 1e-3, eps 1e-7.
    optim::Adam opt(model->parameters(), {.lr = f.lr, .eps = 1e-7});
    nn::Trainer trainer(*model, opt, gen, examples::fit_options(f, "recursive_ae", app));
    nn::FitResult r = trainer.fit(1, [&](int64_t) { return model->loss(leaves); });
    if (r.interrupted) return;

    models::NodePtr root;
    {
      NoGrad no_grad;
      root = model->forward(leaves);
    }
    const double first = r.history.empty() ? 0 : r.history.front().train_loss;
    const double last = r.history.empty() ? 0 : r.history.back().train_loss;
    const double final_loss = root->score.item<double>();
    std::printf(
        "root loss: %.6g at iteration 1 -> %.6g at iteration %lld -> %.6g after the last "
        "update\n",
        first, last, static_cast<long long>(r.history.size()), final_loss);
    std::printf("final tree (index, score, mean of the embedding; a tab per depth):\n%s",
                root->print().c_str());
    std::printf("structure: %s\n", root->structure().c_str());

    std::map<std::string, std::string> notes;
    nn::Metrics results{{"root_loss_first", first},
                        {"root_loss_last_iteration", last},
                        {"root_loss_final", final_loss},
                        {"leaves", double(leaves_n)}};
    const std::string weights = trainer.out_path("recursive_ae.safetensors");
    if (!weights.empty()) {
      model->save(weights);
      std::ofstream(trainer.out_path("tree.txt")) << root->print();
      notes["recursive_ae.safetensors"] = "the trained merge network (encoder.*, decoder.*)";
      notes["tree.txt"] = "the final tree as the seed's Node.print";
    }
    notes["tree_structure"] = root->structure();
    if (timing) {
      std::vector<Timing> ts = timing_sweep(dim, timing_max, literal_budget, f.seed, f.lr, reps);
      for (const Timing& t : ts) {
        const std::string key = t.mode + "_" + t.impl + "_" + std::to_string(t.leaves);
        results["cpu_ms_per_iteration_" + key] = t.cpu_ms;
        results["wall_ms_median_" + key] = t.ms;
        results["wall_ms_min_" + key] = t.ms_min;
      }
      std::ifstream load("/proc/loadavg");
      std::string load1, load5;
      if (load >> load1 >> load5)
        notes["load_average"] = load1 + " " + load5 + " (1 and 5 min, after the sweep)";
      write_timing(trainer, ts, notes);
    }
    trainer.write_metrics(results, notes);
    for (const auto& [file, what] : notes)
      if (file.find('.') != std::string::npos)
        std::printf("wrote %s (%s)\n", trainer.out_path(file).c_str(), what.c_str());
  });
}
