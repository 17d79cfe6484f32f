// File formats: IDX, PNG and safetensors round trips, and malformed files of every kind
// throwing encore::Error that names the problem (never crashing or reading out of bounds).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/tensor.h"

using namespace encore;
namespace fs = std::filesystem;
using doctest::Contains;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("encore-test-io-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Names of the files in the directory (to check no temp file is left behind).
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename());
    return out;
  }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

/// Appends the low nbytes of v, most significant first.
void put_be(std::string& s, uint64_t v, int nbytes) {
  for (int i = nbytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// A tiny IDX writer: magic, big-endian dims, then elements (given as raw bit patterns of
/// elem_size bytes each, written big-endian).
std::string make_idx(uint8_t code, const std::vector<uint32_t>& dims,
                     const std::vector<uint64_t>& bits, int elem_size) {
  std::string s = {0, 0, static_cast<char>(code), static_cast<char>(dims.size())};
  for (uint32_t d : dims) put_be(s, d, 4);
  for (uint64_t b : bits) put_be(s, b, elem_size);
  return s;
}

/// A safetensors file from a header text (padded with spaces to a multiple of 8 when pad)
/// and a data section.
std::string make_st(const std::string& header, const std::string& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::string s;
  for (int i = 0; i < 8; ++i)
    s.push_back(static_cast<char>((uint64_t{h.size()} >> (8 * i)) & 0xff));
  return s + h + data;
}

/// n bytes of data.
std::string zeros_bytes(size_t n) { return std::string(n, '\0'); }

bool has_tmp_file(const TempDir& dir) {
  for (const std::string& name : dir.entries())
    if (name.find(".tmp.") != std::string::npos) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// IDX

TEST_CASE("io: read_idx reads every IDX type code") {
  TempDir dir;
  const std::string p = dir.file("x.idx");

  SUBCASE("u8 0x08") {
    write_bytes(p, make_idx(0x08, {2, 3}, {0, 1, 127, 128, 255, 7}, 1));
    Tensor t = io::read_idx(p);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.dtype() == DType::f32);
    CHECK(t.to_vector<float>() == std::vector<float>{0, 1, 127, 128, 255, 7});
    CHECK(io::read_idx(p, DType::i64).to_vector<int64_t>() ==
          std::vector<int64_t>{0, 1, 127, 128, 255, 7});
  }
  SUBCASE("i8 0x09") {
    write_bytes(p, make_idx(0x09, {6}, {0x80, 0xff, 0, 1, 0x7f, 5}, 1));
    CHECK(io::read_idx(p, DType::i64).to_vector<int64_t>() ==
          std::vector<int64_t>{-128, -1, 0, 1, 127, 5});
  }
  SUBCASE("i16 0x0B") {
    write_bytes(p, make_idx(0x0B, {3, 2}, {0x8000, 0xffff, 0, 1, 0x7fff, 300}, 2));
    Tensor t = io::read_idx(p, DType::f64);
    CHECK(t.shape() == Shape{3, 2});
    CHECK(t.to_vector<double>() == std::vector<double>{-32768, -1, 0, 1, 32767, 300});
  }
  SUBCASE("i32 0x0C") {
    write_bytes(p,
                make_idx(0x0C, {1, 1, 6}, {0x80000000u, 0xffffffffu, 0, 1, 0x7fffffff, 70000}, 4));
    Tensor t = io::read_idx(p, DType::i64);
    CHECK(t.shape() == Shape{1, 1, 6});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{INT32_MIN, -1, 0, 1, INT32_MAX, 70000});
  }
  SUBCASE("f32 0x0D") {
    std::vector<float> v = {-1.5f, 0.0f, 0.25f, 3e9f, -7.9f, 1e-3f};
    std::vector<uint64_t> bits;
    for (float f : v) bits.push_back(std::bit_cast<uint32_t>(f));
    write_bytes(p, make_idx(0x0D, {6}, bits, 4));
    CHECK(io::read_idx(p).to_vector<float>() == v);
    // Into i64: truncated toward zero.
    CHECK(io::read_idx(p, DType::i64).to_vector<int64_t>() ==
          std::vector<int64_t>{-1, 0, 0, 3000000000, -7, 0});
  }
  SUBCASE("f64 0x0E") {
    std::vector<double> v = {-1.5, 0.1, 1e300, -1e300, 2.0, 1e-300};
    std::vector<uint64_t> bits;
    for (double d : v) bits.push_back(std::bit_cast<uint64_t>(d));
    write_bytes(p, make_idx(0x0E, {2, 3}, bits, 8));
    CHECK(io::read_idx(p, DType::f64).to_vector<double>() == v);
    std::vector<float> f = io::read_idx(p, DType::f32).to_vector<float>();
    CHECK(f[1] == 0.1f);
    CHECK(f[2] == std::numeric_limits<float>::infinity());  // overflow is inf, not UB
    CHECK(f[3] == -std::numeric_limits<float>::infinity());
    // 1e300 is not an i64.
    CHECK_THROWS_WITH_AS(io::read_idx(p, DType::i64), Contains("cannot be converted to i64"),
                         Error);
  }
  SUBCASE("NaN into i64 throws") {
    write_bytes(p, make_idx(0x0D, {1}, {std::bit_cast<uint32_t>(std::nanf(""))}, 4));
    CHECK(std::isnan(io::read_idx(p).item<float>()));
    CHECK_THROWS_WITH_AS(io::read_idx(p, DType::i64), Contains("element 0"), Error);
  }
  SUBCASE("a zero size gives an empty tensor") {
    write_bytes(p, make_idx(0x08, {0, 28, 28}, {}, 1));
    Tensor t = io::read_idx(p);
    CHECK(t.shape() == Shape{0, 28, 28});
    CHECK(t.numel() == 0);
  }
  SUBCASE("eight dims") {
    write_bytes(p, make_idx(0x08, {1, 2, 1, 2, 1, 2, 1, 2}, std::vector<uint64_t>(16, 3), 1));
    CHECK(io::read_idx(p).shape() == Shape{1, 2, 1, 2, 1, 2, 1, 2});
  }
}

TEST_CASE("io: read_idx rejects malformed files") {
  TempDir dir;
  const std::string p = dir.file("bad.idx");
  const std::string good = make_idx(0x08, {2, 3}, {1, 2, 3, 4, 5, 6}, 1);

  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(io::read_idx(dir.file("nope.idx")), Contains("nope.idx"), Error);
    CHECK_THROWS_WITH_AS(io::read_idx(dir.file("nope.idx")), Contains("cannot open"), Error);
  }
  SUBCASE("a directory") {
    CHECK_THROWS_WITH_AS(io::read_idx(dir.file("")), Contains("not a regular file"), Error);
  }
  SUBCASE("empty file") {
    write_bytes(p, "");
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("too short"), Error);
  }
  SUBCASE("bad magic") {
    std::string s = good;
    s[0] = 1;
    write_bytes(p, s);
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("bad magic"), Error);
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("bad.idx"), Error);
  }
  SUBCASE("unknown type code") {
    std::string s = good;
    s[2] = 0x0A;
    write_bytes(p, s);
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("unknown element type code 0xa"), Error);
  }
  SUBCASE("zero or too many dims") {
    write_bytes(p, std::string{0, 0, 8, 0});
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("declares 0 dims"), Error);
    write_bytes(p, make_idx(0x08, std::vector<uint32_t>(9, 1), {1}, 1));
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("declares 9 dims"), Error);
  }
  SUBCASE("truncated header") {
    write_bytes(p, good.substr(0, 9));
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("truncated"), Error);
  }
  SUBCASE("truncated data") {
    write_bytes(p, good.substr(0, good.size() - 1));
    CHECK_THROWS_WITH_AS(io::read_idx(p),
                         Contains("need a file of 18 bytes, but it is 17 bytes (truncated)"),
                         Error);
  }
  SUBCASE("trailing bytes") {
    write_bytes(p, good + "xy");
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("18 bytes, but it is 20 bytes (trailing"),
                         Error);
  }
  SUBCASE("gzip magic") {
    write_bytes(p, std::string{'\x1f', '\x8b', 8, 0, 0, 0, 0, 0});
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("gzip"), Error);
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("plain (uncompressed) IDX only"), Error);
  }
  SUBCASE("sizes whose product overflows") {
    write_bytes(p, make_idx(0x0E, {0xffffffffu, 0xffffffffu, 0xffffffffu}, {}, 8));
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("overflows"), Error);
  }
  SUBCASE("huge sizes that a file cannot match") {
    write_bytes(p, make_idx(0x08, {0xffffffffu, 16}, {}, 1));
    CHECK_THROWS_WITH_AS(io::read_idx(p), Contains("(truncated)"), Error);
  }
}

// ---------------------------------------------------------------------------------------------
// Images

TEST_CASE("io: PNG round trip, grey and colour") {
  TempDir dir;
  const std::string p = dir.file("img.png");

  SUBCASE("grey (H, W)") {
    std::vector<float> v(6 * 5);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i * 8) / 255.0f;
    Tensor img = from_vector(v, {6, 5});
    io::write_png(p, img);
    Tensor back = io::read_image(p);
    CHECK(back.shape() == Shape{1, 6, 5});
    CHECK(back.dtype() == DType::f32);
    std::vector<float> b = back.to_vector<float>();
    for (size_t i = 0; i < v.size(); ++i) CHECK(b[i] == doctest::Approx(v[i]).epsilon(1e-6));
    // Converted on read: grey to RGB repeats the channel.
    Tensor rgb = io::read_image(p, 3);
    CHECK(rgb.shape() == Shape{3, 6, 5});
    CHECK(rgb.to_vector<float>()[2 * 30 + 7] == doctest::Approx(v[7]));
    CHECK_FALSE(has_tmp_file(dir));
  }
  SUBCASE("RGB (3, H, W) in f64, non-contiguous") {
    std::vector<double> v(4 * 7 * 3);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i % 256) / 255.0;
    Tensor hwc = from_vector(v, {4, 7, 3});
    Tensor chw = raw::permute(hwc, {2, 0, 1});  // (3, 4, 7), strided
    REQUIRE_FALSE(chw.is_contiguous());
    io::write_png(p, chw);
    Tensor back = io::read_image(p);
    CHECK(back.shape() == Shape{3, 4, 7});
    std::vector<float> b = back.to_vector<float>();
    std::vector<double> want = chw.to_vector<double>();
    for (size_t i = 0; i < b.size(); ++i) CHECK(b[i] == doctest::Approx(want[i]).epsilon(1e-6));
    Tensor grey = io::read_image(p, 1);
    CHECK(grey.shape() == Shape{1, 4, 7});
  }
  SUBCASE("RGBA (4, H, W)") {
    Tensor img = full({4, 2, 3}, 0.5);
    io::write_png(p, img);
    Tensor back = io::read_image(p);
    CHECK(back.shape() == Shape{4, 2, 3});
    CHECK(back.to_vector<float>()[0] == doctest::Approx(128.0 / 255.0));
  }
  SUBCASE("values are clamped into [0, 1] and NaN is 0") {
    Tensor img = tensor({-1.0, 2.0, NAN, 0.0, 1.0, INFINITY, -INFINITY, 0.2});
    io::write_png(p, raw::view(img, {2, 4}));
    std::vector<float> b = io::read_image(p).to_vector<float>();
    std::vector<float> want = {0, 1, 0, 0, 1, 1, 0, 0.2f};
    REQUIRE(b.size() == want.size());
    for (size_t i = 0; i < b.size(); ++i) CHECK(b[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
  SUBCASE("overwrites an existing file") {
    io::write_png(p, zeros({2, 2}));
    io::write_png(p, ones({3, 3}));
    CHECK(io::read_image(p).shape() == Shape{1, 3, 3});
    CHECK(dir.entries().size() == 1);
  }
}

TEST_CASE("io: image errors name the problem and the path") {
  TempDir dir;
  const std::string p = dir.file("e.png");
  CHECK_THROWS_WITH_AS(io::write_png(p, zeros({5})), Contains("(H, W) or (C, H, W)"), Error);
  CHECK_THROWS_WITH_AS(io::write_png(p, zeros({2, 3, 3})), Contains("2 channels"), Error);
  CHECK_THROWS_WITH_AS(io::write_png(p, zeros({1, 0, 3})), Contains("is empty"), Error);
  CHECK_THROWS_WITH_AS(io::write_png(p, zeros({2, 2}, DType::i64)), Contains("i64"), Error);
  CHECK_THROWS_WITH_AS(io::write_png(p, Tensor()), Contains("undefined"), Error);
  CHECK_THROWS_WITH_AS(io::write_png(dir.file("no/such/dir/x.png"), zeros({2, 2})),
                       Contains("no/such/dir/x.png"), Error);
  CHECK(dir.entries().empty());

  CHECK_THROWS_WITH_AS(io::read_image(dir.file("missing.png")), Contains("missing.png"), Error);
  write_bytes(p, "this is not an image");
  CHECK_THROWS_WITH_AS(io::read_image(p), Contains("not a PNG file"), Error);
  io::write_png(p, zeros({2, 2}));
  CHECK_THROWS_WITH_AS(io::read_image(p, 2), Contains("channels is 2"), Error);
  std::string png = read_bytes(p);
  write_bytes(p, png.substr(0, png.size() / 2));
  CHECK_THROWS_AS(io::read_image(p), Error);
}

TEST_CASE("io: make_grid and write_image_grid") {
  SUBCASE("(N, H, W): layout, padding and placement") {
    // 5 images of 3x4, image k filled with k / 10; 2 per row, padding 1, pad value 1.
    Tensor images = zeros({5, 3, 4});
    for (int64_t k = 0; k < 5; ++k) raw::select(images, 0, k).fill_(double(k) / 10);
    Tensor grid = io::make_grid(images, 2, 1, 1.0);
    // rows = 3, cols = 2: H' = 3 * (3 + 1) + 1, W' = 2 * (4 + 1) + 1.
    CHECK(grid.shape() == Shape{1, 13, 11});
    CHECK(grid.dtype() == DType::f32);
    std::vector<float> g = grid.to_vector<float>();
    auto at = [&](int64_t y, int64_t x) { return g[static_cast<size_t>(y * 11 + x)]; };
    CHECK(at(0, 0) == 1.0f);                   // padding
    CHECK(at(1, 1) == 0.0f);                   // image 0, top-left
    CHECK(at(3, 4) == 0.0f);                   // image 0, bottom-right
    CHECK(at(1, 5) == 1.0f);                   // padding between columns
    CHECK(at(1, 6) == doctest::Approx(0.1f));  // image 1
    CHECK(at(5, 1) == doctest::Approx(0.2f));  // image 2, second row
    CHECK(at(9, 1) == doctest::Approx(0.4f));  // image 4, third row
    CHECK(at(9, 6) == 1.0f);                   // no image 5: padding value
    CHECK(at(12, 10) == 1.0f);
  }
  SUBCASE("(N, C, H, W) in f64, padding 0, fewer images than nrow") {
    Tensor images = rand({3, 3, 2, 2}, default_generator(), DType::f64);
    Tensor grid = io::make_grid(images, 8, 0, 0.0);
    CHECK(grid.shape() == Shape{3, 2, 6});
    CHECK(grid.dtype() == DType::f64);
    CHECK(grid.to_vector<double>()[0] == images.to_vector<double>()[0]);
  }
  SUBCASE("write_image_grid writes a PNG of the grid's size") {
    TempDir dir;
    const std::string p = dir.file("grid.png");
    io::write_image_grid(p, rand({10, 1, 28, 28}), 4, 2, 0.5);
    // rows = 3, cols = 4: (3 * 30 + 2, 4 * 30 + 2)
    CHECK(io::read_image(p).shape() == Shape{1, 92, 122});
    io::write_image_grid(p, rand({2, 3, 5, 5}), 8);
    CHECK(io::read_image(p).shape() == Shape{3, 9, 16});
  }
  SUBCASE("invalid arguments") {
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({4, 4}), 8), Contains("(N, H, W) or (N, C, H, W)"),
                         Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({1, 1, 1, 1, 1}), 8), Contains("make_grid"), Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({2, 2, 4, 4}), 8), Contains("2 channels"), Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({0, 4, 4}), 8), Contains("empty"), Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({1, 4, 4}), 0), Contains("nrow is 0"), Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({1, 4, 4}), 8, -1), Contains("padding is -1"), Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({1, 4, 4}, DType::i64), 8), Contains("i64"), Error);
    CHECK_THROWS_WITH_AS(io::make_grid(zeros({1, 4, 4}), 1, INT64_MAX / 2), Contains("overflows"),
                         Error);
    TempDir dir;
    CHECK_THROWS_WITH_AS(io::write_image_grid(dir.file("g.png"), zeros({4, 4})), Contains("g.png"),
                         Error);
  }
}

// ---------------------------------------------------------------------------------------------
// safetensors

TEST_CASE("io: safetensors round trip") {
  TempDir dir;
  const std::string p = dir.file("m.safetensors");
  Generator gen(7);
  Tensor base = randn({4, 6}, gen);
  std::map<std::string, Tensor> in = {
      {"a.f32", randn({2, 3}, gen)},
      {"b.f64", randn({3}, gen, DType::f64)},
      {"c.i64", randint(-1000, 1000, {2, 2, 2}, gen)},
      {"d.scalar", scalar(3.5, DType::f64)},
      {"e.empty", zeros({0})},
      {"f.empty2", zeros({2, 0, 3}, DType::i64)},
      {"g.transposed", raw::transpose(base, 0, 1)},
      {"h.sliced", raw::slice(base, 1, 1, 6, 2)},
      {"i.expanded", raw::expand(tensor({1, 2, 3}), {4, 3})},
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "unicode: \u00e9\u6f22"}};
  io::save_safetensors(p, in, meta);
  CHECK_FALSE(has_tmp_file(dir));

  io::SafeTensors out = io::load_safetensors(p);
  CHECK(out.metadata == meta);
  REQUIRE(out.tensors.size() == in.size());
  for (const auto& entry : in) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    CAPTURE(name);
    const Tensor& u = out.tensors.at(name);
    CHECK(u.shape() == t.shape());
    CHECK(u.dtype() == t.dtype());
    CHECK(u.is_contiguous());
    CHECK(u.storage() != t.storage());
    CHECK(u.to_vector<double>() == t.to_vector<double>());
  }

  // The layout: an 8-aligned header, tensors back to back in key order.
  const std::string bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"]["format"] == "pt");
  CHECK(header["a.f32"]["dtype"] == "F32");
  CHECK(header["b.f64"]["dtype"] == "F64");
  CHECK(header["c.i64"]["dtype"] == "I64");
  CHECK(header["d.scalar"]["shape"] == nlohmann::json::array());
  uint64_t cursor = 0;
  for (const auto& [name, t] : in) {
    auto off = header[name]["data_offsets"];
    CHECK(off[0].get<uint64_t>() == cursor);
    cursor = off[1].get<uint64_t>();
  }
  CHECK(8 + n + cursor == bytes.size());

  // An empty map with no metadata is a valid file too.
  io::save_safetensors(p, {});
  CHECK(io::load_safetensors(p).tensors.empty());
  CHECK(read_bytes(p).size() == 16);  // 8 + "{}" padded to 8
}

TEST_CASE("io: safetensors loads a file laid out as the reference writer does") {
  TempDir dir;
  const std::string p = dir.file("ref.safetensors");
  // What safetensors.torch.save_file({"w": tensor([[1., 2.]]), "ids": tensor([7])},
  // metadata={"format": "pt"}) writes: compact JSON, metadata first, space padding.
  std::string data;
  for (float f : {1.0f, 2.0f}) data += std::string(reinterpret_cast<const char*>(&f), 4);
  int64_t id = 7;
  data = std::string(reinterpret_cast<const char*>(&id), 8) + data;
  write_bytes(p, make_st(R"({"__metadata__":{"format":"pt"},"ids":{"dtype":"I64","shape":[1],)"
                         R"("data_offsets":[0,8]},"w":{"dtype":"F32","shape":[1,2],)"
                         R"("data_offsets":[8,16]}})",
                         data));
  io::SafeTensors st = io::load_safetensors(p);
  CHECK(st.metadata.at("format") == "pt");
  CHECK(st.tensors.at("ids").to_vector<int64_t>() == std::vector<int64_t>{7});
  CHECK(st.tensors.at("w").shape() == Shape{1, 2});
  CHECK(st.tensors.at("w").to_vector<float>() == std::vector<float>{1, 2});
  // Unpadded headers, extra fields and null metadata are accepted too.
  write_bytes(p, make_st(R"({"__metadata__":null,"x":{"dtype":"F64","shape":[],)"
                         R"("data_offsets":[0,8],"extra":1}})",
                         zeros_bytes(8), false));
  CHECK(io::load_safetensors(p).tensors.at("x").item<double>() == 0.0);
}

TEST_CASE("io: safetensors rejects malformed files") {
  TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  auto load = [&](const std::string& bytes) {
    write_bytes(p, bytes);
    return io::load_safetensors(p);
  };
  const std::string entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string good = make_st("{" + entry + "}", zeros_bytes(8));
  REQUIRE_NOTHROW(load(good));

  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(io::load_safetensors(dir.file("x")), Contains("cannot open"), Error);
  }
  SUBCASE("truncated at several points") {
    CHECK_THROWS_WITH_AS(load(""), Contains("shorter than the 8-byte header length"), Error);
    CHECK_THROWS_WITH_AS(load(good.substr(0, 5)), Contains("shorter than the 8-byte"), Error);
    CHECK_THROWS_WITH_AS(load(good.substr(0, 8)), Contains("runs past the end of the file"), Error);
    CHECK_THROWS_WITH_AS(load(good.substr(0, 20)), Contains("runs past the end"), Error);
    CHECK_THROWS_WITH_AS(load(good.substr(0, good.size() - 8)),
                         Contains("reach outside the data section of 0 bytes"), Error);
    CHECK_THROWS_WITH_AS(load(good.substr(0, good.size() - 1)),
                         Contains("reach outside the data section of 7 bytes"), Error);
    // The message names the file.
    CHECK_THROWS_WITH_AS(load(good.substr(0, 3)), Contains("bad.safetensors"), Error);
  }
  SUBCASE("header length lying") {
    std::string s = good;
    s[0] = static_cast<char>(0xff);  // much larger than the file
    CHECK_THROWS_WITH_AS(load(s), Contains("runs past the end"), Error);
    s = good;
    s[7] = 0x7f;  // absurd
    CHECK_THROWS_WITH_AS(load(s), Contains("over the 100000000-byte limit"), Error);
    s = good;
    s[0] = static_cast<char>(s[0] - 8);  // cuts the JSON short
    CHECK_THROWS_WITH_AS(load(s), Contains("not valid JSON"), Error);
  }
  SUBCASE("invalid JSON and wrong JSON types") {
    CHECK_THROWS_WITH_AS(load(make_st("{\"w\": {", "")), Contains("not valid JSON"), Error);
    CHECK_THROWS_WITH_AS(load(make_st("\xff\xfe", "")), Contains("not valid JSON"), Error);
    CHECK_THROWS_WITH_AS(load(make_st("[1, 2]", "")), Contains("is a JSON array"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w": 3})", "")), Contains("tensor 'w': entry is"), Error);
    CHECK_THROWS_WITH_AS(
        load(make_st(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", zeros_bytes(8))),
        Contains("missing field 'dtype'"), Error);
    CHECK_THROWS_WITH_AS(
        load(make_st(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", zeros_bytes(8))),
        Contains("missing field 'shape'"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F32","shape":[2]}})", zeros_bytes(8))),
                         Contains("missing field 'data_offsets'"), Error);
    CHECK_THROWS_WITH_AS(
        load(make_st(R"({"w":{"dtype":5,"shape":[2],"data_offsets":[0,8]}})", zeros_bytes(8))),
        Contains("'dtype' is a JSON number"), Error);
    CHECK_THROWS_WITH_AS(
        load(make_st(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", zeros_bytes(8))),
        Contains("'shape' is a JSON number"), Error);
    CHECK_THROWS_WITH_AS(
        load(make_st(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", zeros_bytes(8))),
        Contains("'data_offsets' is [0]"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F32","shape":[2],)"
                                      R"("data_offsets":[-1,8]}})",
                                      zeros_bytes(8))),
                         Contains("two non-negative integers"), Error);
  }
  SUBCASE("duplicate keys") {
    CHECK_THROWS_WITH_AS(load(make_st("{" + entry + "," + entry + "}", zeros_bytes(8))),
                         Contains("names 'w' twice"), Error);
  }
  SUBCASE("bad shapes") {
    auto with_shape = [&](const std::string& shape) {
      return make_st(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,8]}})",
                     zeros_bytes(8));
    };
    CHECK_THROWS_WITH_AS(load(with_shape("[-2]")), Contains("negative size"), Error);
    CHECK_THROWS_WITH_AS(load(with_shape("[2.0]")), Contains("non-integer size"), Error);
    CHECK_THROWS_WITH_AS(load(with_shape("[\"2\"]")), Contains("non-integer size"), Error);
    CHECK_THROWS_WITH_AS(load(with_shape("[4294967296, 4294967296]")), Contains("overflows"),
                         Error);
    CHECK_THROWS_WITH_AS(load(with_shape("[18446744073709551615]")), Contains("beyond int64"),
                         Error);
    CHECK_THROWS_WITH_AS(load(with_shape("[1,1,1,1,1,1,1,1,1]")), Contains("9 dims"), Error);
  }
  SUBCASE("shape and offsets disagree") {
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F32","shape":[3],)"
                                      R"("data_offsets":[0,8]}})",
                                      zeros_bytes(8))),
                         Contains("hold 8 bytes, but shape [3] of F32 needs 12"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F64","shape":[2],)"
                                      R"("data_offsets":[0,8]}})",
                                      zeros_bytes(8))),
                         Contains("needs 16"), Error);
  }
  SUBCASE("offsets out of range or reversed") {
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F32","shape":[2],)"
                                      R"("data_offsets":[8,16]}})",
                                      zeros_bytes(8))),
                         Contains("reach outside the data section of 8 bytes"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F32","shape":[0],)"
                                      R"("data_offsets":[8,0]}})",
                                      zeros_bytes(8))),
                         Contains("end before they begin"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"F32","shape":[2],)"
                                      R"("data_offsets":[18446744073709551608,0]}})",
                                      zeros_bytes(8))),
                         Contains("end before they begin"), Error);
  }
  SUBCASE("overlapping tensors, holes and trailing bytes") {
    CHECK_THROWS_WITH_AS(load(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                      zeros_bytes(12))),
                         Contains("tensors 'a' [0, 8) and 'b' [4, 12) overlap"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                      zeros_bytes(8))),
                         Contains("overlap"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                                      zeros_bytes(20))),
                         Contains("bytes [8, 12) of the data section belong to no tensor"), Error);
    CHECK_THROWS_WITH_AS(load(good + "xyz"), Contains("cover only 8 (trailing bytes)"), Error);
    // An empty tensor may sit at a boundary, but not inside another tensor.
    CHECK_NOTHROW(load(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                               zeros_bytes(8))));
    CHECK_THROWS_WITH_AS(load(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                                      zeros_bytes(8))),
                         Contains("overlap"), Error);
  }
  SUBCASE("unknown and unsupported dtypes") {
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"BF16","shape":[4],)"
                                      R"("data_offsets":[0,8]}})",
                                      zeros_bytes(8))),
                         Contains("dtype 'BF16' is not supported (encore reads F32, F64 and I64)"),
                         Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"w":{"dtype":"Q7","shape":[4],)"
                                      R"("data_offsets":[0,8]}})",
                                      zeros_bytes(8))),
                         Contains("unknown dtype 'Q7'"), Error);
  }
  SUBCASE("metadata must map strings to strings") {
    CHECK_THROWS_WITH_AS(load(make_st(R"({"__metadata__":{"epoch":3}})", "")),
                         Contains("metadata 'epoch' is a JSON number"), Error);
    CHECK_THROWS_WITH_AS(load(make_st(R"({"__metadata__":[1]})", "")),
                         Contains("'__metadata__' is a JSON array"), Error);
  }
}

TEST_CASE("io: save_safetensors errors and atomicity") {
  TempDir dir;
  const std::string p = dir.file("s.safetensors");
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, {{"__metadata__", zeros({1})}}),
                       Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, {{"w", Tensor()}}), Contains("'w' is undefined"),
                       Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, {{"bad\xff", zeros({1})}}), Contains("UTF-8"),
                       Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(p, {}, {{"k", "\xc3"}}), Contains("UTF-8"), Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(dir.file("missing/s.safetensors"), {}),
                       Contains("missing/s.safetensors"), Error);
  CHECK(dir.entries().empty());

  // A failed save leaves the previous file as it was.
  io::save_safetensors(p, {{"w", ones({3})}});
  const std::string before = read_bytes(p);
  CHECK_THROWS_AS(io::save_safetensors(p, {{"w", Tensor()}}), Error);
  CHECK(read_bytes(p) == before);
  // The target is a directory: rename fails, the temp file is removed.
  fs::create_directory(dir.file("d"));
  CHECK_THROWS_WITH_AS(io::save_safetensors(dir.file("d"), {{"w", ones({3})}}), Contains("rename"),
                       Error);
  CHECK_FALSE(has_tmp_file(dir));
}

TEST_CASE("io: safetensors survives corrupted files (deterministic fuzz)") {
  TempDir dir;
  const std::string p = dir.file("f.safetensors");
  io::save_safetensors(p,
                       {{"a", arange(0, 6, 1, DType::f32)},
                        {"b", zeros({2, 2}, DType::i64)},
                        {"c", scalar(1.0, DType::f64)},
                        {"d", zeros({0, 3})}},
                       {{"k", "v"}});
  const std::string good = read_bytes(p);
  const size_t header_end =
      8 + (static_cast<unsigned char>(good[0]) | static_cast<unsigned char>(good[1]) << 8);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&]() {  // xorshift64
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string s = good;
    switch (iter % 4) {
      case 0:  // flip a few bits anywhere
        for (int k = 0; k < 1 + int(next() % 3); ++k)
          s[next() % s.size()] ^= char(1 << (next() % 8));
        break;
      case 1:  // overwrite a byte of the header with a JSON-significant character
        s[8 + next() % (header_end - 8)] = "{}[]\":,0123456789-eE. "[next() % 22];
        break;
      case 2:  // truncate
        s.resize(next() % s.size());
        break;
      case 3:  // lie about the header length
        s[next() % 8] = static_cast<char>(next());
        break;
    }
    write_bytes(p, s);
    CAPTURE(iter);
    try {
      io::SafeTensors st = io::load_safetensors(p);
      for (auto& [name, t] : st.tensors) (void)t.to_vector<double>();
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL("not an encore::Error: " << e.what());
    }
  }
  MESSAGE("fuzz: " << loaded << " loaded, " << rejected << " rejected");
  CHECK(rejected > 200);
}

// ---------------------------------------------------------------------------------------------
// The real MNIST files, when scripts/fetch-data has put them in place.

TEST_CASE("io: read_idx reads the real MNIST files if present") {
  fs::path dir;
  if (const char* d = std::getenv("ENCORE_DATA_DIR"))
    dir = d;
  else if (const char* root = std::getenv("ENCORE_SOURCE_ROOT"))
    dir = fs::path(root) / "data/mnist";
  if (dir.empty() || !fs::exists(dir / "t10k-labels-idx1-ubyte")) {
    MESSAGE("MNIST not found (run scripts/fetch-data); skipping");
    return;
  }
  Tensor train_x = io::read_idx((dir / "train-images-idx3-ubyte").string(), DType::f32);
  CHECK(train_x.shape() == Shape{60000, 28, 28});
  const float* px = train_x.data<float>();
  CHECK(*std::max_element(px, px + train_x.numel()) == 255.0f);
  Tensor train_y = io::read_idx((dir / "train-labels-idx1-ubyte").string(), DType::i64);
  CHECK(train_y.shape() == Shape{60000});
  Tensor test_x = io::read_idx((dir / "t10k-images-idx3-ubyte").string());
  CHECK(test_x.shape() == Shape{10000, 28, 28});
  Tensor test_y = io::read_idx((dir / "t10k-labels-idx1-ubyte").string(), DType::i64);
  CHECK(test_y.shape() == Shape{10000});

  std::vector<int64_t> y = train_y.to_vector<int64_t>();
  CHECK(std::vector<int64_t>(y.begin(), y.begin() + 5) == std::vector<int64_t>{5, 0, 4, 1, 9});
  CHECK(test_y.to_vector<int64_t>()[0] == 7);
  std::vector<int64_t> counts(10, 0);
  bool in_range = true;
  for (int64_t v : y) {
    in_range &= v >= 0 && v < 10;
    if (v >= 0 && v < 10) ++counts[static_cast<size_t>(v)];
  }
  CHECK(in_range);
  CHECK(counts[1] == 6742);  // the most frequent digit in the training set
}
