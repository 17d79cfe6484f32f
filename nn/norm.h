// Batch normalisation (Ioffe & Szegedy 2015): BatchNorm1d over (N, C) or (N, C, L), BatchNorm2d
// over (N, C, H, W). PyTorch's conventions and names, so checkpoints interoperate:
//   parameters "weight" (gamma, ones) and "bias" (beta, zeros) when affine;
//   buffers "running_mean" (zeros), "running_var" (ones), "num_batches_tracked" (i64 scalar).
// Training normalises with the batch mean and the biased batch variance and updates the running
// statistics in place (outside any tape) with the unbiased variance:
//   running = (1 - momentum) running + momentum batch_statistic.
// Evaluation normalises with the running statistics. TensorFlow's "decay" is 1 - momentum: seed
// 004's decay 0.9 is momentum 0.1 (the default here); its epsilon 1e-3 is the option
// `.eps = 1e-3` (PyTorch's default 1e-5 is ours).
//
// Synchronised (as PyTorch's SyncBatchNorm): given a ProcessGroup of more than one rank
// (set_process_group, or nn::Distributed with BatchNormSync::synchronized, which the Trainer
// attaches), a training forward normalises with the mean and biased variance of the global
// batch, every rank's shard together: the ranks all-reduce per channel the count, the sum and
// the sum of squares (in f64, for f32 inputs too), and the backward all-reduces per channel
// sum(g) and sum(g * xhat), g being the gradient of xhat = (x - mean) / sqrt(var + eps), so the
// input gradient is that of one process seeing the whole batch. Weighting: each rank's
// upstream gradient is on the scale of its own loss, which the gradient all-reduce later
// multiplies by w_r = ProcessGroup::gradient_weight() (local rows / global rows for mean
// losses); the backward sums w_r * sum(g) over the ranks and divides the result by the local
// w_r, so rank r's input gradient is 1 / w_r times its share of the global one, and the
// weighted gradient all-reduce gives exactly the one-process gradient of every parameter
// (gamma's and beta's, per-rank partial sums, included). The running statistics are updated
// from the global moments (unbiased variance with the global count), alike on every rank.
// Evaluation, and a group of size 1 or none, is the unsynchronised layer exactly. The
// synchronised backward cannot be differentiated again (it says so).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "module.h"
#include "process_group.h"

namespace encore::nn {

struct BatchNormOptions {
  /// Added to the variance before the square root.
  double eps = 1e-5;
  /// Weight of the new batch statistic in the running average (PyTorch convention, in [0, 1]);
  /// std::nullopt gives the cumulative average over all batches seen (factor 1 / batches).
  std::optional<double> momentum = 0.1;
  /// Learn a per-channel scale gamma ("weight") and shift beta ("bias").
  bool affine = true;
  /// Keep running statistics for evaluation; without them batch statistics are used always.
  bool track_running_stats = true;
  /// Dtype of parameters and running statistics (f32 or f64).
  DType dtype = DType::f32;
};

/// The shared implementation of BatchNorm1d and BatchNorm2d; construct one of those.
class BatchNorm : public Module {
 public:
  /// x: (N, C), (N, C, L) [1d] or (N, C, H, W) [2d] -> same shape, normalised per channel C.
  Tensor forward(const Tensor& x);

  /// gamma (C) (registered as "weight"); undefined without affine.
  Tensor weight() const { return weight_; }
  /// beta (C) (registered as "bias"); undefined without affine.
  Tensor bias() const { return bias_; }
  Tensor gamma() const { return weight_; }
  Tensor beta() const { return bias_; }
  /// (C) buffers; undefined without track_running_stats.
  Tensor running_mean() const { return running_mean_; }
  Tensor running_var() const { return running_var_; }
  /// Number of training batches seen (i64 scalar); undefined without track_running_stats.
  Tensor num_batches_tracked() const { return num_batches_tracked_; }
  int64_t num_features() const { return c_; }
  const BatchNormOptions& options() const { return options_; }

  /// Synchronises the batch statistics of training forwards over `group`'s ranks (see the top
  /// of this file); nullptr (the default) keeps them per process. The group must outlive the
  /// layer's use of it, and every rank must run the layer's forward and backward in step.
  void set_process_group(ProcessGroup* group) { group_ = group; }
  ProcessGroup* process_group() const { return group_; }

  /// e.g. "BatchNorm1d(400, eps 0.001)": the options that differ from the defaults.
  std::string describe() const override;

  /// The largest num_batches_tracked a checkpoint may carry: 2^53, the last count a double
  /// (the momentum 1 / batches) still tells apart from its successor.
  static constexpr int64_t kMaxBatchesTracked = int64_t{1} << 53;

 protected:
  /// Refuses a loaded num_batches_tracked outside [0, kMaxBatchesTracked] and a running_var
  /// with a negative value: both come only from a corrupt or foreign file, and would turn the
  /// running statistics into NaN (or overflow the count) on the next step.
  void check_loaded_state(const std::string& prefix, const std::map<std::string, Tensor>& state,
                          std::vector<std::string>& problems) const override;

  /// name: "BatchNorm1d" or "BatchNorm2d"; min_dim..max_dim: the accepted input ranks.
  BatchNorm(const char* name, int min_dim, int max_dim, int64_t num_features,
            const BatchNormOptions& options);

 private:
  void check_input(const Tensor& x) const;
  void update_running_stats(const Tensor& batch_mean, const Tensor& batch_var, int64_t n);
  /// The training forward with the global batch's moments over group_ (normalised, before
  /// gamma and beta).
  Tensor normalize_synchronized(const Tensor& x, const std::vector<int64_t>& dims,
                                const Shape& stat_shape);

  const char* name_;
  int min_dim_, max_dim_;
  int64_t c_;
  BatchNormOptions options_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
  ProcessGroup* group_ = nullptr;
};

/// Batch norm over the features of (N, C) or (N, C, L) inputs (statistics over N, or N and L).
///   auto bn = std::make_shared<nn::BatchNorm1d>(400, nn::BatchNormOptions{.eps = 1e-3});
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormOptions& options = {});
};

/// Batch norm over the channels of (N, C, H, W) images (statistics over N, H and W).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
};

/// Gives every BatchNorm in `model` (itself included, each submodule once) the process group
/// `group` (nullptr: none, per-process statistics again). Returns how many layers it set.
int64_t set_batch_norm_process_group(Module& model, ProcessGroup* group);

}  // namespace encore::nn
