// Internal to nn/train*.cpp (not installed): the text the training loop writes — metrics.json's
// parts, the per-epoch summary line, atomic file writes — kept apart from the loop itself.
#pragma once

#include <map>
#include <string>

#include "nn/train.h"

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

/// Writes text to path through a temporary file and a rename, so a reader never sees half.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace encore::nn::detail
