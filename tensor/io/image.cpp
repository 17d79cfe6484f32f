// Images: reading PNGs into f32 (C, H, W) in [0, 1], writing PNGs from (H, W) or (C, H, W)
// tensors of any float dtype, and tiling a batch of images into a grid. PNGs are encoded in
// memory and written atomically (temp file beside the target, rename).
//
// A file is checked before stb decodes it: the PNG signature (stb is compiled with its PNG
// decoder only, so no other format's decoder sees the bytes), every chunk inside the file with
// a correct CRC, IEND present (a truncated file has none), and the size from the header
// against kMaxImagePixels, so a small hostile file cannot ask for gigabytes.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/creation.h"
#include "tensor/io.h"
#include "tensor/io/files.h"
#include "tensor/view.h"

// stb's implementations are compiled here, with internal linkage so they never clash with a
// user's own copy of stb.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wconversion"
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
// stb's own bound on a side; ours (kMaxImagePixels, checked first) is tighter.
#define STBI_MAX_DIMENSIONS (1 << 24)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace encore::io {
namespace {

/// Frees an stb_image buffer on scope exit.
struct StbiGuard {
  void* pixels;
  ~StbiGuard() { stbi_image_free(pixels); }
};

/// Checks images is (N, H, W) or (N, C, H, W) with C in {1, 3, 4} and returns it as
/// (N, C, H, W) (a view).
Tensor as_nchw(const char* op, const Tensor& images) {
  ENCORE_CHECK(images.defined(), op, "undefined tensor");
  ENCORE_CHECK(images.dim() == 3 || images.dim() == 4, op,
               "expected images of shape (N, H, W) or (N, C, H, W), got ", images.shape());
  Tensor x = images.dim() == 3 ? raw::unsqueeze(images, 1) : images;
  const int64_t c = x.size(1);
  ENCORE_CHECK(c == 1 || c == 3 || c == 4, op, "images of shape ", images.shape(), " have ", c,
               " channels; expected 1, 3 or 4");
  ENCORE_CHECK(x.size(0) > 0 && x.size(2) > 0 && x.size(3) > 0, op, "images of shape ",
               images.shape(), " are empty");
  ENCORE_CHECK(is_floating(images.dtype()), op, "images have dtype ", images.dtype(),
               "; expected f32 or f64 values in [0, 1]");
  return x;
}

uint32_t be32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

/// CRC-32 (ISO 3309, polynomial 0xEDB88320 reflected) as PNG chunks carry it.
uint32_t crc32(const unsigned char* p, size_t n) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/// A chunk type for messages: its four letters, anything else as '?'.
std::string chunk_name(const unsigned char* type) {
  std::string s(4, '?');
  for (int i = 0; i < 4; ++i)
    if ((type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z'))
      s[static_cast<size_t>(i)] = static_cast<char>(type[i]);
  return "'" + s + "'";
}

constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

/// Checks the structure of a PNG file (see the file comment) and returns the bytes to decode:
/// empty when the file can be decoded as it is, else a copy without its zero-length IDAT
/// chunks (legal PNG, but stb then copies from a null buffer, undefined behaviour).
std::vector<unsigned char> check_png(const char* op, const std::string& where,
                                     const unsigned char* buf, size_t size) {
  ENCORE_CHECK(size >= 8 && std::memcmp(buf, kPngSignature, 8) == 0, op, where,
               ": not a PNG file (it does not start with the PNG signature); read_image reads "
               "PNG only");
  size_t pos = 8, idat_bytes = 0, empty_idats = 0;
  bool first = true, ended = false;
  while (!ended) {
    ENCORE_CHECK(size - pos >= 12, op, where, ": truncated PNG: the file ends at byte ", size,
                 " before its IEND chunk");
    const uint32_t length = be32(buf + pos);
    const unsigned char* type = buf + pos + 4;
    const std::string name = chunk_name(type);
    ENCORE_CHECK(length <= 0x7FFFFFFFu, op, where, ": corrupt PNG: chunk ", name, " at byte ", pos,
                 " has length ", length, " (at most 2^31 - 1)");
    ENCORE_CHECK(length <= size - pos - 12, op, where, ": truncated PNG: chunk ", name, " at byte ",
                 pos, " needs ", length + 12, " bytes, the file has ", size - pos, " left");
    ENCORE_CHECK(crc32(type, length + 4) == be32(type + 4 + length), op, where,
                 ": corrupt PNG: chunk ", name, " at byte ", pos, " fails its CRC check");
    const bool is_ihdr = std::memcmp(type, "IHDR", 4) == 0;
    ENCORE_CHECK(first == is_ihdr, op, where, ": corrupt PNG: ",
                 first ? "the first chunk is " + name + ", not IHDR" : "a second IHDR chunk");
    if (is_ihdr) {
      ENCORE_CHECK(length == 13, op, where, ": corrupt PNG: IHDR has length ", length, ", not 13");
      const int64_t w = be32(type + 4), h = be32(type + 8);
      ENCORE_CHECK(w > 0 && h > 0, op, where, ": corrupt PNG: image of ", w, " x ", h, " pixels");
      // Each side is at most 2^32 - 1, so w * h cannot wrap once both are within the limit.
      ENCORE_CHECK(w <= kMaxImagePixels && h <= kMaxImagePixels && w * h <= kMaxImagePixels, op,
                   where, ": image of ", w, " x ", h,
                   " pixels is larger than kMaxImagePixels = ", kMaxImagePixels);
    }
    if (std::memcmp(type, "IDAT", 4) == 0) {
      idat_bytes += length;
      empty_idats += length == 0;
    }
    ended = std::memcmp(type, "IEND", 4) == 0;
    first = false;
    pos += size_t{length} + 12;
  }
  ENCORE_CHECK(idat_bytes > 0, op, where, ": corrupt PNG: no image data (no IDAT chunk ",
               "with bytes)");
  std::vector<unsigned char> copy;
  if (empty_idats == 0) return copy;
  copy.assign(buf, buf + 8);
  for (size_t at = 8; at < pos;) {
    const size_t chunk = size_t{be32(buf + at)} + 12;
    if (!(chunk == 12 && std::memcmp(buf + at + 4, "IDAT", 4) == 0))
      copy.insert(copy.end(), buf + at, buf + at + chunk);
    at += chunk;
  }
  return copy;
}

/// a * b + c in int64, throwing naming op when it overflows.
int64_t mul_add(const char* op, int64_t a, int64_t b, int64_t c) {
  int64_t r = 0;
  ENCORE_CHECK(!__builtin_mul_overflow(a, b, &r) && !__builtin_add_overflow(r, c, &r), op,
               "grid size overflows (", a, " * ", b, " + ", c, ")");
  return r;
}

}  // namespace

Tensor read_image(const std::string& path, int channels) {
  constexpr const char* op = "read_image";
  const std::string where = detail::quoted(path);
  ENCORE_CHECK(channels == 0 || channels == 1 || channels == 3 || channels == 4, op, where,
               ": channels is ", channels, "; expected 0 (as in the file), 1, 3 or 4");
  // Read the bytes ourselves so a missing or unreadable file gets a precise message.
  detail::FileBytes file = detail::read_file(op, path);
  ENCORE_CHECK(file.size <= size_t{INT_MAX}, op, where, ": file of ", file.size,
               " bytes is too large to decode");
  const std::vector<unsigned char> cleaned = check_png(op, where, file.data.get(), file.size);
  const auto* buf = cleaned.empty() ? file.data.get() : cleaned.data();
  const int len = static_cast<int>(cleaned.empty() ? file.size : cleaned.size());
  int w = 0, h = 0, file_channels = 0;
  // The size again from stb's own reading of the header, against the same limit.
  ENCORE_CHECK(stbi_info_from_memory(buf, len, &w, &h, &file_channels) != 0, op, where,
               ": cannot decode the image: ", stbi_failure_reason());
  ENCORE_CHECK(w > 0 && h > 0 && int64_t{w} * h <= kMaxImagePixels, op, where, ": image of ", w,
               " x ", h, " pixels is larger than kMaxImagePixels = ", kMaxImagePixels);
  const bool wide = stbi_is_16_bit_from_memory(buf, len) != 0;
  void* pixels =
      wide
          ? static_cast<void*>(stbi_load_16_from_memory(buf, len, &w, &h, &file_channels, channels))
          : static_cast<void*>(stbi_load_from_memory(buf, len, &w, &h, &file_channels, channels));
  ENCORE_CHECK(pixels != nullptr, op, where, ": cannot decode the image: ", stbi_failure_reason());
  StbiGuard guard{pixels};
  const int c = channels == 0 ? file_channels : channels;

  // (H, W, C) interleaved integers -> (C, H, W) floats in [0, 1].
  Tensor out({c, h, w}, DType::f32);
  float* dst = out.data<float>();
  const int64_t plane = int64_t{h} * w;
  auto convert = [&]<class P>(const P* src, float scale) {
    for (int64_t i = 0; i < plane; ++i)
      for (int k = 0; k < c; ++k) dst[k * plane + i] = static_cast<float>(src[i * c + k]) * scale;
  };
  if (wide)
    convert(static_cast<const uint16_t*>(pixels), 1.0f / 65535.0f);
  else
    convert(static_cast<const uint8_t*>(pixels), 1.0f / 255.0f);
  return out;
}

void write_png(const std::string& path, const Tensor& image) {
  constexpr const char* op = "write_png";
  const std::string where = detail::quoted(path);
  ENCORE_CHECK(image.defined(), op, where, ": undefined tensor");
  ENCORE_CHECK(image.dim() == 2 || image.dim() == 3, op, where,
               ": expected an image of shape (H, W) or (C, H, W), got ", image.shape());
  const Tensor chw = image.dim() == 2 ? raw::unsqueeze(image, 0) : image;
  const int64_t c = chw.size(0), h = chw.size(1), w = chw.size(2);
  ENCORE_CHECK(c == 1 || c == 3 || c == 4, op, where, ": image of shape ", image.shape(), " has ",
               c, " channels; expected 1, 3 or 4");
  ENCORE_CHECK(h > 0 && w > 0, op, where, ": image of shape ", image.shape(), " is empty");
  // stb takes int sizes and an int row stride; PNG itself allows 2^31 - 1 per side.
  ENCORE_CHECK(h <= INT_MAX && w * c <= INT_MAX && h * w * c <= INT_MAX, op, where,
               ": image of shape ", image.shape(), " is too large for a PNG");

  // (C, H, W) values -> (H, W, C) bytes; NaN -> 0, clamped into [0, 1], rounded.
  std::vector<unsigned char> pixels(static_cast<size_t>(h * w * c));
  dispatch_float(op, image.dtype(), [&]<class T>() {
    const Tensor src = chw.contiguous();
    const T* p = src.data<T>();
    const int64_t plane = h * w;
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < plane; ++i) {
        T v = p[k * plane + i];
        v = std::isnan(v) ? T(0) : std::clamp(v, T(0), T(1));
        pixels[static_cast<size_t>(i * c + k)] = static_cast<unsigned char>(std::lround(v * 255));
      }
  });

  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
  };
  const int ok =
      stbi_write_png_to_func(append, &png, static_cast<int>(w), static_cast<int>(h),
                             static_cast<int>(c), pixels.data(), static_cast<int>(w * c));
  ENCORE_CHECK(ok != 0 && !png.empty(), op, where, ": PNG encoding of an image of shape ",
               image.shape(), " failed");
  detail::write_file_atomic(op, path, {png});
}

Tensor make_grid(const Tensor& images, int64_t nrow, int64_t padding, double pad_value) {
  constexpr const char* op = "make_grid";
  const Tensor x = as_nchw(op, images);
  ENCORE_CHECK(nrow >= 1, op, "nrow is ", nrow, "; expected at least 1");
  ENCORE_CHECK(padding >= 0, op, "padding is ", padding, "; expected at least 0");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  // As torchvision: nrow images per row, padding around and between them.
  const int64_t cols = std::min(nrow, n), rows = (n + cols - 1) / cols;
  const int64_t cell_h = mul_add(op, 1, h, padding), cell_w = mul_add(op, 1, w, padding);
  const int64_t grid_h = mul_add(op, rows, cell_h, padding);
  const int64_t grid_w = mul_add(op, cols, cell_w, padding);
  mul_add(op, mul_add(op, grid_h, grid_w, 0), c * 8, 0);

  Tensor grid = full({c, grid_h, grid_w}, pad_value, images.dtype());
  for (int64_t k = 0; k < n; ++k) {
    const int64_t top = (k / cols) * cell_h + padding, left = (k % cols) * cell_w + padding;
    Tensor cell = raw::narrow(raw::narrow(grid, 1, top, h), 2, left, w);
    cell.copy_(raw::select(x, 0, k));
  }
  return grid;
}

void write_image_grid(const std::string& path, const Tensor& images, int64_t nrow, int64_t padding,
                      double pad_value) {
  Tensor grid;
  try {
    grid = make_grid(images, nrow, padding, pad_value);
  } catch (const Error& e) {
    ENCORE_FAIL("write_image_grid", detail::quoted(path), ": ", e.what());
  }
  write_png(path, grid);
}

}  // namespace encore::io
