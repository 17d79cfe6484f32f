// Data-parallel training over MPI (Open MPI): every rank holds the whole model, computes the
// gradient of its shard of each global batch, and the ranks average their gradients with
// MPI all-reduce before each optimizer step, so every rank takes the same step.
//
//   int main(int argc, char** argv) {
//     nn::Distributed dist(argc, argv);          // MPI_Init; MPI_Finalize when it goes
//     ...
//     nn::Trainer trainer(model, opt, gen, {.epochs = 10, .distributed = &dist});
//     trainer.fit(batches, loss_fn, eval_fn);    // run under: mpirun -np 4 ./program
//   }
//
// What the Trainer does with it (nn/train.cpp):
// - at the start of fit(), parameters and buffers are broadcast from rank 0 (after a resume
//   too), so every rank starts from the same weights whatever its seed;
// - every rank iterates the same global Batches (same seed, same shuffle) and takes its own
//   slice of each global batch (shard()): rank r of N takes rows [r B / N, (r + 1) B / N), so
//   a resumed run, whose checkpoint holds the global order, shards the same way;
// - during the backward walk, the tape reports each parameter's gradient as soon as it is
//   final (GradientOptions::on_ready) and the gradients are averaged in buckets whose
//   all-reduce starts as soon as they are full (begin_gradients / gradient_ready /
//   finish_gradients; all_reduce_gradients() does the same after a walk);
// - BatchNorm (DistributedOptions::batch_norm): by default (BatchNormSync::per_rank) the batch
//   statistics of a training forward are those of the rank's shard and the running statistics
//   stay per rank (rank 0's are the ones checkpointed); BatchNormSync::average_running_stats
//   averages the running statistics over the ranks after every step; and
//   BatchNormSync::synchronized (PyTorch's SyncBatchNorm) normalises with the moments of the
//   global batch: during fit() the Trainer gives every BatchNorm of the model this Distributed
//   as its ProcessGroup (nn/process_group.h), each training forward all-reduces the per-channel
//   count, sum and sum of squares (f64), and its backward sum(g) and sum(g * xhat), weighted by
//   the rank's gradient weight (which the Trainer sets to the weight it passes to
//   all_reduce_gradients), so two ranks with shards of 8 and 7 rows compute the gradients,
//   outputs and running statistics of one process with the 15 rows (nn/norm.h has the
//   derivation). It costs two small all-reduces (3C + 1 and 2C doubles) per layer and step,
//   each waiting for the slowest rank;
// - only rank 0 writes checkpoints, metrics.json, history.csv, pictures and prints progress.
//
// Buckets and overlap: gradients are packed from the last parameter to the first (the order a
// backward walk makes them final), in buckets of up to bucket_bytes. Under the Trainer the tape
// calls gradient_ready for each parameter as soon as its gradient is final (autograd/tape.h,
// GradientOptions::on_ready), and a bucket's non-blocking MPI_Iallreduce starts as soon as all
// its gradients are packed (and every earlier bucket has started: the same order on every rank),
// so the communication of the last layers' gradients overlaps the backward walk through the
// first layers; finish_gradients, after the walk, packs what was not reported, starts the rest
// and waits. Buckets run on a communicator of their own, so synchronised BatchNorm's blocking
// all-reduces inside the walk never interleave with them differently on different ranks.
// DistributedStats::buckets_overlapped counts the buckets started during the walk.
//
// Timeouts: every collective is non-blocking and polled (MPI_Test) against a deadline. Before
// the gradient all-reduce of each step (just before its first bucket starts, so inside the
// backward walk under the Trainer) the ranks answer a roll call at rank 0, so a rank that
// hangs (or died without mpirun noticing) is named: rank 0 aborts the job with "rank(s) 3 did
// not arrive at step 12 ... within 300 s". A rank that waits for rank 0 beyond the deadline
// aborts saying rank 0 did not answer. Abort is MPI_Abort: the whole job stops.
//
// Without MPI (meson -Dmpi=disabled, or libopenmpi-dev missing) this header still compiles and
// mpi_available() is false; constructing a Distributed then throws an encore::Error saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "module.h"
#include "process_group.h"

namespace encore::nn {

/// Whether this build of encore has MPI support.
bool mpi_available();

enum class BatchNormSync {
  per_rank,               ///< each rank keeps its own running statistics
  average_running_stats,  ///< running statistics averaged over the ranks after every step
  synchronized,           ///< batch statistics (and running ones) of the global batch
};

struct DistributedOptions {
  /// Seconds a rank waits for the others in any collective before aborting the job.
  double timeout_seconds = 300;
  /// Gradient bytes per all-reduce bucket (a larger gradient gets a bucket of its own).
  int64_t bucket_bytes = int64_t{4} << 20;
  BatchNormSync batch_norm = BatchNormSync::per_rank;
};

/// Communication totals since construction (for throughput reports and tests).
struct DistributedStats {
  int64_t all_reduces = 0;  ///< exchanges (all_reduce_gradients, finish_gradients)
  int64_t buckets = 0;      ///< MPI_Iallreduce calls they made
  int64_t bytes = 0;        ///< gradient bytes this rank contributed
  /// Time in all_reduce_gradients, or begin/gradient_ready/finish (packing, waiting, unpacking).
  double reduce_seconds = 0;
  /// The part of reduce_seconds spent in the roll call: waiting for the slowest rank to reach
  /// the first full bucket (to finish its backward walk when the gradients are not reported
  /// during it), not moving gradients.
  double arrival_seconds = 0;
  /// Buckets whose MPI_Iallreduce started from gradient_ready, i.e. during the backward walk,
  /// before finish_gradients (all_reduce_gradients starts none this way).
  int64_t buckets_overlapped = 0;
};

/// The MPI world of this process: one per process (MPI can be initialised once).
class Distributed : public ProcessGroup {
 public:
  /// Initialises MPI (MPI_Init_thread, funneled: only the calling thread uses MPI). Throws an
  /// encore::Error when the build has no MPI, when a Distributed already exists, or for bad
  /// options.
  Distributed(int& argc, char**& argv, DistributedOptions options = {});
  /// MPI_Finalize (unless abort() ran).
  ~Distributed() override;
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  /// Ranks on this machine (this one included).
  int local_size() const { return local_size_; }
  /// This machine's cores divided among its ranks (at least 1): a thread count that does not
  /// oversubscribe the machine.
  int threads_per_rank() const;
  bool is_root() const { return rank_ == 0; }
  const DistributedOptions& options() const { return options_; }
  const DistributedStats& stats() const { return stats_; }

  /// Rows [begin, begin + length) of a global batch of `rows` rows that this rank takes.
  struct Slice {
    int64_t begin = 0;
    int64_t length = 0;
  };
  Slice slice(int64_t rows) const;
  /// This rank's slice of every tensor of a global batch (views, no copy). Throws when the
  /// tensors disagree on their first dimension or the batch has fewer rows than ranks.
  Tensors shard(const Tensors& batch) const;

  /// Copies rank 0's parameters and buffers into every rank's model. Throws (on every rank)
  /// when the ranks' models differ in their tensors' count, element counts or dtypes.
  void broadcast(Module& model);
  /// Copies rank 0's values of these tensors (contiguous, same shapes on every rank) in place.
  void broadcast(const Tensors& tensors, const char* what = "broadcast");

  /// grads[i] <- sum over ranks r of weight_r * grads_r[i] (new contiguous tensors), where
  /// weight_r is the `weight` rank r passes: local_rows / global_rows averages mean losses
  /// over the global batch. `extras` (optional) are summed over the ranks in the same
  /// exchange (the Trainer sends its weighted loss and its SIGINT flag). Before exchanging,
  /// the ranks answer a roll call for `step` (see the timeouts above). Every rank must pass
  /// gradients of the same count, shapes and dtypes (f32 or f64); an undefined gradient
  /// counts as zeros.
  void all_reduce_gradients(Tensors& grads, const Tensors& params, double weight,
                            std::vector<double>* extras = nullptr, int64_t step = -1);

  /// The same exchange overlapped with the backward walk, in three calls:
  ///   dist.begin_gradients(params, weight, step);
  ///   Tensors grads = tape.gradient(loss, params, {.on_ready = [&](size_t i, const Tensor& g) {
  ///                                   dist.gradient_ready(i, g); }});
  ///   dist.finish_gradients(grads, &extras);
  /// gradient_ready packs gradient i (times weight) into its bucket, and starts the bucket's
  /// MPI_Iallreduce once all its members are packed and every earlier bucket has started (so
  /// every rank starts the buckets in the same order, whatever order gradients arrive in); the
  /// roll call for `step` runs just before the first bucket starts. finish_gradients packs the
  /// gradients not reported, starts the rest, sums `extras` and waits: grads then holds what
  /// all_reduce_gradients gives, bitwise. The buckets use a communicator of their own, so the
  /// blocking all-reduces of synchronised BatchNorm inside the walk cannot interleave with them
  /// differently on different ranks. Throws for a gradient whose shape or dtype is not its
  /// parameter's, an index out of range or reported twice, or calls out of this order.
  void begin_gradients(const Tensors& params, double weight, int64_t step = -1);
  void gradient_ready(size_t index, const Tensor& grad);
  void finish_gradients(Tensors& grads, std::vector<double>* extras = nullptr);
  /// The weight of this rank's gradients in the next all_reduce_gradients (ProcessGroup):
  /// synchronised BatchNorm's backward reads it. The Trainer sets it every step before the
  /// forward to the weight it then passes to all_reduce_gradients; a program of its own must do
  /// the same. Throws unless finite and > 0. Initially 1 / size() (equal shards, mean losses).
  void set_gradient_weight(double weight);
  double gradient_weight() const override { return gradient_weight_; }

  /// Averages the floating buffers (running statistics) over the ranks; i64 buffers (batch
  /// counters) are left alone, being equal on every rank.
  void average_buffers(Module& model);

  /// Sums / takes the minimum / maximum of each value over the ranks (with the deadline).
  std::vector<double> all_reduce_sum(std::vector<double> values, const char* what) override;
  std::vector<double> all_reduce_min(std::vector<double> values, const char* what);
  std::vector<double> all_reduce_max(std::vector<double> values, const char* what);
  /// Waits for every rank (with the deadline).
  void barrier(const char* what);

  /// Prints "encore distributed (rank r): message" to stderr and stops every rank of the job
  /// with exit status `code` (MPI_Abort).
  [[noreturn]] void abort(const std::string& message, int code = 1);

  struct Impl;  // MPI state (nn/distributed.cpp)

 private:
  void roll_call(int64_t step, const char* what);
  void check_gradient(size_t index, const Tensor& grad, const char* what) const;
  void start_ready_buckets(bool from_walk);
  DistributedOptions options_;
  DistributedStats stats_;
  int rank_ = 0;
  int size_ = 1;
  int local_size_ = 1;
  double gradient_weight_ = 1;
  std::unique_ptr<Impl> impl_;
};

}  // namespace encore::nn
