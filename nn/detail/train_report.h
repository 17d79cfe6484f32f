// Internal to nn/train*.cpp (not installed): what the training loop shows and writes — the
// progress bar, metrics.json's parts, the per-epoch summary line, atomic file writes — kept
// apart from the loop itself.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "../train.h"

namespace encore::nn::detail {

/// The configuration as a JSON object's text; values that read as numbers or booleans are
/// stored as such, the rest as strings.
std::string config_json(const std::map<std::string, std::string>& config);

/// Prints a note for every setting that differs between the configuration a checkpoint was
/// written with (its config_json text) and the current one (except "resume").
void report_config_changes(const std::string& name, const std::string& written,
                           const std::map<std::string, std::string>& current);

/// "dense_ae epoch 3/30: train_loss 0.0912  val_loss 0.0934  (12.3 s)".
std::string epoch_line(const std::string& name, const EpochRecord& record, int64_t epochs);

/// The progress of one epoch: a bar redrawn with \r on a terminal, else a line at each tenth
/// of the epoch (logs, CI). Shows step/steps, the running mean loss, samples/s (steps/s when
/// the number of samples is unknown), elapsed time and ETA.
class Progress {
 public:
  /// steps: of the epoch; first: the steps already done before this process (a resume).
  Progress(bool on, std::string prefix, int64_t steps, int64_t first);
  /// done: steps of the epoch finished; mean: the running mean loss; samples and seconds: this
  /// process's in this epoch.
  void update(int64_t done, double mean, int64_t samples, double seconds);
  /// Clears a bar before another line is printed.
  void clear();

 private:
  bool on_, tty_;
  std::string prefix_;
  int64_t steps_, first_, decile_;
  double drawn_at_ = -1;
  bool shown_ = false;
};

/// Writes text to path through a temporary file and a rename, so a reader never sees half.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace encore::nn::detail
