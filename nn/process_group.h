// The collectives a layer needs to compute over the ranks of a data-parallel job, without
// knowing how they communicate: synchronised BatchNorm (nn/norm.h) sums its per-channel moments
// through this interface, so nn/norm.cpp does not depend on MPI. nn::Distributed
// (nn/distributed.h) implements it over MPI; a test can implement it in one process.
#pragma once

#include <vector>

namespace encore::nn {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  /// This process's index in [0, size()).
  virtual int rank() const = 0;
  /// Number of processes; 1 means there is nothing to synchronise.
  virtual int size() const = 0;
  /// The sum of each value over the ranks, returned on every rank. Every rank must call it, in
  /// the same order, with the same number of values; `what` names the call in a timeout report.
  virtual std::vector<double> all_reduce_sum(std::vector<double> values, const char* what) = 0;
  /// The weight w this rank's gradients get when the ranks' gradients are combined
  /// (sum over ranks of w_r * gradient_r; Distributed::all_reduce_gradients's `weight`): for
  /// losses that are means over each rank's rows, local rows / global rows. A synchronised
  /// backward needs it to put every rank's upstream gradient on the scale of the global loss.
  virtual double gradient_weight() const = 0;
};

}  // namespace encore::nn
