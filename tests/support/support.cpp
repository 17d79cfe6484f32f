#include "tests/support/support.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>

namespace encore::testing {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<fs::path> search_dirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (fs::path start : {fs::current_path(ec), fs::read_symlink("/proc/self/exe", ec)})
    for (fs::path d = start; !d.empty() && d != d.root_path(); d = d.parent_path())
      dirs.push_back(d);
  return dirs;
}

fs::path source_path(const std::string& relative) {
  const fs::path rel = relative;
  if (const char* root = std::getenv("ENCORE_SOURCE_ROOT")) return fs::path(root) / rel;
  std::error_code ec;
  for (const fs::path& d : search_dirs())
    if (fs::exists(d / rel, ec)) return d / rel;
  return rel;
}

const json& golden(const std::string& file_name) {
  static std::mutex mutex;
  static std::map<std::string, json> cache;  // node-based: references stay valid
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(file_name); it != cache.end()) return it->second;
  const fs::path p = source_path((fs::path("tests") / "golden" / file_name).string());
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot open ", p.string(), " (set ENCORE_SOURCE_ROOT)");
  return cache.emplace(file_name, json::parse(in)).first->second;
}

Tensor json_tensor(const json& j, DType dt) {
  Shape s;
  for (int64_t v : j.at("shape")) s.push_back(v);
  return from_vector<double>(j.at("data").get<std::vector<double>>(), s).to(dt);
}

void check_close(const std::string& what, const Tensor& got, const Tensor& want, double atol,
                 double rtol, Measure measure) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(got.shape() == want.shape());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  if (measure == Measure::difference) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const double excess = std::abs(g[i] - w[i]) - (atol + rtol * std::abs(w[i]));
      if (!(excess <= worst)) worst = excess, at = i;  // NaN counts as a failure
    }
    INFO("worst element " << at << ": got " << (g.empty() ? 0 : g[at]) << ", want "
                          << (w.empty() ? 0 : w[at]));
    CHECK(worst <= 0);
  } else {
    double worst = 0, worst_err = 0;
    size_t at = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      double err = std::abs(g[i] - w[i]);
      double excess = err / (atol + rtol * std::abs(w[i]));
      if (!(excess <= worst)) {  // also catches NaN
        worst = std::isnan(excess) ? std::numeric_limits<double>::infinity() : excess;
        worst_err = err;
        at = i;
      }
    }
    INFO("worst element ", at, ": got ", g.empty() ? 0 : g[at], ", want ", w.empty() ? 0 : w[at],
         " (error ", worst_err, ")");
    CHECK(worst <= 1.0);
  }
}

void check_grad(const GradcheckFn& fn, const Tensors& inputs, const GradcheckOptions& o) {
  GradcheckResult r = gradcheck(fn, inputs, o);
  CHECK_MESSAGE(r.ok, r.message);
}

void check_grad(const std::string& what, const GradcheckFn& fn, const Tensors& inputs,
                const GradcheckOptions& o) {
  INFO(what);  // doctest keeps it for the CHECK in the call below
  check_grad(fn, inputs, o);
}

void check_gradgrad(const GradcheckFn& fn, const Tensors& inputs, const GradcheckOptions& o) {
  GradcheckResult r = gradgradcheck(fn, inputs, o);
  CHECK_MESSAGE(r.ok, r.message);
}

void check_gradgrad(const std::string& what, const GradcheckFn& fn, const Tensors& inputs,
                    const GradcheckOptions& o) {
  INFO(what);
  check_gradgrad(fn, inputs, o);
}

}  // namespace encore::testing
