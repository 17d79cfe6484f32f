// read_image against hostile and broken files: other formats, truncation at every byte, bad
// CRCs, lying sizes, a zero-length IDAT. Each must throw encore::Error naming the file and the
// problem (or, for a legal zero-length IDAT, decode), never reach stb with bytes it mishandles.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/tensor.h"

using namespace encore;
namespace fs = std::filesystem;
using doctest::Contains;

namespace {

/// A file path under the temp dir, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_(fs::temp_directory_path() /
              ("encore-test-image-" + std::to_string(::getpid()) + "-" + name)) {}
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string str() const { return path_.string(); }
  void write(const std::string& bytes) const {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
  }
  std::string read() const {
    std::ifstream f(path_, std::ios::binary);
    std::ostringstream os;
    os << f.rdbuf();
    return os.str();
  }

 private:
  fs::path path_;
};

uint32_t get_be32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}
void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void set_be32(std::string& s, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * (3 - i))) & 0xff);
}

/// The CRC-32 of PNG chunks, bit by bit (the library uses a table: two ways to one value).
uint32_t crc(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

/// One PNG chunk: length, type, data, CRC of type + data.
std::string chunk(const std::string& type, const std::string& data) {
  std::string out;
  put_be32(out, static_cast<uint32_t>(data.size()));
  out += type + data;
  put_be32(out, crc(type + data));
  return out;
}

struct Chunk {
  size_t at;  ///< offset of the length field
  std::string type;
  uint32_t length;
};
std::vector<Chunk> chunks_of(const std::string& png) {
  std::vector<Chunk> out;
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t n = get_be32(png, at);
    out.push_back({at, png.substr(at + 4, 4), n});
    at += n + 12;
  }
  return out;
}

/// A valid 5 x 4 RGB PNG written by write_png, and its pixels as read_image returns them.
std::string good_png(const TempFile& f, std::vector<float>* pixels = nullptr) {
  Tensor img = rand({3, 4, 5}, default_generator());
  io::write_png(f.str(), img);
  if (pixels) *pixels = io::read_image(f.str()).to_vector<float>();
  return f.read();
}

}  // namespace

TEST_CASE("read_image: only PNG; other formats are refused by their signature") {
  TempFile f("other.img");
  const char* not_png = "read_image reads PNG only";
  // An 18-byte TGA header for a 4096 x 4096 RGB image and no pixels: stb's TGA decoder used to
  // return a [3, 4096, 4096] tensor for it.
  std::string tga = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x10, 24, 0};
  f.write(tga);
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains(not_png), Error);
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains(f.str().c_str()), Error);
  // Other signatures stb knows: JPEG, BMP, GIF, PSD, PNM, HDR; and empty and tiny files.
  for (const std::string& head :
       {std::string("\xFF\xD8\xFF\xE0", 4), std::string("BM6\0\0\0\0\0\0\0", 10),
        std::string("GIF89a"), std::string("8BPS"), std::string("P6\n4 4\n255\n"),
        std::string("#?RADIANCE\n"), std::string(), std::string("\x89PNG", 4)}) {
    CAPTURE(head);
    f.write(head + std::string(64, '\x10'));
    CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains(not_png), Error);
  }
  f.write("");
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains(not_png), Error);
}

TEST_CASE("read_image: a PNG cut at any byte is refused as truncated") {
  TempFile f("cut.png");
  std::vector<float> pixels;
  const std::string png = good_png(f, &pixels);
  REQUIRE(pixels.size() == 3 * 4 * 5);
  for (size_t n = 0; n < png.size(); ++n) {
    CAPTURE(n);
    f.write(png.substr(0, n));
    CHECK_THROWS_AS(io::read_image(f.str()), Error);
  }
  // Past the signature the message says truncated.
  f.write(png.substr(0, png.size() - 1));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("truncated PNG"), Error);
  f.write(png.substr(0, png.size() - 12));  // IEND cut off whole
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("before its IEND chunk"), Error);
  // Bytes after IEND are ignored, as decoders do.
  f.write(png + "trailing");
  CHECK(io::read_image(f.str()).to_vector<float>() == pixels);
}

TEST_CASE("read_image: corrupt chunks are refused by their CRC and structure") {
  TempFile f("bad.png");
  const std::string png = good_png(f);
  const std::vector<Chunk> chunks = chunks_of(png);
  REQUIRE(chunks.front().type == "IHDR");
  REQUIRE(chunks.back().type == "IEND");
  for (const Chunk& c : chunks) {
    CAPTURE(c.type);
    std::string bad = png;
    bad[c.at + 4 + c.length / 2 + 2] ^= 0x20;  // a byte of the type or data
    f.write(bad);
    CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("fails its CRC check"), Error);
  }
  // A chunk length past the end of the file, or past PNG's 2^31 - 1.
  std::string lying = png;
  set_be32(lying, chunks[1].at, 0x7FFFFFF0u);
  f.write(lying);
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("truncated PNG"), Error);
  set_be32(lying, chunks[1].at, 0x80000000u);
  f.write(lying);
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("at most 2^31 - 1"), Error);
  // IHDR not first.
  const std::string sig = png.substr(0, 8), ihdr = png.substr(8, 25);
  f.write(sig + chunk("tEXt", std::string("k\0v", 3)) + png.substr(8));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("not IHDR"), Error);
  // No IDAT at all.
  f.write(sig + ihdr + chunk("IEND", ""));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("no image data"), Error);
}

TEST_CASE("read_image: a zero-length IDAT is legal: decodes; only empty IDATs are refused") {
  TempFile f("empty-idat.png");
  std::vector<float> pixels;
  const std::string png = good_png(f, &pixels);
  const std::vector<Chunk> chunks = chunks_of(png);
  size_t first_idat = 0;
  while (chunks[first_idat].type != "IDAT") ++first_idat;
  const size_t at = chunks[first_idat].at;
  // stb copied from a null buffer for an empty IDAT before any data (undefined behaviour).
  f.write(png.substr(0, at) + chunk("IDAT", "") + chunk("IDAT", "") + png.substr(at));
  CHECK(io::read_image(f.str()).to_vector<float>() == pixels);
  const size_t end = chunks[first_idat].at + chunks[first_idat].length + 12;
  f.write(png.substr(0, at) + png.substr(at, end - at) + chunk("IDAT", "") + png.substr(end));
  CHECK(io::read_image(f.str()).to_vector<float>() == pixels);
  // Only empty IDATs: no image data.
  std::string only_empty = png.substr(0, at) + chunk("IDAT", "");
  for (size_t i = first_idat; i < chunks.size(); ++i)
    if (chunks[i].type != "IDAT") only_empty += png.substr(chunks[i].at, chunks[i].length + 12);
  f.write(only_empty);
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("no image data"), Error);
}

TEST_CASE("read_image: a header asking for more than kMaxImagePixels is refused before decoding") {
  TempFile f("huge.png");
  const std::string png = good_png(f);
  auto with_size = [&](uint32_t w, uint32_t h) {
    std::string data = png.substr(16, 13);  // IHDR's data: width, height, depth, ...
    set_be32(data, 0, w);
    set_be32(data, 4, h);
    return png.substr(0, 8) + chunk("IHDR", data) + png.substr(33);
  };
  // 8224 x 8224 RGBA would be 1.1 GB of f32 from a file of a few hundred bytes.
  f.write(with_size(8224, 8224));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()),
                       Contains("image of 8224 x 8224 pixels is larger than kMaxImagePixels"),
                       Error);
  f.write(with_size(0xFFFFFFFFu, 0xFFFFFFFFu));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("larger than kMaxImagePixels"), Error);
  f.write(with_size(uint32_t{1} << 27, 1));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("larger than kMaxImagePixels"), Error);
  f.write(with_size(0, 4));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("image of 0 x 4 pixels"), Error);
  // Within the limit but not matching the data: stb's decoder reports it, no crash.
  f.write(with_size(50, 40));
  CHECK_THROWS_WITH_AS(io::read_image(f.str()), Contains("cannot decode the image"), Error);
}
