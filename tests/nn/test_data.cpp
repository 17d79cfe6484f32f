// Data: Batches (sizes, drop_last, shuffling that visits every example once per pass and is
// reproducible from the seed, views when not shuffling, aligned tensors, resuming an order,
// errors), MNIST loading against the raw IDX bytes and the data set's well-known facts, and
// seed 003's padded "moving one" sequences.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include "nn/nn.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::expect_error;
using encore::testing::search_dirs;
namespace fs = std::filesystem;

namespace {

/// The first-dimension indices a batch of arange-valued data holds.
std::vector<int64_t> ids(const Tensor& t) {
  std::vector<int64_t> out;
  for (double v : t.to_vector<double>()) out.push_back(static_cast<int64_t>(v));
  return out;
}

/// Every index visited by one full pass, in visiting order.
std::vector<int64_t> one_pass(nn::Batches& b) {
  std::vector<int64_t> seen;
  for (const Tensors& batch : b) {
    std::vector<int64_t> v = ids(batch[0]);
    seen.insert(seen.end(), v.begin(), v.end());
  }
  return seen;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// Sets an environment variable for the scope and restores the previous value.
struct ScopedEnv {
  std::string name;
  bool had = false;
  std::string old;
  ScopedEnv(const std::string& n, const char* value) : name(n) {
    if (const char* v = std::getenv(n.c_str())) had = true, old = v;
    if (value)
      ::setenv(n.c_str(), value, 1);
    else
      ::unsetenv(n.c_str());
  }
  ~ScopedEnv() {
    if (had)
      ::setenv(name.c_str(), old.c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
};

/// The directory holding the MNIST IDX files: $ENCORE_DATA_DIR (as scripts/fetch-data and
/// nn::mnist_dir()), else $ENCORE_SOURCE_ROOT/data/mnist (meson test sets it), else found by
/// walking up from the working directory and the executable. Empty when the files are not there.
fs::path mnist_path() {
  const fs::path probe = "train-labels-idx1-ubyte";
  std::vector<fs::path> candidates;
  if (const char* d = std::getenv("ENCORE_DATA_DIR")) candidates.emplace_back(d);
  if (const char* root = std::getenv("ENCORE_SOURCE_ROOT"))
    candidates.push_back(fs::path(root) / "data" / "mnist");
  for (const fs::path& d : search_dirs()) candidates.push_back(d / "data" / "mnist");
  std::error_code ec;
  for (const fs::path& c : candidates)
    if (fs::exists(c / probe, ec) && fs::exists(c / "t10k-images-idx3-ubyte", ec)) return c;
  return {};
}

/// The raw bytes of a file.
std::vector<unsigned char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", p.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Batches

TEST_CASE("data: Batches sizes with and without drop_last") {
  Tensor x = arange(0, 10, 1, DType::f32);
  struct Case {
    int64_t n, bs;
    bool drop;
    std::vector<int64_t> sizes;
  };
  for (const Case& c : std::vector<Case>{{10, 3, false, {3, 3, 3, 1}},
                                         {10, 3, true, {3, 3, 3}},
                                         {9, 3, false, {3, 3, 3}},
                                         {9, 3, true, {3, 3, 3}},
                                         {10, 10, true, {10}},
                                         {10, 32, false, {10}},
                                         {10, 32, true, {}},
                                         {1, 1, false, {1}}}) {
    for (bool shuffle : {false, true}) {
      CAPTURE(c.n);
      CAPTURE(c.bs);
      CAPTURE(c.drop);
      CAPTURE(shuffle);
      Generator gen(1);
      nn::Batches b({arange(0, double(c.n), 1)},
                    {.batch_size = c.bs, .shuffle = shuffle, .drop_last = c.drop}, gen);
      CHECK(b.examples() == c.n);
      CHECK(b.size() == int64_t(c.sizes.size()));
      std::vector<int64_t> got;
      for (const Tensors& batch : b) {
        REQUIRE(batch.size() == 1);
        CHECK(batch[0].dim() == 1);
        got.push_back(batch[0].size(0));
      }
      CHECK(got == c.sizes);
      CHECK_THROWS_AS(b.batch(b.size()), Error);
      CHECK_THROWS_AS(b.batch(-1), Error);
    }
  }
  // An empty data set has no batches.
  nn::Batches empty_b({zeros({0, 3})}, {.batch_size = 4});
  CHECK(empty_b.size() == 0);
  CHECK(one_pass(empty_b).empty());
}

TEST_CASE("data: shuffled Batches visit every example exactly once per pass") {
  const int64_t n = 103;
  Generator gen(5);
  nn::Batches b({arange(0, double(n), 1)}, {.batch_size = 10}, gen);
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<int64_t> seen = one_pass(b);
    CHECK(seen.size() == size_t(n));
    CHECK(sorted(seen) == iota(n));
    CHECK(seen != iota(n));  // shuffled (103! orders; the identity is not one we draw)
  }
  // drop_last: 10 full batches of distinct examples; the 3 left out change between passes.
  nn::Batches d({arange(0, double(n), 1)}, {.batch_size = 10, .drop_last = true}, gen);
  std::vector<std::vector<int64_t>> left_out;
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<int64_t> seen = sorted(one_pass(d));
    CHECK(seen.size() == 100);
    CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());  // no repeats
    std::vector<int64_t> missing;
    const std::vector<int64_t> all = iota(n);
    std::set_difference(all.begin(), all.end(), seen.begin(), seen.end(),
                        std::back_inserter(missing));
    CHECK(missing.size() == 3);
    left_out.push_back(missing);
  }
  CHECK((left_out[0] != left_out[1] || left_out[1] != left_out[2]));
}

TEST_CASE("data: shuffled order changes between passes and is reproducible from the seed") {
  const int64_t n = 50;
  Generator g1(42), g2(42), g3(43);
  nn::Batches a({arange(0, double(n), 1)}, {.batch_size = 7}, g1);
  nn::Batches b({arange(0, double(n), 1)}, {.batch_size = 7}, g2);
  nn::Batches c({arange(0, double(n), 1)}, {.batch_size = 7}, g3);
  std::vector<int64_t> a1 = one_pass(a), a2 = one_pass(a), a3 = one_pass(a);
  std::vector<int64_t> b1 = one_pass(b), b2 = one_pass(b), b3 = one_pass(b);
  CHECK(a1 == b1);
  CHECK(a2 == b2);
  CHECK(a3 == b3);
  CHECK(a1 != a2);
  CHECK(a2 != a3);
  CHECK(one_pass(c) != a1);  // another seed, another order
  // Each pass is the Generator's next permutation: the same stream drawn directly.
  Generator ref(42);
  CHECK(ids(permutation(n, ref)) == a1);
  CHECK(ids(permutation(n, ref)) == a2);
  // order() is that permutation.
  CHECK(ids(b.order()) == b3);

  // batch() before any begin() draws the first order itself rather than never shuffling.
  Generator g4(42);
  nn::Batches lazy({arange(0, double(n), 1)}, {.batch_size = 7}, g4);
  CHECK_FALSE(lazy.order().defined());
  std::vector<int64_t> first = ids(lazy.batch(0)[0]);
  CHECK(first == std::vector<int64_t>(a1.begin(), a1.begin() + 7));
  CHECK(ids(lazy.batch(1)[0]) == std::vector<int64_t>(a1.begin() + 7, a1.begin() + 14));
  CHECK(one_pass(lazy) == a2);  // begin() then starts the next pass
}

TEST_CASE("data: unshuffled batches are views in order") {
  Tensor x = view(arange(0, 24, 1, DType::f32), {12, 2});
  Tensor y = arange(100, 112, 1, DType::i64);
  nn::Batches b({x, y}, {.batch_size = 5, .shuffle = false});
  CHECK(b.size() == 3);
  for (int pass = 0; pass < 2; ++pass) {
    int64_t i = 0;
    for (const Tensors& batch : b) {
      const int64_t len = i < 2 ? 5 : 2;
      CHECK(batch[0].shape() == Shape{len, 2});
      CHECK(batch[1].shape() == Shape{len});
      CHECK(batch[0].storage() == x.storage());  // a view: no copy
      CHECK(batch[1].storage() == y.storage());
      std::vector<double> want;
      for (int64_t k = 0; k < 2 * len; ++k) want.push_back(double(10 * i + k));
      CHECK(batch[0].to_vector<double>() == want);
      std::vector<int64_t> labels = batch[1].to_vector<int64_t>();
      CHECK(labels.front() == 100 + 5 * i);
      CHECK(labels.back() == 100 + 5 * i + len - 1);
      ++i;
    }
    CHECK(i == 3);
  }
  CHECK_FALSE(b.order().defined());
  b.reshuffle();  // a no-op without shuffling
  CHECK(b.batch(0)[0].to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("data: shuffled tensors stay aligned (labels match images)") {
  // Example k: an image (3, 2, 2) filled with k + 0.25, a label 7k (i64), a strided f64 row.
  const int64_t n = 37;
  Tensor images = empty({n, 3, 2, 2});
  Tensor labels = empty({n}, DType::i64);
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t j = 0; j < 12; ++j) images.data<float>()[k * 12 + j] = float(k) + 0.25f;
    labels.data<int64_t>()[k] = 7 * k;
  }
  Tensor extra = transpose(view(arange(0, double(2 * n), 1, DType::f64), {2, n}), 0, 1);  // strided
  REQUIRE_FALSE(extra.is_contiguous());
  Generator gen(9);
  nn::Batches b({images, labels, extra}, {.batch_size = 8}, gen);
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<int64_t> seen;
    for (const Tensors& batch : b) {
      REQUIRE(batch.size() == 3);
      const int64_t len = batch[0].size(0);
      CHECK(batch[0].shape() == Shape{len, 3, 2, 2});
      CHECK(batch[1].dtype() == DType::i64);
      CHECK(batch[2].shape() == Shape{len, 2});
      std::vector<float> img = batch[0].to_vector<float>();
      std::vector<int64_t> lab = batch[1].to_vector<int64_t>();
      std::vector<double> ex = batch[2].to_vector<double>();
      for (int64_t r = 0; r < len; ++r) {
        const int64_t k = lab[size_t(r)] / 7;
        CHECK(lab[size_t(r)] == 7 * k);
        for (int64_t j = 0; j < 12; ++j) CHECK(img[size_t(r * 12 + j)] == float(k) + 0.25f);
        CHECK(ex[size_t(2 * r)] == double(k));
        CHECK(ex[size_t(2 * r + 1)] == double(n + k));
        seen.push_back(k);
      }
    }
    CHECK(sorted(seen) == iota(n));
  }
}

TEST_CASE("data: set_order resumes a pass and rejects what is not a permutation") {
  const int64_t n = 20;
  Generator g1(3), g2(99);
  nn::Batches a({arange(0, double(n), 1)}, {.batch_size = 6}, g1);
  nn::Batches b({arange(0, double(n), 1)}, {.batch_size = 6}, g2);
  a.reshuffle();
  b.set_order(a.order());
  for (int64_t i = 0; i < a.size(); ++i) CHECK(ids(a.batch(i)[0]) == ids(b.batch(i)[0]));
  // The order is copied, not aliased.
  CHECK_FALSE(b.order().storage() == a.order().storage());

  std::string e = expect_error([&] { b.set_order(view(arange(n, DType::i64), {4, 5})); });
  CHECK(e.find("Batches::set_order") != std::string::npos);
  CHECK(e.find("[20]") != std::string::npos);
  CHECK(e.find("[4, 5]") != std::string::npos);
  CHECK_THROWS_AS(b.set_order(arange(0, double(n), 1)), Error);  // f32
  CHECK_THROWS_AS(b.set_order(Tensor()), Error);
  Tensor dup = arange(n, DType::i64);
  dup.data<int64_t>()[3] = 4;
  e = expect_error([&] { b.set_order(dup); });
  CHECK(e.find("not a permutation") != std::string::npos);
  Tensor out_of_range = arange(n, DType::i64);
  out_of_range.data<int64_t>()[0] = n;
  CHECK_THROWS_AS(b.set_order(out_of_range), Error);
  out_of_range.data<int64_t>()[0] = -1;
  CHECK_THROWS_AS(b.set_order(out_of_range), Error);
  CHECK(ids(b.order()) == ids(a.order()));  // unchanged by the failures

  nn::Batches plain({arange(0, double(n), 1)}, {.batch_size = 6, .shuffle = false});
  CHECK_THROWS_AS(plain.set_order(a.order()), Error);
}

TEST_CASE("data: Batches errors") {
  std::string e = expect_error([] { nn::Batches b({zeros({10, 3}), zeros({9})}); });
  CHECK(e.find("Batches") == 0);
  CHECK(e.find("[9]") != std::string::npos);
  CHECK(e.find("[10, 3]") != std::string::npos);
  e = expect_error([] { nn::Batches b({zeros({10, 3})}, {.batch_size = 0}); });
  CHECK(e.find("batch_size") != std::string::npos);
  CHECK(e.find("0") != std::string::npos);
  CHECK_THROWS_AS(nn::Batches({zeros({10})}, {.batch_size = -4}), Error);
  CHECK_THROWS_AS(nn::Batches(Tensors{}), Error);
  CHECK_THROWS_AS(nn::Batches({scalar(1.0)}), Error);
  CHECK_THROWS_AS(nn::Batches({zeros({4}), Tensor()}), Error);
}

// ---------------------------------------------------------------------------------------------
// MNIST

TEST_CASE("data: mnist_dir follows ENCORE_DATA_DIR as scripts/fetch-data does") {
  {
    ScopedEnv env("ENCORE_DATA_DIR", "/some/where/mnist");
    CHECK(nn::mnist_dir() == "/some/where/mnist");
  }
  {
    ScopedEnv env("ENCORE_DATA_DIR", nullptr);
    CHECK(nn::mnist_dir() == "data/mnist");
  }
}

TEST_CASE("data: load_mnist of a missing directory points at scripts/fetch-data") {
  std::string e = expect_error([] { nn::load_mnist("/nonexistent/encore-mnist"); });
  CHECK(e.find("load_mnist") == 0);
  CHECK(e.find("/nonexistent/encore-mnist/train-images-idx3-ubyte") != std::string::npos);
  CHECK(e.find("scripts/fetch-data") != std::string::npos);
  e = expect_error([] { nn::load_mnist("/nonexistent/encore-mnist", false); });
  CHECK(e.find("t10k-") != std::string::npos);
}

TEST_CASE("data: load_mnist reads the real files if present") {
  const fs::path dir = mnist_path();
  if (dir.empty()) {
    MESSAGE("MNIST not found (run scripts/fetch-data, or set ENCORE_DATA_DIR); skipping");
    return;
  }
  nn::Mnist train = nn::load_mnist(dir.string());
  REQUIRE(train.images.shape() == Shape{60000, 1, 28, 28});
  REQUIRE(train.labels.shape() == Shape{60000});
  CHECK(train.images.dtype() == DType::f32);
  CHECK(train.labels.dtype() == DType::i64);

  // Pixels are the file's bytes / 255: compare every one against the raw IDX data (16-byte
  // header), which also pins the range to [0, 1] with both ends reached.
  std::vector<unsigned char> raw = file_bytes(dir / "train-images-idx3-ubyte");
  REQUIRE(raw.size() == 16 + size_t(60000) * 784);
  const float* px = train.images.data<float>();
  size_t mismatches = 0;
  float lo = 1, hi = 0;
  for (size_t i = 0; i < size_t(60000) * 784; ++i) {
    mismatches += px[i] != float(raw[16 + i]) / 255.0f;
    lo = std::min(lo, px[i]);
    hi = std::max(hi, px[i]);
  }
  CHECK(mismatches == 0);
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);

  // MNIST's well-known facts: the first labels, and the per-class counts of each split.
  std::vector<int64_t> y = train.labels.to_vector<int64_t>();
  CHECK(std::vector<int64_t>(y.begin(), y.begin() + 8) ==
        std::vector<int64_t>{5, 0, 4, 1, 9, 2, 1, 3});
  std::vector<int64_t> counts(10, 0);
  for (int64_t v : y) {
    REQUIRE((v >= 0 && v <= 9));
    ++counts[size_t(v)];
  }
  CHECK(counts == std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});

  nn::Mnist test = nn::load_mnist(dir.string(), false, true);
  CHECK(test.images.shape() == Shape{10000, 784});
  CHECK(test.labels.shape() == Shape{10000});
  std::fill(counts.begin(), counts.end(), 0);
  for (int64_t v : test.labels.to_vector<int64_t>()) ++counts[size_t(v)];
  CHECK(counts == std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  CHECK(test.labels.to_vector<int64_t>()[0] == 7);

  // limit keeps the first examples, flattened or not.
  nn::Mnist few = nn::load_mnist(dir.string(), true, true, 100);
  CHECK(few.images.shape() == Shape{100, 784});
  CHECK(few.labels.shape() == Shape{100});
  CHECK(few.labels.to_vector<int64_t>() == std::vector<int64_t>(y.begin(), y.begin() + 100));
  std::vector<float> f = few.images.to_vector<float>();
  CHECK(std::equal(f.begin(), f.end(), px));
  CHECK(nn::load_mnist(dir.string(), false, false, 3).images.shape() == Shape{3, 1, 28, 28});
  CHECK(nn::load_mnist(dir.string(), false, false, 20000).images.shape() ==
        Shape{10000, 1, 28, 28});  // a limit past the end keeps all
}

// ---------------------------------------------------------------------------------------------
// Seed 003's sequences

TEST_CASE("data: padded_onehot_sequences are seed 003's padded moving ones") {
  const int64_t n = 3000, max_len = 10, dim = 8;
  Generator gen(3);
  nn::Sequences s = nn::padded_onehot_sequences(n, max_len, dim, gen);
  REQUIRE(s.x.shape() == Shape{n, max_len, dim});
  REQUIRE(s.lengths.shape() == Shape{n});
  CHECK(s.x.dtype() == DType::f32);
  CHECK(s.lengths.dtype() == DType::i64);
  const float* x = s.x.data<float>();
  const int64_t* len = s.lengths.data<int64_t>();
  std::vector<int64_t> hist(size_t(max_len + 1), 0);
  bool rows_ok = true;
  for (int64_t i = 0; i < n; ++i) {
    REQUIRE((len[i] >= 0 && len[i] <= max_len));
    ++hist[size_t(len[i])];
    for (int64_t t = 0; t < max_len; ++t)
      for (int64_t d = 0; d < dim; ++d) {
        // The seed's getNotSoRandomList(t): a 1 at t while t <= 7 (dim 8), then all zeros;
        // zero vectors after the length (post-padding).
        const float want = (t < len[i] && d == t) ? 1.0f : 0.0f;
        rows_ok &= x[(i * max_len + t) * dim + d] == want;
      }
  }
  CHECK(rows_ok);
  // round(uniform(0, 10)): 0 and 10 each with probability 1/20, 1..9 each 1/10. With 3000
  // draws the counts are 150 +- 12 and 300 +- 16 (one standard deviation); allow 5.
  CHECK(hist[0] > 150 - 60);
  CHECK(hist[0] < 150 + 60);
  CHECK(hist[10] > 150 - 60);
  CHECK(hist[10] < 150 + 60);
  for (size_t k = 1; k < 10; ++k) {
    CAPTURE(k);
    CHECK(hist[k] > 300 - 80);
    CHECK(hist[k] < 300 + 80);
  }

  // The same seed gives the same data; only the lengths are random.
  Generator again(3);
  nn::Sequences t = nn::padded_onehot_sequences(n, max_len, dim, again);
  CHECK(t.lengths.to_vector<int64_t>() == s.lengths.to_vector<int64_t>());
  CHECK(t.x.to_vector<float>() == s.x.to_vector<float>());

  // A wider dim: every step within the length is one-hot; a narrower one: only the first dim.
  Generator g2(4), g3(4);
  nn::Sequences wide = nn::padded_onehot_sequences(50, 6, 9, g2);
  nn::Sequences narrow = nn::padded_onehot_sequences(50, 6, 3, g3);
  CHECK(wide.lengths.to_vector<int64_t>() == narrow.lengths.to_vector<int64_t>());
  std::vector<float> w = wide.x.to_vector<float>(), nr = narrow.x.to_vector<float>();
  for (int64_t i = 0; i < 50; ++i) {
    const int64_t l = wide.lengths.to_vector<int64_t>()[size_t(i)];
    CHECK(l <= 6);
    float wsum = 0, nsum = 0;
    for (int64_t k = 0; k < 6 * 9; ++k) wsum += w[size_t(i * 54 + k)];
    for (int64_t k = 0; k < 6 * 3; ++k) nsum += nr[size_t(i * 18 + k)];
    CHECK(wsum == float(l));
    CHECK(nsum == float(std::min<int64_t>(l, 3)));
  }

  CHECK_THROWS_AS(nn::padded_onehot_sequences(0), Error);
  CHECK_THROWS_AS(nn::padded_onehot_sequences(5, 0), Error);
  CHECK_THROWS_AS(nn::padded_onehot_sequences(5, 10, -1), Error);
}

TEST_CASE("data: a one-tensor Batches hands back its tensor with single()") {
  Tensor x = view(arange(0, 10, 1, DType::f32), {5, 2});
  Generator gen(5);
  nn::Batches b({x}, {.batch_size = 2}, gen);
  b.reshuffle();
  for (int64_t i = 0; i < b.size(); ++i)
    CHECK(b.single(i).to_vector<float>() == b.batch(i)[0].to_vector<float>());
  CHECK(b.single(2).shape() == Shape{1, 2});  // the last, smaller batch
  nn::Batches two({x, x}, {.batch_size = 2}, gen);
  CHECK_THROWS_WITH_AS(two.single(0),
                       "Batches::single: this Batches holds 2 tensors; single() is for one (use "
                       "batch(i), one tensor per data tensor)",
                       Error);
}

// ---------------------------------------------------------------------------------------------
// MNIST as bytes

namespace {

std::string mnist_small() {
  return encore::testing::source_path("tests/data/mnist-small").string();
}

/// Bitwise equality of two tensors' dtypes, shapes and elements.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  const size_t bytes = static_cast<size_t>(ca.numel()) * (a.dtype() == DType::i64 ? 8 : 4);
  return std::memcmp(ca.raw_data(), cb.raw_data(), bytes) == 0;
}

/// Writes an IDX file: type code, dims, then the payload bytes as given.
void write_idx(const fs::path& p, unsigned char type, const std::vector<uint32_t>& dims,
               const std::vector<unsigned char>& payload) {
  std::ofstream out(p, std::ios::binary);
  const unsigned char magic[4] = {0, 0, type, static_cast<unsigned char>(dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  for (uint32_t d : dims) {
    const unsigned char be[4] = {static_cast<unsigned char>(d >> 24),
                                 static_cast<unsigned char>(d >> 16),
                                 static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
    out.write(reinterpret_cast<const char*>(be), 4);
  }
  out.write(reinterpret_cast<const char*>(payload.data()),
            static_cast<std::streamsize>(payload.size()));
}

/// Every batch of one pass of a and b (begin() on each) is bitwise the same.
void check_same_pass(nn::Batches& a, nn::Batches& b) {
  REQUIRE(a.size() == b.size());
  auto ia = a.begin();
  auto ib = b.begin();
  for (int64_t i = 0; i < a.size(); ++i, ++ia, ++ib) {
    Tensors x = *ia, y = *ib;
    REQUIRE(x.size() == 2);
    REQUIRE(y.size() == 2);
    CHECK(same_bits(x[0], y[0]));
    CHECK(same_bits(x[1], y[1]));
  }
}

}  // namespace

TEST_CASE("data: load_mnist_bytes converts to load_mnist's values bitwise") {
  for (bool train : {true, false})
    for (bool flatten : {true, false}) {
      nn::Mnist f = nn::load_mnist(mnist_small(), train, flatten);
      nn::MnistBytes b = nn::load_mnist_bytes(mnist_small(), train, flatten);
      REQUIRE(b.size() == f.images.size(0));
      CHECK(b.flattened() == flatten);
      CHECK(same_bits(b.labels(), f.labels));
      CHECK(same_bits(b.all_images(), f.images));
      CHECK(same_bits(b.images(3, 5), raw::narrow(f.images, 0, 3, 5)));
      Tensor idx = from_vector(std::vector<int64_t>{7, 0, 7, 2}, {4});
      CHECK(same_bits(b.images(idx), raw::index_select(f.images, 0, idx)));
      CHECK(b.images(0, 0).size(0) == 0);
    }
  // The values are the bytes / 255: 0 and 1 both occur in MNIST digits.
  Tensor all = nn::load_mnist_bytes(mnist_small()).all_images();
  CHECK(raw::reduce(raw::ReduceOp::max, all).item() == 1.0);
  CHECK(raw::reduce(raw::ReduceOp::min, all).item() == 0.0);
}

TEST_CASE("data: load_mnist_bytes keeps the first `limit` examples as load_mnist does") {
  const int64_t n = nn::load_mnist(mnist_small()).labels.size(0);
  REQUIRE(n > 5);
  nn::MnistBytes few = nn::load_mnist_bytes(mnist_small(), true, true, 5);
  CHECK(few.size() == 5);
  CHECK(same_bits(few.all_images(), nn::load_mnist(mnist_small(), true, true, 5).images));
  for (int64_t limit : {int64_t{0}, int64_t{-1}, n, n + 100})
    CHECK(nn::load_mnist_bytes(mnist_small(), true, true, limit).size() == n);
  // Rows past the limit are not handed out, although their bytes are in memory.
  std::string e = expect_error([&] { few.images(4, 2); });
  CHECK(e.find("MnistBytes::images") == 0);
  CHECK(e.find("[4, 6)") != std::string::npos);
  CHECK(e.find("5 images") != std::string::npos);
}

TEST_CASE("data: Batches over MNIST bytes match Batches over the f32 tensors bitwise") {
  nn::Mnist f = nn::load_mnist(mnist_small(), true, true);
  nn::MnistBytes b = nn::load_mnist_bytes(mnist_small(), true, true);
  for (bool shuffle : {true, false})
    for (bool drop_last : {true, false}) {
      CAPTURE(shuffle);
      CAPTURE(drop_last);
      const nn::BatchesOptions o{.batch_size = 7, .shuffle = shuffle, .drop_last = drop_last};
      Generator ga(42), gb(42);
      nn::Batches fa({f.images, f.labels}, o, ga);
      nn::Batches ba(b, o, gb);
      CHECK(ba.examples() == b.size());
      for (int pass = 0; pass < 2; ++pass) check_same_pass(fa, ba);
      // batch() before any begin() draws the first order the same way too.
      Generator gc(7), gd(7);
      nn::Batches fc({f.images, f.labels}, o, gc);
      nn::Batches bc(b, o, gd);
      CHECK(same_bits(fc.batch(1)[0], bc.batch(1)[0]));
      CHECK(same_bits(fc.batch(1)[1], bc.batch(1)[1]));
    }
}

TEST_CASE("data: Batches over MNIST bytes resume a pass from set_order") {
  nn::MnistBytes b = nn::load_mnist_bytes(mnist_small(), true, true);
  Generator g1(3);
  nn::Batches first(b, {.batch_size = 16}, g1);
  auto it = first.begin();
  ++it;
  ++it;  // "stopped" after two batches
  const Tensor order = first.order().clone();
  Tensors third = *it;

  Generator g2(99);  // another seed: the order comes from set_order alone
  nn::Batches resumed(b, {.batch_size = 16}, g2);
  resumed.set_order(order);
  CHECK(same_bits(resumed.order(), order));
  Tensors again = resumed.batch(2);
  CHECK(same_bits(again[0], third[0]));
  CHECK(same_bits(again[1], third[1]));
  // The labels stay with their images: the f32 images of the selected rows.
  CHECK(same_bits(again[0], b.images(raw::narrow(order, 0, 32, 16))));

  CHECK_THROWS_AS(resumed.set_order(raw::narrow(order, 0, 0, 5)), Error);
  nn::Batches plain(b, {.batch_size = 16, .shuffle = false});
  CHECK(expect_error([&] { plain.set_order(order); }).find("Batches::set_order") == 0);
  CHECK(expect_error([&] { plain.single(0); }).find("Batches::single") == 0);
}

TEST_CASE("data: MNIST bytes errors name the function") {
  nn::MnistBytes b = nn::load_mnist_bytes(mnist_small(), false, true);
  std::string e = expect_error([&] { b.images(-1, 2); });
  CHECK(e.find("MnistBytes::images") == 0);
  e = expect_error([&] { b.images(from_vector(std::vector<int64_t>{0, b.size()}, {2})); });
  CHECK(e.find("MnistBytes::images") == 0);
  CHECK(e.find("index 1 is " + std::to_string(b.size())) != std::string::npos);
  e = expect_error([&] { b.images(zeros({2})); });
  CHECK(e.find("MnistBytes::images") == 0);
  CHECK(e.find("i64") != std::string::npos);
  e = expect_error([&] { nn::MnistBytes m(nullptr, nullptr, zeros({3}), true); });
  CHECK(e.find("MnistBytes") == 0);

  e = expect_error([] { nn::load_mnist_bytes("/nonexistent/encore-mnist"); });
  CHECK(e.find("load_mnist_bytes") == 0);
  CHECK(e.find("scripts/fetch-data") != std::string::npos);

  const fs::path dir = fs::temp_directory_path() / "encore_test_mnist_bytes";
  fs::create_directories(dir);
  // Images of 3 x 3 pixels: not MNIST's 28 x 28.
  write_idx(dir / "t10k-images-idx3-ubyte", 0x08, {2, 3, 3}, std::vector<unsigned char>(18, 1));
  write_idx(dir / "t10k-labels-idx1-ubyte", 0x08, {2}, {1, 2});
  e = expect_error([&] { nn::load_mnist_bytes(dir.string(), false); });
  CHECK(e.find("load_mnist_bytes") == 0);
  CHECK(e.find("[2, 3, 3]") != std::string::npos);
  // A label that is not a digit.
  write_idx(dir / "t10k-images-idx3-ubyte", 0x08, {2, 28, 28},
            std::vector<unsigned char>(2 * 784, 0));
  write_idx(dir / "t10k-labels-idx1-ubyte", 0x08, {2}, {1, 12});
  e = expect_error([&] { nn::load_mnist_bytes(dir.string(), false); });
  CHECK(e.find("load_mnist_bytes") == 0);
  CHECK(e.find("label 1 is 12") != std::string::npos);
  // More labels than images.
  write_idx(dir / "t10k-labels-idx1-ubyte", 0x08, {3}, {1, 2, 3});
  e = expect_error([&] { nn::load_mnist_bytes(dir.string(), false); });
  CHECK(e.find("unexpected shapes") != std::string::npos);
  // Not u8, and truncated: read_idx_bytes says so.
  write_idx(dir / "i32.idx", 0x0C, {2}, std::vector<unsigned char>(8, 0));
  e = expect_error([&] { io::read_idx_bytes((dir / "i32.idx").string()); });
  CHECK(e.find("read_idx_bytes") == 0);
  CHECK(e.find("i32") != std::string::npos);
  write_idx(dir / "short.idx", 0x08, {10}, std::vector<unsigned char>(9, 0));
  e = expect_error([&] { io::read_idx_bytes((dir / "short.idx").string()); });
  CHECK(e.find("read_idx_bytes") == 0);
  CHECK(e.find("truncated") != std::string::npos);
  io::IdxBytes ok = io::read_idx_bytes((dir / "t10k-images-idx3-ubyte").string());
  CHECK(ok.shape == Shape{2, 28, 28});
  fs::remove_all(dir);
}
