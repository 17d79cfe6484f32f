// The fuzz targets' inputs replayed in the normal suite: every seed of tests/fuzz/corpus/ and
// every input a fuzzer once crashed on (tests/fuzz/regressions/), through the same harness
// the libFuzzer targets run (tests/fuzz/harness.h). A seed named valid-* must load, bad-* must
// be refused with an encore::Error; anything else may do either, but only those two.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/fuzz/harness.h"
#include "tests/support/support.h"

using namespace encore;
namespace fs = std::filesystem;

namespace {

/// The files of tests/fuzz/<kind>/<target>/, sorted (none when the folder does not exist).
std::vector<fs::path> inputs(const std::string& kind, const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = testing::source_path("tests/fuzz/" + kind + "/" + target);
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

template <class F>
void replay(const std::string& target, F&& load) {
  set_num_threads(1);
  const std::vector<fs::path> seeds = inputs("corpus", target);
  REQUIRE_MESSAGE(seeds.size() >= 5, "the seed corpus of ", target, " is missing or thin");
  int valid = 0, bad = 0;
  for (const fs::path& p : seeds) {
    const std::string name = p.filename().string();
    CAPTURE(name);
    const bool loaded = load(p.string());
    if (starts_with(name, "valid-")) {
      CHECK(loaded);
      ++valid;
    } else if (starts_with(name, "bad-")) {
      CHECK_FALSE(loaded);
      ++bad;
    }
  }
  CHECK(valid >= 2);
  CHECK(bad >= 2);
  for (const fs::path& p : inputs("regressions", target)) {
    const std::string name = p.filename().string();
    CAPTURE(name);
    (void)load(p.string());  // a crash or a non-encore exception fails the suite
  }
}

}  // namespace

TEST_CASE("fuzz inputs: idx") { replay("idx", fuzz::idx); }
TEST_CASE("fuzz inputs: image") { replay("image", fuzz::image); }
TEST_CASE("fuzz inputs: safetensors") { replay("safetensors", fuzz::safetensors); }
TEST_CASE("fuzz inputs: checkpoint") { replay("checkpoint", fuzz::checkpoint); }
