// The example programs' shared flags, set-up and run wrapper (see common.h): every program
// gets the same --epochs ... --quiet flags with their defaults in --help, the same thread and
// seed set-up, --print-params / --init handling, and errors reported as "name: message".
#include "examples/common/common.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace encore::examples {

CLI::Validator layer_width() { return CLI::Range(int64_t{1}, kMaxLayerWidth); }

namespace {
/// A finite number >= 0 (or > 0 when strict), with a message a user can read: CLI11's own
/// PositiveNumber lets "nan" through and prints the range up to the largest double.
CLI::Validator finite_number(bool strict) {
  return CLI::Validator(
      [strict](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        const bool ok = !s.empty() && end == s.c_str() + s.size() && errno != ERANGE &&
                        std::isfinite(v) && (strict ? v > 0 : v >= 0);
        return ok ? ""
                  : std::string("must be a finite number ") + (strict ? "> 0" : ">= 0") +
                        ", got '" + s + "'";
      },
      strict ? "POSITIVE" : "NONNEGATIVE");
}
}  // namespace

CLI::Validator finite_positive() { return finite_number(true); }
CLI::Validator finite_non_negative() { return finite_number(false); }

CLI::Validator probability() {
  // CLI::Range(0.0, 1.0) lets "nan" through (every comparison with NaN is false).
  return CLI::Validator(
      [](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        const bool ok = !s.empty() && end == s.c_str() + s.size() && v >= 0 && v <= 1;
        return ok ? "" : "must be a number in [0, 1], got '" + s + "'";
      },
      "PROBABILITY");
}

CLI::Validator whole_number(bool strict) {
  // CLI11 converts to int64 after the checks; "99999999999999999999" would pass a check as a
  // double and then saturate (--epochs would train for ever), so the digits are checked here.
  return CLI::Validator(
      [strict](std::string& s) -> std::string {
        const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const long long v = digits ? std::strtoll(s.c_str(), nullptr, 10) : -1;
        const bool ok = digits && errno != ERANGE && (strict ? v > 0 : v >= 0);
        return ok ? ""
                  : std::string("must be a whole number ") + (strict ? "> 0" : ">= 0") +
                        " below 2^63, got '" + s + "'";
      },
      strict ? "POSITIVE" : "NONNEGATIVE");
}

CLI::Validator writable_file_path() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (s.empty()) return "";
        const std::filesystem::path p(s);
        const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec))
          return "the folder '" + dir.string() + "' does not exist (create it first)";
        if (std::filesystem::is_directory(p, ec)) return "'" + s + "' is a folder, not a file";
        return "";
      },
      "FILE");
}

namespace {
/// A whole number in [0, 2^64): CLI11 would wrap "-1" to 2^64 - 1 and saturate larger values.
CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        if (digits) std::strtoull(s.c_str(), nullptr, 10);
        if (!digits || errno == ERANGE)
          return "must be a whole number in [0, 2^64), got '" + s + "'";
        return "";
      },
      "UINT");
}
}  // namespace

void add_common_flags(CLI::App& app, CommonFlags& f, bool data_flag) {
  app.add_option("--epochs", f.epochs, "passes over the training data")
      ->capture_default_str()
      ->check(whole_number(true));
  app.add_option("--batch-size", f.batch_size, "examples per training step")
      ->capture_default_str()
      ->check(whole_number(true));
  app.add_option("--lr", f.lr, "learning rate")->capture_default_str()->check(finite_positive());
  // Without the check, "-1" would wrap around to 2^64 - 1 in the unsigned seed.
  app.add_option("--seed", f.seed, "random seed (weights, shuffling, noise)")
      ->capture_default_str()
      ->check(seed_number());
  app.add_option("--threads", f.threads, "threads for OpenMP and OpenBLAS (0: one per core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  if (data_flag)
    app.add_option("--data", f.data,
                   "data folder (MNIST: the four IDX files of scripts/fetch-data)")
        ->capture_default_str()
        ->check(CLI::ExistingDirectory);
  app.add_option("--out", f.out,
                 "output folder: metrics.json, history.csv, loss.png, checkpoint, pictures")
      ->capture_default_str();
  app.add_flag("--resume", f.resume,
               "continue from the checkpoint in --out, mid-epoch too (default: off)")
      ->capture_default_str();
  app.add_option("--init", f.init,
                 "safetensors file of initial weights (names as --print-params shows)")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  app.add_flag("--print-params", f.print_params,
               "list every parameter's name, shape and size, then stop (default: off)")
      ->capture_default_str();
  app.add_option("--checkpoint-every", f.checkpoint_every,
                 "also write a checkpoint every N steps (0: at the end of each epoch only)")
      ->capture_default_str()
      ->check(whole_number(false));
  app.add_option("--train-limit", f.train_limit, "use only the first N training examples (0: all)")
      ->capture_default_str()
      ->check(whole_number(false));
  app.add_option("--test-limit", f.test_limit, "use only the first N test examples (0: all)")
      ->capture_default_str()
      ->check(whole_number(false));
  app.add_flag("--quiet", f.quiet, "no progress bar, only a line per epoch (default: off)")
      ->capture_default_str();
}

void setup(const CommonFlags& f) {
  int threads = f.threads;
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  set_num_threads(threads);
  default_generator().manual_seed(f.seed);
  std::printf("threads: %d (OpenMP and OpenBLAS), OpenBLAS kernel %s, seed %llu\n", threads,
              blas_kernel().c_str(), static_cast<unsigned long long>(f.seed));
  std::fflush(stdout);
}

bool prepare_model(nn::Module& model, const CommonFlags& f) {
  if (f.print_params) {
    nn::NamedTensors params = model.named_parameters();
    size_t width = 4;
    for (const auto& [name, t] : params) width = std::max(width, name.size());
    std::printf("%-*s  %-18s  %s\n", static_cast<int>(width), "name", "shape", "count");
    int64_t total = 0;
    for (const auto& [name, t] : params) {
      std::printf("%-*s  %-18s  %lld\n", static_cast<int>(width), name.c_str(),
                  to_string(t.shape()).c_str(), static_cast<long long>(t.numel()));
      total += t.numel();
    }
    nn::NamedTensors buffers = model.named_buffers();
    for (const auto& [name, t] : buffers)
      std::printf("%-*s  %-18s  (buffer, not trained)\n", static_cast<int>(width), name.c_str(),
                  to_string(t.shape()).c_str());
    std::printf("%zu parameter tensors, %lld parameters in all\n", params.size(),
                static_cast<long long>(total));
    return true;
  }
  if (!f.init.empty()) {
    try {
      model.load(f.init, /*strict=*/true);
    } catch (const Error& e) {
      throw Error("--init '" + f.init + "': " + e.what());
    }
    std::printf("--init: loaded %zu parameter tensors (%lld parameters) and %zu buffers from %s\n",
                model.named_parameters().size(), static_cast<long long>(model.num_parameters()),
                model.named_buffers().size(), f.init.c_str());
  }
  return false;
}

namespace {

/// The option's name as the user types it, without dashes: "batch-size", or a positional's name.
std::string option_name(const CLI::Option* opt) {
  if (!opt->get_lnames().empty()) return opt->get_lnames().front();
  if (!opt->get_snames().empty()) return opt->get_snames().front();
  return opt->get_name();
}

/// The option's value as text: what was given, or the default it shows in --help.
std::string option_value(const CLI::Option* opt) {
  if (opt->get_items_expected_max() == 0) {  // a flag: given or not (or its bound default)
    if (opt->count() > 0) return "true";
    std::string d = opt->get_default_str();
    return (d == "1" || d == "true") ? "true" : "false";
  }
  if (opt->count() == 0) return opt->get_default_str();
  std::string joined;
  for (const std::string& r : opt->results()) {
    if (!joined.empty()) joined += ",";
    joined += r;
  }
  return joined;
}

}  // namespace

nn::FitOptions fit_options(const CommonFlags& f, const std::string& name, const CLI::App& app) {
  nn::FitOptions o;
  o.epochs = f.epochs;
  o.out_dir = f.out;
  o.resume = f.resume;
  o.checkpoint_every = f.checkpoint_every;
  o.name = name;
  o.progress = !f.quiet;
  const CLI::Option* help = app.get_help_ptr();
  const CLI::Option* help_all = app.get_help_all_ptr();
  for (const CLI::Option* opt : app.get_options()) {
    if (opt == help || opt == help_all) continue;
    o.config[option_name(opt)] = option_value(opt);
  }
  return o;
}

int run(const std::string& name, const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    std::fflush(stdout);
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << name << ": unexpected error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

nn::Metrics comm_metrics(const nn::Distributed* dist) {
  if (!dist) return {};
  const nn::DistributedStats& s = dist->stats();
  return {{"allreduce_seconds", s.reduce_seconds},
          {"allreduce_arrival_seconds", s.arrival_seconds},
          {"allreduce_bytes_per_step",
           s.all_reduces > 0 ? double(s.bytes) / double(s.all_reduces) : 0.0}};
}

}  // namespace encore::examples
