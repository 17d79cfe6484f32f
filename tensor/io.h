// File formats: IDX (MNIST), PNG (stb_image / stb_image_write), safetensors. Every reader
// validates what it reads: a truncated, oversized or lying file throws encore::Error naming
// the file and what is wrong, never reads out of bounds.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core.h"

namespace encore::io {

/// Reads an IDX file (magic 0x0000TTNN: type u8/i8/i16/i32/f32/f64, NN dims, big-endian
/// sizes and data) into a tensor of dtype out (values converted, not scaled).
Tensor read_idx(const std::string& path, DType out = DType::f32);

/// The elements of a u8 IDX file, kept as bytes: tensor/ has no u8 dtype, and MNIST's training
/// images are 47 MB as bytes against 188 MB as f32.
struct IdxBytes {
  Shape shape;
  std::shared_ptr<const unsigned char[]> buffer;  ///< owns the bytes (the whole file)
  const unsigned char* data = nullptr;            ///< the elements, row-major, in buffer
};
/// Reads a u8 IDX file without converting it (checked as read_idx does); throws naming
/// read_idx_bytes and the path for a file of another element type.
IdxBytes read_idx_bytes(const std::string& path);

/// The largest image read_image decodes, in pixels (width x height): 2^26, e.g. 8192 x 8192,
/// at most 1 GiB as f32 RGBA.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
/// Reads a PNG (8 or 16 bits per channel, grey, grey + alpha, RGB, RGBA or palette) as f32
/// (C, H, W) in [0, 1]; channels = 0 keeps the file's channel count, else converts to 1
/// (grey), 3 or 4. Throws encore::Error naming the path for a file that is not a PNG, is
/// truncated or corrupt (a chunk past the end, a wrong CRC, no IEND), or is larger than
/// kMaxImagePixels; other formats are refused.
Tensor read_image(const std::string& path, int channels = 0);
/// Writes (H, W) or (C, H, W) with C in {1, 3, 4}, values in [0, 1] (clamped), as a PNG.
void write_png(const std::string& path, const Tensor& image);
/// Writes a grid of images (N, H, W) or (N, C, H, W), nrow per row, with padding pixels
/// of value pad_value between them.
void write_image_grid(const std::string& path, const Tensor& images, int64_t nrow = 8,
                      int64_t padding = 2, double pad_value = 1.0);
/// Arranges images into a grid tensor (C, H', W') without writing it.
Tensor make_grid(const Tensor& images, int64_t nrow = 8, int64_t padding = 2,
                 double pad_value = 1.0);

/// A safetensors file's tensors by name and its optional string metadata.
struct SafeTensors {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};
/// Writes name -> tensor (F32, F64, I64) and metadata atomically: a temp file beside path,
/// fsync, rename. Layout: u64 little-endian header length, JSON header, raw data.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
/// Reads a safetensors file; checks the header length against the file size, the JSON, every
/// dtype/shape/data_offsets entry against the data section, and overlaps.
SafeTensors load_safetensors(const std::string& path);

}  // namespace encore::io
