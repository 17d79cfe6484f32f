// make_corpus: writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/), a few
// valid and edge files per format, from encore's own writers and hand-built bytes:
//
//   build/tests/reliability/make_corpus tests/fuzz/corpus
//
// The output is deterministic; the fuzz-corpus test regenerates it and compares it with the
// committed files. Names say what the loader must do: valid-* loads, bad-* is refused with
// an encore::Error, edge-* either (the corpus replay test checks valid-* and bad-*).
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/fuzz/harness.h"

using namespace encore;
namespace fs = std::filesystem;

namespace {

using Bytes = std::string;

fs::path g_out;

void put(const std::string& target, const std::string& name, const Bytes& bytes) {
  fs::create_directories(g_out / target);
  std::ofstream f(g_out / target / name, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + (g_out / target / name).string());
}

void be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>((v >> s) & 0xff));
}

// --- IDX ---------------------------------------------------------------------------------------

Bytes idx(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes b = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) be32(b, d);
  return b + data;
}

Bytes count_bytes(size_t n, size_t width) {
  Bytes b;
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < width; ++k) b.push_back(static_cast<char>(k + 1 == width ? i : 0));
  return b;
}

void idx_corpus() {
  put("idx", "valid-u8-2x3", idx(0x08, {2, 3}, count_bytes(6, 1)));
  put("idx", "valid-i8-4", idx(0x09, {4}, Bytes("\x80\xff\x00\x7f", 4)));
  put("idx", "valid-i16-2x2", idx(0x0B, {2, 2}, count_bytes(4, 2)));
  put("idx", "valid-i32-3", idx(0x0C, {3}, count_bytes(3, 4)));
  // f32 1.0, -2.5; f64 1e300 (f32: inf; i64: refused, so only the float outputs load).
  put("idx", "valid-f32-2", idx(0x0D, {2}, Bytes("\x3f\x80\x00\x00\xc0\x20\x00\x00", 8)));
  put("idx", "valid-f64-huge", idx(0x0E, {1, 1, 1}, Bytes("\x7e\x37\xe4\x3c\x88\x00\x75\x9c", 8)));
  put("idx", "valid-empty", idx(0x08, {0, 28, 28}, ""));
  put("idx", "valid-mnist-like", idx(0x08, {2, 4, 4}, count_bytes(32, 1)));
  put("idx", "bad-truncated", idx(0x08, {2, 3}, count_bytes(5, 1)));
  put("idx", "bad-trailing", idx(0x08, {2, 3}, count_bytes(7, 1)));
  put("idx", "bad-gzip", Bytes("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));
  put("idx", "bad-type", idx(0x0A, {1}, "x"));
  put("idx", "bad-no-dims", idx(0x08, {}, ""));
  put("idx", "bad-huge-dims", idx(0x0E, {0xffffffffu, 0xffffffffu, 0xffffffffu}, ""));
  put("idx", "bad-short", Bytes("\x00\x00", 2));
}

// --- PNG ---------------------------------------------------------------------------------------

uint32_t crc32(const Bytes& b) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : b) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

Bytes chunk(const std::string& type, const Bytes& data) {
  Bytes b;
  be32(b, static_cast<uint32_t>(data.size()));
  const Bytes body = type + data;
  b += body;
  be32(b, crc32(body));
  return b;
}

/// A zlib stream of one stored (uncompressed) deflate block.
Bytes zlib_stored(const Bytes& raw) {
  Bytes b = {0x78, 0x01, 0x01};
  const auto n = static_cast<uint16_t>(raw.size());
  b.push_back(static_cast<char>(n & 0xff));
  b.push_back(static_cast<char>(n >> 8));
  b.push_back(static_cast<char>(~n & 0xff));
  b.push_back(static_cast<char>((~n >> 8) & 0xff));
  b += raw;
  uint32_t a = 1, s = 0;
  for (unsigned char ch : raw) {
    a = (a + ch) % 65521;
    s = (s + a) % 65521;
  }
  be32(b, s << 16 | a);
  return b;
}

Bytes ihdr(uint32_t w, uint32_t h, int depth, int colour) {
  Bytes d;
  be32(d, w);
  be32(d, h);
  d += {static_cast<char>(depth), static_cast<char>(colour), 0, 0, 0};
  return chunk("IHDR", d);
}

const Bytes kSignature("\x89PNG\r\n\x1a\n", 8);

/// A PNG of the given header and rows (each row's bytes without its filter byte, filter 0).
Bytes png(const Bytes& header, const std::vector<Bytes>& rows, const Bytes& extra = "") {
  Bytes raw;
  for (const Bytes& r : rows) raw += '\0' + r;
  return kSignature + header + extra + chunk("IDAT", zlib_stored(raw)) + chunk("IEND", "");
}

void png_corpus() {
  fs::create_directories(g_out / "image");
  // encore's own writer: grey, RGB, RGBA.
  Generator g(3);
  io::write_png((g_out / "image" / "valid-grey-3x2.png").string(), rand({3, 2}, g));
  io::write_png((g_out / "image" / "valid-rgb-4x4.png").string(), rand({3, 4, 4}, g));
  io::write_png((g_out / "image" / "valid-rgba-2x5.png").string(), rand({4, 2, 5}, g));
  // By hand: 16-bit grey, palette, grey + alpha, 1-bit grey.
  const Bytes grey16 =
      png(ihdr(2, 2, 16, 0), {Bytes("\x00\x00\xff\xff", 4), Bytes("\x80\x00\x12\x34", 4)});
  put("image", "valid-grey16-2x2.png", grey16);
  put("image", "valid-palette-2x2.png",
      png(ihdr(2, 2, 8, 3), {Bytes("\x00\x01", 2), Bytes("\x01\x00", 2)},
          chunk("PLTE", Bytes("\xff\x00\x00\x00\x00\xff", 6))));
  put("image", "valid-grey-alpha-1x2.png",
      png(ihdr(1, 2, 8, 4), {Bytes("\x10\xff", 2), Bytes("\x20\x00", 2)}));
  put("image", "valid-grey1bit-8x1.png", png(ihdr(8, 1, 1, 0), {Bytes("\xa5", 1)}));
  // A legal zero-length IDAT before the data.
  const Bytes rows = '\0' + Bytes("\x10\x20", 2);
  put("image", "valid-empty-idat.png",
      kSignature + ihdr(2, 1, 8, 0) + chunk("IDAT", "") + chunk("IDAT", zlib_stored(rows)) +
          chunk("IEND", ""));
  // Refused: truncated, a bad CRC, no IEND, too large, another format, IDAT-less.
  put("image", "bad-truncated.png", grey16.substr(0, grey16.size() / 2));
  Bytes bad_crc = grey16;
  bad_crc[bad_crc.size() - 20] ^= 0x40;
  put("image", "bad-crc.png", bad_crc);
  put("image", "bad-no-iend.png", grey16.substr(0, grey16.size() - 12));
  put("image", "bad-huge.png",
      kSignature + ihdr(100000, 100000, 8, 0) + chunk("IDAT", zlib_stored(rows)) +
          chunk("IEND", ""));
  put("image", "bad-no-idat.png", kSignature + ihdr(2, 1, 8, 0) + chunk("IEND", ""));
  put("image", "bad-tga.tga",
      Bytes("\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x20\x20\x20\x18\x00", 18));
}

// --- safetensors -------------------------------------------------------------------------------

/// A safetensors file of the given header text (padded with spaces to n bytes when n > 0) and
/// data bytes.
Bytes safetensors(const std::string& header, const Bytes& data, size_t n = 0) {
  std::string h = header;
  if (n > h.size()) h.append(n - h.size(), ' ');
  Bytes b;
  const uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  return b + h + data;
}

void safetensors_corpus() {
  fs::create_directories(g_out / "safetensors");
  Generator g(4);
  io::save_safetensors((g_out / "safetensors" / "valid-mixed.safetensors").string(),
                       {{"a", randn({2, 3}, g)},
                        {"b", randn({4}, g, DType::f64)},
                        {"c", arange(5, DType::i64)},
                        {"empty", zeros({0, 3})},
                        {"scalar", full(Shape{}, 2.5)}},
                       {{"note", "seed"}});
  put("safetensors", "valid-empty-header.safetensors", safetensors("{}", "", 8));
  put("safetensors", "valid-null-metadata.safetensors",
      safetensors(R"({"__metadata__":null,"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                  Bytes(4, '\0')));
  const Bytes four(8, '\1');
  put("safetensors", "bad-overlap.safetensors",
      safetensors(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("y":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                  four));
  put("safetensors", "bad-hole.safetensors",
      safetensors(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four));
  put("safetensors", "bad-length.safetensors", Bytes("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10));
  put("safetensors", "bad-json.safetensors", safetensors(R"({"x":{"dtype":)", ""));
  put("safetensors", "bad-dtype.safetensors",
      safetensors(R"({"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", Bytes(4, '\0')));
  put("safetensors", "bad-negative-shape.safetensors",
      safetensors(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", Bytes(4, '\0')));
  put("safetensors", "bad-huge-shape.safetensors",
      safetensors(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                  ""));
  put("safetensors", "bad-duplicate.safetensors",
      safetensors(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  four));
}

// --- checkpoints -------------------------------------------------------------------------------

void checkpoint_corpus() {
  const fs::path dir = g_out / "checkpoint";
  fs::create_directories(dir);
  const std::string valid = (dir / "valid-mid-pass.safetensors").string();
  {
    fuzz::CheckpointRig rig;
    rig.batches.reshuffle();
    for (int64_t s = 0; s < 2; ++s) rig.step(s);
    nn::save_checkpoint(valid, rig.model, rig.opt, rig.gen, {.step = 2, .epoch = 0}, &rig.batches);
  }
  {
    fuzz::CheckpointRig rig;
    nn::save_checkpoint((dir / "valid-fresh.safetensors").string(), rig.model, rig.opt, rig.gen,
                        {.step = 0, .epoch = 0, .extra = {{"note", "untrained"}}});
  }
  // Variants of the valid file, each one field wrong.
  const io::SafeTensors base = io::load_safetensors(valid);
  auto variant = [&](const std::string& name, auto&& change) {
    io::SafeTensors st = base;
    for (auto& [k, t] : st.tensors) t = t.clone();
    change(st);
    io::save_safetensors((dir / name).string(), st.tensors, st.metadata);
  };
  variant("bad-not-checkpoint.safetensors", [](io::SafeTensors& st) { st.metadata.clear(); });
  variant("bad-optimizer.safetensors",
          [](io::SafeTensors& st) { st.metadata["optimizer"] = "SGD"; });
  variant("bad-step.safetensors", [](io::SafeTensors& st) { st.metadata["step"] = "12x"; });
  variant("bad-weight-shape.safetensors", [](io::SafeTensors& st) {
    st.tensors["model.0.weight"] = zeros({3, 3});
  });
  variant("bad-missing-weight.safetensors",
          [](io::SafeTensors& st) { st.tensors.erase("model.2.bias"); });
  variant("bad-tracked-max.safetensors", [](io::SafeTensors& st) {
    st.tensors["model.1.num_batches_tracked"] = full(Shape{}, 0, DType::i64);
    st.tensors["model.1.num_batches_tracked"].data<int64_t>()[0] = INT64_MAX;
  });
  variant("bad-tracked-negative.safetensors", [](io::SafeTensors& st) {
    st.tensors["model.1.num_batches_tracked"] = full(Shape{}, -1, DType::i64);
  });
  variant("bad-order.safetensors",
          [](io::SafeTensors& st) { st.tensors["data.order"] = zeros({6}, DType::i64); });
  variant("bad-generator.safetensors",
          [](io::SafeTensors& st) { st.tensors["generator.state"] = zeros({3}, DType::i64); });
  variant("bad-extra-tensor.safetensors",
          [](io::SafeTensors& st) { st.tensors["junk"] = zeros({1}); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus OUT_DIR (e.g. tests/fuzz/corpus)\n");
    return 2;
  }
  try {
    set_num_threads(1);
    g_out = argv[1];
    idx_corpus();
    png_corpus();
    safetensors_corpus();
    checkpoint_corpus();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
