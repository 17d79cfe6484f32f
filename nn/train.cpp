// The training loop (nn::Trainer): steps under a GradientTape, a progress bar, per-epoch
// evaluation, checkpoints (each epoch, every N steps, on SIGINT) with exact resume, and the
// run's files (history.csv, loss.png). The progress bar and metrics.json are in train_report.cpp.
//
// Distributed (FitOptions::distributed): every rank runs this loop in step; the batch is sharded
// in fit(), the gradients, the loss and the SIGINT flag are all-reduced in buckets that start
// during the backward walk, and only rank 0 writes and prints.
//
// Resume is exact because everything a step depends on is in the checkpoint: the model, the
// optimizer's state, the Generator (which shuffles the Batches and draws any noise) and the
// current shuffle order; the history and the unfinished epoch's loss sum ride along in the
// checkpoint's metadata, so a resumed run reports what the uninterrupted one would have.
#include "nn/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "nn/checkpoint.h"
#include "nn/detail/train_report.h"
#include "nn/norm.h"
#include "nn/plot.h"

namespace encore::nn {

using detail::config_json;
using detail::epoch_line;
using detail::Progress;
using detail::report_config_changes;
using detail::write_file_atomic;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// SIGINT: a flag the loop polls after each step. A second SIGINT while the first is pending
// restores the default action and re-raises, so a stuck program can still be stopped.

volatile std::sig_atomic_t g_sigint = 0;

void on_sigint(int) {
  if (g_sigint) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_sigint = 1;
}

/// Installs the handler for its lifetime and restores the previous one after.
class SigintGuard {
 public:
  explicit SigintGuard(bool on) : on_(on) {
    if (!on_) return;
    g_sigint = 0;
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // a read() in the user's loss function is not cut short
    sigaction(SIGINT, &sa, &previous_);
  }
  ~SigintGuard() {
    if (on_) sigaction(SIGINT, &previous_, nullptr);
    g_sigint = 0;
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
  bool raised() const { return on_ && g_sigint != 0; }

 private:
  bool on_;
  struct sigaction previous_ = {};
};

// ---------------------------------------------------------------------------------------------
// Checkpoint metadata: doubles as exact hex text, the history as JSON.

std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%a", v);
  return buf;
}

double parse_exact(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

std::string history_json(const std::vector<EpochRecord>& history) {
  nlohmann::json j = nlohmann::json::array();
  for (const EpochRecord& r : history) {
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& [k, v] : r.metrics) metrics[k] = exact(v);
    j.push_back({{"epoch", r.epoch},
                 {"train_loss", exact(r.train_loss)},
                 {"metrics", metrics},
                 {"seconds", exact(r.seconds)},
                 {"lr", exact(r.lr)}});
  }
  return j.dump();
}

std::vector<EpochRecord> parse_history(const std::string& text, const std::string& where) {
  std::vector<EpochRecord> history;
  try {
    for (const nlohmann::json& e : nlohmann::json::parse(text)) {
      EpochRecord r;
      r.epoch = e.at("epoch").get<int64_t>();
      r.train_loss = parse_exact(e.at("train_loss").get<std::string>());
      for (const auto& [k, v] : e.at("metrics").items())
        r.metrics[k] = parse_exact(v.get<std::string>());
      r.seconds = parse_exact(e.at("seconds").get<std::string>());
      r.lr = parse_exact(e.at("lr").get<std::string>());
      history.push_back(r);
    }
  } catch (const nlohmann::json::exception& e) {
    ENCORE_FAIL("Trainer", where, ": the checkpoint's history is malformed (", e.what(), ")");
  }
  return history;
}

/// The index of the first gradient holding a NaN or an infinity, or -1 when all are finite.
/// One read of every gradient per step: the comparison and the OR vectorise, so it costs a
/// fraction of the optimizer's own pass over the same memory.
int64_t first_non_finite_gradient(const Tensors& grads) {
  for (size_t k = 0; k < grads.size(); ++k) {
    if (!grads[k].defined() || grads[k].dtype() == DType::i64) continue;
    Tensor c = grads[k].contiguous();
    bool bad = false;
    dispatch_float("Trainer", c.dtype(), [&]<class T>() {
      const T* p = c.data<T>();
      const T limit = std::numeric_limits<T>::max();
      for (int64_t i = 0, n = c.numel(); i < n; ++i) bad |= !(std::abs(p[i]) <= limit);
    });
    if (bad) return int64_t(k);
  }
  return -1;
}

/// The model's name for the parameter p, or "number k" when the optimizer holds a tensor that is
/// not one of the model's parameters.
std::string parameter_name(const Module& model, const Tensor& p, int64_t k) {
  for (const auto& [name, t] : model.named_parameters())
    if (t.same(p)) return "'" + name + "'";
  return "number " + std::to_string(k);
}

/// The name of the first non-finite parameter or buffer, or "" when all are finite.
std::string first_non_finite(const Module& model) {
  for (const auto& [name, t] : model.state_dict()) {
    if (t.dtype() == DType::i64) continue;
    Tensor c = t.contiguous();
    bool ok = true;
    if (c.dtype() == DType::f32) {
      const float* p = c.data<float>();
      for (int64_t i = 0; i < c.numel() && ok; ++i) ok = std::isfinite(p[i]);
    } else {
      const double* p = c.data<double>();
      for (int64_t i = 0; i < c.numel() && ok; ++i) ok = std::isfinite(p[i]);
    }
    if (!ok) return name;
  }
  return "";
}

}  // namespace

Trainer::Trainer(Module& model, optim::Optimizer& optimizer, Generator& gen, FitOptions options)
    : model_(model), optimizer_(optimizer), gen_(gen), options_(std::move(options)) {
  ENCORE_CHECK(options_.epochs >= 1, "Trainer", "epochs must be at least 1, got ", options_.epochs);
  ENCORE_CHECK(options_.checkpoint_every >= 0, "Trainer", "checkpoint_every must be >= 0, got ",
               options_.checkpoint_every);
  ENCORE_CHECK(!options_.resume || !options_.out_dir.empty(), "Trainer",
               "resume needs an out_dir to find the checkpoint in");
}

std::string Trainer::out_path(const std::string& file) const {
  if (options_.out_dir.empty() || !is_root()) return "";
  return (std::filesystem::path(options_.out_dir) / file).string();
}

FitResult Trainer::fit(Batches& train, const LossFn& loss_fn, const EvalFn& eval_fn) {
  ENCORE_CHECK(train.size() >= 1, options_.name.c_str(), "the training data gives no batches (",
               train.examples(), " examples)");
  Distributed* dist = options_.distributed;
  return run(
      train.size(),
      [&, dist](int64_t index, int64_t, int64_t& samples, double& weight) {
        Tensors batch = train.batch(index);
        samples = batch.empty() || batch[0].dim() == 0 ? 0 : batch[0].size(0);
        weight = 1;
        if (dist && dist->size() > 1) {  // this rank's rows of the global batch
          batch = dist->shard(batch);
          weight = double(batch[0].size(0)) / double(samples);
          dist->set_gradient_weight(weight);  // for a synchronised BatchNorm's backward
        }
        return loss_fn(batch);
      },
      &train, eval_fn);
}

FitResult Trainer::fit(int64_t steps_per_epoch, const StepLossFn& loss_fn, const EvalFn& eval_fn) {
  ENCORE_CHECK(steps_per_epoch >= 1, options_.name.c_str(),
               "steps_per_epoch must be at least 1, got ", steps_per_epoch);
  return run(
      steps_per_epoch,
      [&](int64_t, int64_t step, int64_t& samples, double& weight) {
        samples = 0;
        weight = options_.distributed ? 1.0 / options_.distributed->size() : 1.0;
        if (options_.distributed) options_.distributed->set_gradient_weight(weight);
        return loss_fn(step);
      },
      nullptr, eval_fn);
}

Metrics Trainer::evaluate(const EvalFn& eval_fn) {
  if (!eval_fn) return {};
  // Evaluation runs other shapes than training (chunks of the test set, no saved activations):
  // the blocks training cached are of no use to it, and the blocks it caches are of no use to
  // the next epoch. Returning them to the system keeps the peak at max(train, eval) rather
  // than their sum (the caching allocator keeps every size class it has seen, unbounded).
  allocator::empty_cache();
  model_.eval();
  Metrics m;
  try {
    NoGrad no_grad;
    m = eval_fn();
  } catch (...) {
    model_.train();
    allocator::empty_cache();
    throw;
  }
  model_.train();
  allocator::empty_cache();
  return m;
}

FitResult Trainer::run(int64_t steps_per_epoch, const StepFn& step_fn, Batches* batches,
                       const EvalFn& eval_fn) {
  const std::string& name = options_.name;
  const auto fit_start = Clock::now();
  result_ = FitResult{};
  steps_per_epoch_ = steps_per_epoch;
  samples_ = 0;
  train_seconds_ = 0;
  process_steps_ = 0;
  Distributed* const dist = options_.distributed;
  const bool root = is_root();  // only rank 0 writes files and prints
  // Blocks cached while the program prepared its data and model (other shapes than a training
  // step's) go back to the system before training caches its own.
  allocator::empty_cache();
  const bool files = !options_.out_dir.empty() && root;
  // Every rank reads the checkpoint when resuming; only rank 0 writes it.
  const std::string ckpt =
      options_.out_dir.empty()
          ? std::string()
          : (std::filesystem::path(options_.out_dir) / "checkpoint.safetensors").string();
  if (files) std::filesystem::create_directories(options_.out_dir);

  // Where to start: the beginning, or the checkpoint.
  int64_t epoch = 0;      // epochs completed
  int64_t step = 0;       // global steps completed
  double loss_sum = 0;    // of the unfinished epoch's steps
  double epoch_secs = 0;  // time spent in the unfinished epoch before a resume
  if (options_.resume) {
    if (!std::filesystem::exists(ckpt)) {
      if (root)
        std::printf("%s: no checkpoint at %s; starting from the beginning\n", name.c_str(),
                    ckpt.c_str());
    } else {
      TrainingState st = load_checkpoint(ckpt, model_, optimizer_, gen_, batches);
      auto get = [&](const char* key) {
        auto it = st.extra.find(key);
        ENCORE_CHECK(it != st.extra.end(), name.c_str(), ckpt,
                     " was not written by nn::Trainer (metadata lacks '", key, "')");
        return it->second;
      };
      int64_t written_spe = 0;
      const std::string spe_text = get("steps_per_epoch");
      size_t used = 0;
      try {
        written_spe = std::stoll(spe_text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      ENCORE_CHECK(used > 0 && used == spe_text.size(), name.c_str(), ckpt,
                   ": metadata 'steps_per_epoch' is not an integer: '", spe_text, "'");
      ENCORE_CHECK(written_spe == steps_per_epoch, name.c_str(), ckpt, " was written with ",
                   written_spe, " steps per epoch, this run has ", steps_per_epoch,
                   " (was the batch size or the data changed?)");
      epoch = st.epoch;
      step = st.step;
      ENCORE_CHECK(step >= epoch * steps_per_epoch && step <= (epoch + 1) * steps_per_epoch,
                   name.c_str(), ckpt, " is inconsistent (step ", step, ", epoch ", epoch, ")");
      loss_sum = parse_exact(get("loss_sum"));
      epoch_secs = parse_exact(get("epoch_seconds"));
      result_.history = parse_history(get("history"), ckpt);
      report_config_changes(name, get("config"), options_.config);
      result_.resumed = true;
      if (!root) {
      } else if (epoch >= options_.epochs)
        std::printf("%s: resumed from %s at step %lld: all %lld epochs are done\n", name.c_str(),
                    ckpt.c_str(), static_cast<long long>(step), static_cast<long long>(epoch));
      else
        std::printf("%s: resumed from %s at step %lld (epoch %lld, step %lld of %lld)\n",
                    name.c_str(), ckpt.c_str(), static_cast<long long>(step),
                    static_cast<long long>(epoch + 1),
                    static_cast<long long>(step - epoch * steps_per_epoch),
                    static_cast<long long>(steps_per_epoch));
    }
  }
  if (dist) {
    // Every rank must start from the same step (each read the checkpoint, or none did), and
    // from rank 0's weights.
    const std::vector<double> lo = dist->all_reduce_min({double(step)}, "resume");
    const std::vector<double> hi = dist->all_reduce_max({double(step)}, "resume");
    ENCORE_CHECK(lo[0] == hi[0], name.c_str(), "the ranks resume from different steps (",
                 int64_t(lo[0]), " to ", int64_t(hi[0]), "): every rank must see the same ", ckpt,
                 " (a shared or copied out_dir)");
    dist->broadcast(model_);
  }
  result_.steps = step;

  // A checkpoint after `step` steps and `epochs_done` complete epochs; `seconds` spent so far in
  // the unfinished epoch (0 at an epoch's end).
  auto save = [&](int64_t epochs_done, bool epoch_done, double seconds) {
    if (options_.out_dir.empty()) return;
    // Checked on every rank (the parameters are the same on all), so all stop together.
    std::string bad = first_non_finite(model_);
    ENCORE_CHECK(bad.empty(), name.c_str(), "'", bad, "' is not finite after step ", step,
                 "; no checkpoint written (the last one is from before)");
    if (!files) return;
    TrainingState st{.step = step, .epoch = epochs_done};
    st.extra["steps_per_epoch"] = std::to_string(steps_per_epoch);
    st.extra["loss_sum"] = exact(epoch_done ? 0.0 : loss_sum);
    st.extra["epoch_seconds"] = exact(epoch_done ? 0.0 : seconds);
    st.extra["history"] = history_json(result_.history);
    st.extra["config"] = config_json(options_.config);
    st.extra["name"] = name;
    save_checkpoint(ckpt, model_, optimizer_, gen_, st, batches);
  };

  if (epoch >= options_.epochs) {  // a finished run: evaluate and report
    result_.final_metrics = evaluate(eval_fn);
    result_.wall_seconds = seconds_since(fit_start);
    if (files) {
      write_history();
      write_metrics();
    }
    return result_;
  }

  SigintGuard sigint(options_.handle_sigint);
  // After SIGINT: the checkpoint is written; say how to continue and return.
  auto interrupted = [&] {
    result_.interrupted = true;
    result_.wall_seconds = seconds_since(fit_start);
    if (files) write_metrics();
    if (!root) {
    } else if (files)
      std::printf(
          "interrupted: checkpoint written to %s; run the same command with --resume to "
          "continue\n",
          ckpt.c_str());
    else
      std::printf("interrupted at step %lld (no out_dir: no checkpoint written)\n",
                  static_cast<long long>(step));
    std::fflush(stdout);
    return result_;
  };
  // BatchNormSync::synchronized: the model's BatchNorm layers compute their batch statistics
  // over the ranks while fit() trains, and per process again after it.
  struct BatchNormGroup {
    Module& model;
    bool on;
    ~BatchNormGroup() {
      if (on) set_batch_norm_process_group(model, nullptr);
    }
  } bn_group{model_, dist && dist->options().batch_norm == BatchNormSync::synchronized};
  if (bn_group.on) set_batch_norm_process_group(model_, dist);
  model_.train();
  const Tensors params = optimizer_.parameters();
  for (; epoch < options_.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    int64_t index = step - epoch * steps_per_epoch;  // > 0 only when resuming mid-epoch
    if (index == 0) {
      loss_sum = 0;
      epoch_secs = 0;
      if (batches) batches->reshuffle();  // what Batches::begin() does
    }
    char prefix[96];
    std::snprintf(prefix, sizeof(prefix), "%s epoch %lld/%lld", name.c_str(),
                  static_cast<long long>(epoch + 1), static_cast<long long>(options_.epochs));
    Progress progress(options_.progress && root, prefix, steps_per_epoch, index);
    int64_t epoch_samples = 0;
    for (; index < steps_per_epoch; ++index) {
      const auto step_start = Clock::now();
      if (options_.lr_schedule) optimizer_.set_lr(options_.lr_schedule(step));
      int64_t samples = 0;
      double value = 0, weight = 1;
      bool stop = false;  // SIGINT, on any rank
      {
        GradientTape tape;
        Tensor loss = step_fn(index, step, samples, weight);
        ENCORE_CHECK(loss.defined() && loss.numel() == 1, name.c_str(),
                     "the loss function must return a scalar, got ",
                     loss.defined() ? to_string(loss.shape()) : std::string("an undefined tensor"),
                     " at step ", step + 1);
        value = loss.item<double>();
        Tensors grads;
        if (dist) {
          // Each bucket of gradients starts its all-reduce as soon as the walk has made its
          // gradients final, so communication overlaps the rest of the backward walk.
          dist->begin_gradients(params, weight, step);
          grads = tape.gradient(loss, params, {.on_ready = [dist](size_t i, const Tensor& g) {
                                  dist->gradient_ready(i, g);
                                }});
        } else {
          grads = tape.gradient(loss, params);
        }
        if (dist) {
          // The weighted mean of the ranks' gradients and losses, and whether any rank got a
          // SIGINT, in one exchange: every rank then decides alike.
          std::vector<double> extras{value * weight, sigint.raised() ? 1.0 : 0.0};
          dist->finish_gradients(grads, &extras);
          value = extras[0];
          stop = extras[1] > 0;
        } else {
          stop = sigint.raised();
        }
        ENCORE_CHECK(
            std::isfinite(value), name.c_str(), "the loss is ", value, " at step ", step + 1,
            " (epoch ", epoch + 1, ", step ", index + 1, " of ", steps_per_epoch,
            "); training stopped before updating the parameters",
            !options_.out_dir.empty() ? "; the last checkpoint is from before this step" : "");
        // A finite loss with a NaN or infinite gradient (e.g. sqrt or log at 0) would turn the
        // parameters into NaN with no word of where it came from: stop here and name it.
        if (int64_t k = first_non_finite_gradient(grads); k >= 0)
          ENCORE_FAIL(
              name.c_str(), "the gradient of parameter ", parameter_name(model_, params[k], k), " ",
              params[k].shape(), " is not finite at step ", step + 1, " (epoch ", epoch + 1,
              ", step ", index + 1, " of ", steps_per_epoch, ") although the loss is ", value,
              "; training stopped before updating the parameters",
              !options_.out_dir.empty() ? "; the last checkpoint is from before this step" : "");
        if (options_.on_gradients) options_.on_gradients(grads);
        optimizer_.step(grads);
        if (dist && dist->options().batch_norm == BatchNormSync::average_running_stats)
          dist->average_buffers(model_);
      }
      loss_sum += value;
      ++step;
      ++process_steps_;
      result_.steps = step;
      samples_ += samples;
      epoch_samples += samples;
      double dt = seconds_since(step_start);
      train_seconds_ += dt;
      progress.update(index + 1, loss_sum / double(index + 1), epoch_samples,
                      seconds_since(epoch_start));
      bool last = index + 1 == steps_per_epoch;
      if (stop || (options_.checkpoint_every > 0 && step % options_.checkpoint_every == 0 && !last))
        save(epoch, false, epoch_secs + seconds_since(epoch_start));
      if (stop) {
        progress.clear();
        return interrupted();
      }
    }
    progress.clear();

    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.train_loss = loss_sum / double(steps_per_epoch);
    rec.lr = optimizer_.lr();
    rec.metrics = evaluate(eval_fn);
    rec.seconds = epoch_secs + seconds_since(epoch_start);
    result_.history.push_back(rec);
    result_.final_metrics = rec.metrics;
    if (root) std::printf("%s\n", epoch_line(name, rec, options_.epochs).c_str());
    std::fflush(stdout);
    save(epoch + 1, true, 0);
    result_.wall_seconds = seconds_since(fit_start);
    if (files) {
      write_history();
      write_metrics();
    }
    // SIGINT during the evaluation: the epoch's checkpoint is written; stop unless it was the
    // last epoch anyway.
    bool stop = sigint.raised();
    if (dist) stop = dist->all_reduce_max({stop ? 1.0 : 0.0}, "end of epoch")[0] > 0;
    if (stop && epoch + 1 < options_.epochs) return interrupted();
  }
  result_.wall_seconds = seconds_since(fit_start);
  if (files) write_metrics();
  return result_;
}

void Trainer::write_history() const {
  if (options_.out_dir.empty() || !is_root()) return;
  std::set<std::string> keys;
  for (const EpochRecord& r : result_.history)
    for (const auto& [k, v] : r.metrics) keys.insert(k);
  std::string csv = "epoch,train_loss";
  for (const std::string& k : keys) csv += "," + k;
  csv += ",seconds,lr\n";
  char buf[64];
  for (const EpochRecord& r : result_.history) {
    csv += std::to_string(r.epoch);
    std::snprintf(buf, sizeof(buf), ",%.9g", r.train_loss);
    csv += buf;
    for (const std::string& k : keys) {
      auto it = r.metrics.find(k);
      csv += ",";
      if (it != r.metrics.end()) {
        std::snprintf(buf, sizeof(buf), "%.9g", it->second);
        csv += buf;
      }
    }
    std::snprintf(buf, sizeof(buf), ",%.3f,%.9g\n", r.seconds, r.lr);
    csv += buf;
  }
  write_file_atomic(out_path("history.csv"), csv);

  plot::Series train{.label = "train loss"}, val{.label = options_.val_metric};
  for (const EpochRecord& r : result_.history) {
    train.x.push_back(double(r.epoch));
    train.y.push_back(r.train_loss);
    auto it = r.metrics.find(options_.val_metric);
    if (it != r.metrics.end()) {
      val.x.push_back(double(r.epoch));
      val.y.push_back(it->second);
    }
  }
  std::vector<plot::Series> series{train};
  if (!val.x.empty()) series.push_back(val);
  try {
    plot::line_plot(out_path("loss.png"), series,
                    {.title = options_.name + ": loss per epoch",
                     .xlabel = "epoch",
                     .ylabel = "loss",
                     .x_tick = result_.history.size() <= 12 ? 1.0 : 0.0});  // whole epochs
  } catch (const Error& e) {  // a picture that cannot be written does not stop training
    std::fprintf(stderr, "warning: %s\n", e.what());
  }
}

}  // namespace encore::nn
