// Checkpoints of a training run: model, optimizer state, step/epoch, the Generator's state and
// (optionally) the current order of a shuffled Batches, in one safetensors file, so a run
// resumes exactly where it stopped: with one thread, bitwise the same as if it never stopped.
//   nn::save_checkpoint("run.safetensors", *model, opt, gen, {.step = s, .epoch = e}, &batches);
//   ...
//   nn::TrainingState st = nn::load_checkpoint("run.safetensors", *model, opt, gen, &batches);
//   // continue the interrupted pass with batches.batch(st.step % batches.size()) onwards
#pragma once

#include <map>
#include <string>

#include "data.h"
#include "module.h"
#include "optim/optimizer.h"

namespace encore::nn {

struct TrainingState {
  int64_t step = 0;
  int64_t epoch = 0;
  /// Anything else worth keeping (config, best loss...), stored as header metadata. The keys
  /// "format", "step", "epoch" and "optimizer" are reserved.
  std::map<std::string, std::string> extra;
};

/// Writes "model.<name>" tensors (parameters and buffers), "optim.<key>" tensors,
/// "generator.state" and, when batches is given and has drawn an order, "data.order", with
/// format, step, epoch, the optimizer's name and `extra` in the metadata. Atomic (temp file,
/// fsync, rename): an interrupted save leaves the previous checkpoint intact.
void save_checkpoint(const std::string& path, const Module& model,
                     const optim::Optimizer& optimizer, const Generator& gen,
                     const TrainingState& state, const Batches* batches = nullptr);

/// Restores everything save_checkpoint wrote into model, optimizer, gen and (when given, and
/// the file holds an order) batches. Throws an encore::Error naming the file and every
/// mismatch when the checkpoint does not fit (not a checkpoint, another optimizer type, other
/// parameter names or shapes); then model, optimizer, gen and batches are left unchanged.
TrainingState load_checkpoint(const std::string& path, Module& model, optim::Optimizer& optimizer,
                              Generator& gen, Batches* batches = nullptr);

}  // namespace encore::nn
