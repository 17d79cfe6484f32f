// What the training loop reports: metrics.json (results, timing, configuration, the machine,
// encore's version), the per-epoch summary line, the configuration as typed JSON, and atomic
// writes of the run's text files, and the progress bar. nlohmann-json is used here only, never in a
// header.
#include "nn/detail/train_report.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "nn/train.h"
#include "tensor/threads.h"

#ifndef ENCORE_VERSION
#define ENCORE_VERSION "unknown"
#endif

namespace encore::nn {

namespace {

/// True for text that is a plain decimal number: [-+]digits[.digits][(e|E)[-+]digits].
bool decimal_number(const std::string& s, bool& integral) {
  size_t i = 0, n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i > start;
  };
  if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
  bool whole = digits();
  integral = true;
  bool frac = false;
  if (i < n && s[i] == '.') {
    ++i;
    integral = false;
    frac = digits();
  }
  if (!whole && !frac) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    integral = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

/// One configuration value as JSON: a boolean, an integer, a finite number, or the text.
nlohmann::json typed(const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  bool integral = false;
  if (!decimal_number(v, integral)) return v;
  try {
    if (integral && v[0] == '-') return std::stoll(v);
    if (integral) return std::stoull(v);
    double d = std::stod(v);
    if (std::isfinite(d)) return d;
  } catch (const std::exception&) {  // out of range: keep the text
  }
  return v;
}

nlohmann::json typed_config(const std::map<std::string, std::string>& config) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : config) j[k] = typed(v);
  return j;
}

/// The "model name" line of /proc/cpuinfo ("unknown" when there is none).
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "unknown" : line.substr(start);
  }
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown";
#endif
}

nlohmann::json machine() {
  return {{"cpu", cpu_model()},
          {"cores", std::thread::hardware_concurrency()},
          {"threads", get_num_threads()},
          {"openblas_kernel", blas_kernel()},
          {"openblas_config", blas_config()},
          {"compiler", compiler()}};
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm = {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// A number for JSON: non-finite values become null (JSON has no NaN).
nlohmann::json number(double v) {
  if (std::isfinite(v)) return v;
  return nullptr;
}

nlohmann::json metrics_json(const Metrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = number(v);
  return j;
}

/// "m:ss", or "h:mm:ss" from an hour on.
std::string clock_text(double s) {
  int64_t t = static_cast<int64_t>(std::max(0.0, s) + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof(buf), "%lld:%02lld", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  return buf;
}

}  // namespace

namespace detail {

Progress::Progress(bool on, std::string prefix, int64_t steps, int64_t first)
    : on_(on),
      tty_(isatty(fileno(stdout)) != 0),
      prefix_(std::move(prefix)),
      steps_(steps),
      first_(first),
      decile_(first * 10 / std::max<int64_t>(steps, 1)) {}

void Progress::update(int64_t done, double mean, int64_t samples, double seconds) {
  if (!on_) return;
  bool last = done == steps_;
  if (tty_) {
    if (!last && seconds - drawn_at_ < 0.1) return;
    drawn_at_ = seconds;
  } else {
    int64_t decile = done * 10 / steps_;
    if (decile == decile_ || last) return;  // the epoch line follows the last step
    decile_ = decile;
  }
  int64_t run = done - first_;
  double rate = seconds > 0 ? double(run) / seconds : 0;
  double eta = rate > 0 ? double(steps_ - done) / rate : 0;
  char speed[48];
  if (samples > 0)
    std::snprintf(speed, sizeof(speed), "%.0f samples/s", seconds > 0 ? samples / seconds : 0);
  else
    std::snprintf(speed, sizeof(speed), "%.1f steps/s", rate);
  std::string bar;
  if (tty_) {
    const int width = 24;
    int fill = static_cast<int>(width * done / steps_);
    bar.push_back('[');
    bar.append(static_cast<size_t>(fill), '=');
    if (fill < width) bar.push_back('>');
    bar.append(static_cast<size_t>(std::max(0, width - fill - 1)), ' ');
    bar.append("] ");
  }
  std::printf("%s%s %s%lld/%lld  loss %.6g  %s  %s elapsed  ETA %s%s", tty_ ? "\r" : "",
              prefix_.c_str(), bar.c_str(), static_cast<long long>(done),
              static_cast<long long>(steps_), mean, speed, clock_text(seconds).c_str(),
              clock_text(eta).c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(stdout);
  shown_ = true;
}

void Progress::clear() {
  if (on_ && tty_ && shown_) std::printf("\r\033[K");
  shown_ = false;
}

std::string config_json(const std::map<std::string, std::string>& config) {
  return typed_config(config).dump();
}

void report_config_changes(const std::string& name, const std::string& written,
                           const std::map<std::string, std::string>& current) {
  nlohmann::json before = nlohmann::json::parse(written, nullptr, /*allow_exceptions=*/false);
  if (!before.is_object()) return;
  nlohmann::json now = typed_config(current);
  std::set<std::string> keys;
  for (const auto& [k, v] : before.items()) keys.insert(k);
  for (const auto& [k, v] : now.items()) keys.insert(k);
  for (const std::string& k : keys) {
    if (k == "resume") continue;
    std::string a = before.contains(k) ? before[k].dump() : "(unset)";
    std::string b = now.contains(k) ? now[k].dump() : "(unset)";
    if (a != b)
      std::printf("%s: note: %s was %s when the checkpoint was written, now %s\n", name.c_str(),
                  k.c_str(), a.c_str(), b.c_str());
  }
}

std::string epoch_line(const std::string& name, const EpochRecord& r, int64_t epochs) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%s epoch %lld/%lld: train_loss %.6g", name.c_str(),
                static_cast<long long>(r.epoch), static_cast<long long>(epochs), r.train_loss);
  std::string line = buf;
  for (const auto& [k, v] : r.metrics) {
    std::snprintf(buf, sizeof(buf), "  %s %.6g", k.c_str(), v);
    line += buf;
  }
  std::snprintf(buf, sizeof(buf), r.seconds < 10 ? "  (%.2f s)" : "  (%.1f s)", r.seconds);
  return line + buf;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    ENCORE_CHECK(out.good(), "Trainer", "cannot write ", tmp);
    out << text;
    out.flush();
    ENCORE_CHECK(out.good(), "Trainer", "writing ", tmp, " failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  ENCORE_CHECK(!ec, "Trainer", "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

}  // namespace detail

void Trainer::write_metrics(const Metrics& results,
                            const std::map<std::string, std::string>& notes) const {
  if (options_.out_dir.empty() || !is_root()) return;
  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : result_.history)
    history.push_back({{"epoch", r.epoch},
                       {"train_loss", number(r.train_loss)},
                       {"metrics", metrics_json(r.metrics)},
                       {"seconds", r.seconds},
                       {"lr", r.lr}});
  nlohmann::json j;
  j["name"] = options_.name;
  j["encore_version"] = ENCORE_VERSION;
  j["written_at"] = utc_now();
  j["final_metrics"] = metrics_json(result_.final_metrics);
  j["train_loss"] =
      result_.history.empty() ? nlohmann::json(nullptr) : number(result_.history.back().train_loss);
  j["results"] = metrics_json(results);
  j["notes"] = notes;
  j["epochs_completed"] = result_.history.size();
  j["epochs"] = options_.epochs;
  j["steps"] = result_.steps;
  j["steps_per_epoch"] = steps_per_epoch_;
  j["ranks"] = options_.distributed ? options_.distributed->size() : 1;
  j["wall_seconds"] = result_.wall_seconds;
  j["train_seconds"] = train_seconds_;
  j["steps_per_second"] =
      train_seconds_ > 0 ? nlohmann::json(double(process_steps_) / train_seconds_) : nullptr;
  j["samples_per_second"] = train_seconds_ > 0 && samples_ > 0
                                ? nlohmann::json(double(samples_) / train_seconds_)
                                : nullptr;
  j["interrupted"] = result_.interrupted;
  j["resumed"] = result_.resumed;
  j["config"] = typed_config(options_.config);
  j["fit"] = {{"epochs", options_.epochs},
              {"checkpoint_every", options_.checkpoint_every},
              {"out_dir", options_.out_dir},
              {"val_metric", options_.val_metric}};
  j["machine"] = machine();
  j["history"] = history;
  detail::write_file_atomic(out_path("metrics.json"), j.dump(2) + "\n");
}

}  // namespace encore::nn
