// What every example program shares: the common flags (--epochs --batch-size --lr --seed
// --threads --data --out --resume --init --print-params --checkpoint-every --train-limit
// --test-limit --quiet, each with its default in --help and a range check), the set-up they
// imply, and the run-and-report wrapper. A program keeps only its own flags, data, model and
// pictures:
//
//   int main(int argc, char** argv) {
//     CLI::App app{"dense_ae: ..."};
//     examples::CommonFlags f{.epochs = 30, .batch_size = 128, .lr = 1e-3, .out = "out/dense_ae"};
//     examples::add_common_flags(app, f);
//     int64_t code = 20;
//     app.add_option("--code", code, "code size")->capture_default_str();
//     CLI11_PARSE(app, argc, argv);
//     return examples::run("dense_ae", [&] {
//       examples::setup(f);                                   // threads, seeds
//       auto model = std::make_shared<models::DenseAutoencoder>(...);
//       if (examples::prepare_model(*model, f)) return;       // --print-params / --init
//       nn::Trainer trainer(*model, opt, gen, examples::fit_options(f, "dense_ae", app));
//       ...
//     });
//   }
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "nn/nn.h"

namespace encore::examples {

struct CommonFlags {
  int64_t epochs = 1;
  int64_t batch_size = 128;
  double lr = 1e-3;
  uint64_t seed = 0;
  /// Threads for OpenMP and OpenBLAS (encore::set_num_threads); 0: one per core.
  int threads = 0;
  /// The MNIST folder (scripts/fetch-data), or a program's own data path.
  std::string data = nn::mnist_dir();
  /// Output folder: metrics.json, history.csv, loss.png, checkpoint, pictures.
  std::string out = "out";
  bool resume = false;
  /// A safetensors file of initial weights (same names as --print-params shows).
  std::string init;
  bool print_params = false;
  /// Also checkpoint every N steps (0: each epoch only).
  int64_t checkpoint_every = 0;
  /// Use only the first N training / test examples (0: all).
  int64_t train_limit = 0;
  int64_t test_limit = 0;
  /// Progress bar / lines (--quiet turns them off).
  bool quiet = false;
};

/// Adds the common flags to app; the values f holds are the defaults --help shows. A program
/// that generates its data passes data_flag = false: it gets no --data to ignore silently.
void add_common_flags(CLI::App& app, CommonFlags& f, bool data_flag = true);

/// The largest layer width a size flag (--code, --hidden, --channels, ...) accepts: a wider
/// layer is almost certainly a typo, and the flag should say so rather than an allocator.
inline constexpr int64_t kMaxLayerWidth = int64_t{1} << 20;
/// Checks a layer width: 1 <= width <= kMaxLayerWidth.
CLI::Validator layer_width();
/// Checks a finite number > 0 (CLI::PositiveNumber lets "nan" through), or >= 0.
CLI::Validator finite_positive();
CLI::Validator finite_non_negative();
/// A number in [0, 1] (not NaN).
CLI::Validator probability();
/// A whole number in [1, 2^63) (strict) or [0, 2^63), for integer flags.
CLI::Validator whole_number(bool strict);
/// Checks that a file can be created at the path: its folder exists (checked before training,
/// so a long run does not end in a write error).
CLI::Validator writable_file_path();

/// After parsing: sets the threads and seeds default_generator() with f.seed; prints one line
/// naming the threads and the OpenBLAS kernel.
void setup(const CommonFlags& f);

/// Handles --print-params (prints every parameter's name, shape and count, returns true: the
/// program should stop) and --init (loads the weights strictly, saying what it loaded).
bool prepare_model(nn::Module& model, const CommonFlags& f);

/// FitOptions from the flags: epochs, out_dir, resume, checkpoint_every, progress, name, and
/// config = every option of app (common and the program's own) with its value.
nn::FitOptions fit_options(const CommonFlags& f, const std::string& name, const CLI::App& app);

/// Runs body, turning an encore::Error (or another std::exception) into "name: message" on
/// stderr and exit status 1; returns 0 otherwise.
int run(const std::string& name, const std::function<void()>& body);

/// The all-reduce totals of a distributed run (allreduce_seconds, allreduce_arrival_seconds,
/// allreduce_bytes_per_step) for metrics.json; none for a run in one process (nullptr).
nn::Metrics comm_metrics(const nn::Distributed* dist);

}  // namespace encore::examples
