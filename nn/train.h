// The training loop a program reuses: what Keras's `fit` gives. One call trains a model for a
// number of epochs over a Batches (or a fixed number of steps per epoch for programs without a
// data set), with a progress bar, per-epoch evaluation, metrics.json / history.csv / a loss
// curve in an output folder, atomic checkpoints, exact --resume and a clean stop on SIGINT:
//
//   nn::Trainer trainer(*model, opt, gen, {.epochs = 10, .out_dir = "out/dense_ae"});
//   nn::FitResult r = trainer.fit(batches,
//       [&](const Tensors& b) { return model->loss(b[0]); },        // under a GradientTape
//       [&] { return nn::Metrics{{"val_loss", test_loss()}}; });    // eval mode, NoGrad
//   if (r.interrupted) return 0;                                    // checkpoint written
//   trainer.write_metrics({{"pca_error", e}});                      // add the program's results
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data.h"
#include "distributed.h"
#include "module.h"
#include "optim/optimizer.h"

namespace encore::nn {

/// Named scalar results, e.g. {{"val_loss", 0.093}, {"test_error", 3.1}}.
using Metrics = std::map<std::string, double>;

struct FitOptions {
  /// Passes over the data (or epochs of steps_per_epoch steps).
  int64_t epochs = 1;
  /// Folder for metrics.json, history.csv, loss.png and checkpoint.safetensors; created when
  /// missing. Empty: write no files (and no checkpoints).
  std::string out_dir = "out";
  /// Continue from out_dir/checkpoint.safetensors when it exists (a message says which step);
  /// a missing checkpoint starts from the beginning with a note. A finished run resumed does
  /// nothing more than evaluate and report.
  bool resume = false;
  /// Also write a checkpoint every N training steps (0: only at the end of each epoch).
  int64_t checkpoint_every = 0;
  /// The program's name, used in progress lines and metrics.json (e.g. "dense_ae").
  std::string name = "train";
  /// The whole configuration (flag -> value as text), recorded in metrics.json and the
  /// checkpoint. Numbers and booleans written as text are stored in JSON as numbers/booleans.
  std::map<std::string, std::string> config;
  /// Progress output: a bar redrawn in place on a terminal, a line per ~10% of an epoch
  /// otherwise. false: only the per-epoch summary lines.
  bool progress = true;
  /// While fit() runs, SIGINT finishes the current step, writes a checkpoint, says how to
  /// resume and makes fit() return with FitResult::interrupted set.
  bool handle_sigint = true;
  /// The metric of the evaluation function plotted beside the training loss in loss.png.
  std::string val_metric = "val_loss";
  /// Called with the gradients before each optimizer step (e.g. clipping); may change them.
  std::function<void(Tensors& grads)> on_gradients;
  /// When set, the learning rate of global step s (0-based) is lr_schedule(s), set before the
  /// step (e.g. an optim::CosineDecay).
  std::function<double(int64_t step)> lr_schedule;
  /// Data-parallel training (nn/distributed.h): every rank runs the same fit() over the same
  /// Batches; each takes its shard of every global batch, gradients (and the reported loss)
  /// are averaged over the ranks, and only rank 0 writes files and prints. The loss function
  /// must return a mean over the batch's examples for the average to equal the single-process
  /// gradient. fit(steps_per_epoch, fn) does not shard: there each rank's fn must take its own
  /// share of the step's data, and the ranks' losses are averaged with equal weights. With a
  /// resume, every rank reads out_dir's checkpoint (a shared or copied folder). Must outlive
  /// the Trainer; null: one process.
  Distributed* distributed = nullptr;
};

/// One row of history.csv.
struct EpochRecord {
  int64_t epoch = 0;      ///< 1-based
  double train_loss = 0;  ///< mean of the epoch's step losses
  Metrics metrics;        ///< what the evaluation function returned
  double seconds = 0;     ///< wall time of the epoch's training steps and evaluation
  double lr = 0;          ///< the optimizer's learning rate during the epoch
};

struct FitResult {
  std::vector<EpochRecord> history;  ///< every epoch so far, including those before a resume
  Metrics final_metrics;             ///< the last evaluation (empty without an eval function)
  double wall_seconds = 0;           ///< this process's time in fit()
  int64_t steps = 0;                 ///< training steps taken in all, including before a resume
  bool interrupted = false;          ///< stopped by SIGINT after writing a checkpoint
  bool resumed = false;              ///< started from a checkpoint
};

class Trainer {
 public:
  /// model, optimizer and gen must outlive the Trainer. gen is the run's random source: it
  /// shuffles the Batches handed to fit() (which must have been built with it) and anything
  /// else drawn during training (noise, dropout, sampling) should come from it too, so that a
  /// checkpoint captures it and a resumed run is bitwise the same (one thread).
  Trainer(Module& model, optim::Optimizer& optimizer, Generator& gen, FitOptions options = {});

  /// Returns the scalar loss of one batch; called in training mode under a GradientTape,
  /// whose gradient w.r.t. model.parameters() the optimizer applies.
  using LossFn = std::function<Tensor(const Tensors& batch)>;
  /// Returns the loss of global step `step` (0-based) for programs without a Batches.
  using StepLossFn = std::function<Tensor(int64_t step)>;
  /// Evaluation after each epoch, in eval mode under NoGrad (training mode is restored).
  using EvalFn = std::function<Metrics()>;

  /// Trains for options.epochs passes over `train`.
  FitResult fit(Batches& train, const LossFn& loss_fn, const EvalFn& eval_fn = {});
  /// Trains for options.epochs epochs of steps_per_epoch steps each.
  FitResult fit(int64_t steps_per_epoch, const StepLossFn& loss_fn, const EvalFn& eval_fn = {});

  /// (Re)writes out_dir/metrics.json (rank 0 only): the last fit()'s final metrics, wall time,
  /// steps/s, the configuration, the machine (CPU, cores, threads, OpenBLAS kernel), the
  /// number of ranks, encore's version, plus `results` and `notes` (e.g. a baseline's error,
  /// the pictures written).
  void write_metrics(const Metrics& results = {},
                     const std::map<std::string, std::string>& notes = {}) const;

  /// out_dir/<file>, for a program's own pictures and files ("" when out_dir is empty, and
  /// on every rank but 0 of a distributed run).
  std::string out_path(const std::string& file) const;
  const FitOptions& options() const { return options_; }
  const FitResult& result() const { return result_; }
  /// False on every rank but 0 of a distributed run: that rank writes no files and prints
  /// nothing.
  bool is_root() const { return !options_.distributed || options_.distributed->is_root(); }

 private:
  /// Runs one training step's forward pass: the loss of step `index` of the epoch (global step
  /// `step`); sets `samples` to the examples of the global batch (0 when unknown) and `weight`
  /// to this rank's share of it (1 in one process).
  using StepFn =
      std::function<Tensor(int64_t index, int64_t step, int64_t& samples, double& weight)>;
  FitResult run(int64_t steps_per_epoch, const StepFn& step_fn, Batches* batches,
                const EvalFn& eval_fn);
  /// Evaluates in eval mode under NoGrad; training mode is restored.
  Metrics evaluate(const EvalFn& eval_fn);
  /// Writes history.csv and loss.png from result_.history.
  void write_history() const;

  Module& model_;
  optim::Optimizer& optimizer_;
  Generator& gen_;
  FitOptions options_;
  FitResult result_;
  int64_t steps_per_epoch_ = 0;  // of the last fit()
  int64_t samples_ = 0;          // examples seen in this process's training steps
  double train_seconds_ = 0;     // this process's time in training steps
  int64_t process_steps_ = 0;    // steps taken by this process
};

}  // namespace encore::nn
