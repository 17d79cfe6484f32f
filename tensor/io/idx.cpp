// IDX reading (the MNIST file format): a 4-byte magic 0x00 0x00 TT NN (TT the element type,
// NN the number of dims), NN big-endian u32 sizes, then the elements, big-endian, row-major.
// The file must be exactly as long as its header says; anything else throws encore::Error.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <type_traits>

#include "tensor/io.h"
#include "tensor/io/files.h"

namespace encore::io {
namespace {

constexpr const char* kOp = "read_idx";

/// One IDX element type: its type code, name and size in bytes.
struct IdxType {
  uint8_t code;
  const char* name;
  size_t size;
};
constexpr IdxType kTypes[] = {
    {0x08, "u8", 1},  {0x09, "i8", 1},  {0x0B, "i16", 2},
    {0x0C, "i32", 4}, {0x0D, "f32", 4}, {0x0E, "f64", 8},
};

/// The big-endian unsigned integer of N bytes at p.
template <size_t N>
uint64_t load_be_bits(const unsigned char* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < N; ++i) v = (v << 8) | p[i];
  return v;
}

/// The big-endian element of type S at p.
template <class S>
S load_be(const unsigned char* p) {
  if constexpr (std::is_same_v<S, uint8_t>) {
    return p[0];
  } else if constexpr (std::is_same_v<S, int8_t>) {
    return static_cast<int8_t>(p[0]);
  } else if constexpr (std::is_same_v<S, int16_t>) {
    return static_cast<int16_t>(static_cast<uint16_t>(load_be_bits<2>(p)));
  } else if constexpr (std::is_same_v<S, int32_t>) {
    return static_cast<int32_t>(static_cast<uint32_t>(load_be_bits<4>(p)));
  } else if constexpr (std::is_same_v<S, float>) {
    return std::bit_cast<float>(static_cast<uint32_t>(load_be_bits<4>(p)));
  } else {
    static_assert(std::is_same_v<S, double>);
    return std::bit_cast<double>(load_be_bits<8>(p));
  }
}

/// Calls f.template operator()<S>() with S the C++ type of an IDX type code.
template <class F>
void dispatch_idx(uint8_t code, F&& f) {
  switch (code) {
    case 0x08:
      return f.template operator()<uint8_t>();
    case 0x09:
      return f.template operator()<int8_t>();
    case 0x0B:
      return f.template operator()<int16_t>();
    case 0x0C:
      return f.template operator()<int32_t>();
    case 0x0D:
      return f.template operator()<float>();
    case 0x0E:
      return f.template operator()<double>();
  }
}

/// Converts n big-endian elements of type S at src into dst of type D. Integer sources convert
/// exactly (i32 -> f32 rounds); floating sources into i64 truncate toward zero and must be
/// finite and in range; f64 -> f32 overflows to +-inf instead of undefined behaviour.
template <class D, class S>
void convert(D* dst, const unsigned char* src, int64_t n, const std::string& path) {
  for (int64_t i = 0; i < n; ++i) {
    S v = load_be<S>(src + static_cast<size_t>(i) * sizeof(S));
    if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
      // 2^63 is exactly representable; [-2^63, 2^63) is the convertible range.
      constexpr double lim = 9223372036854775808.0;
      ENCORE_CHECK(std::isfinite(v) && double(v) >= -lim && double(v) < lim, kOp,
                   detail::quoted(path), ": element ", i, " (", v, ") cannot be converted to i64");
      dst[i] = static_cast<D>(v);
    } else if constexpr (std::is_same_v<S, double> && std::is_same_v<D, float>) {
      constexpr double fmax = std::numeric_limits<float>::max();
      dst[i] = v > fmax    ? std::numeric_limits<float>::infinity()
               : v < -fmax ? -std::numeric_limits<float>::infinity()
                           : static_cast<float>(v);
    } else {
      dst[i] = static_cast<D>(v);
    }
  }
}

/// A checked IDX header: the element type, the dims, the element count and the header bytes.
struct IdxHeader {
  const IdxType* type = nullptr;
  Shape shape;
  int64_t count = 0;
  size_t bytes = 0;
};

/// Checks file (read from path) as an IDX file; throws naming op and path.
IdxHeader parse_header(const char* op, const detail::FileBytes& file, const std::string& path) {
  const std::string where = detail::quoted(path);
  const unsigned char* p = file.data.get();
  const size_t size = file.size;

  ENCORE_CHECK(size >= 4, op, where, ": file is ", size,
               " bytes, too short for the 4-byte IDX magic");
  ENCORE_CHECK(!(p[0] == 0x1f && p[1] == 0x8b), op, where,
               ": file starts with the gzip magic 1f 8b; read_idx reads plain (uncompressed) IDX "
               "only: gunzip it first");
  ENCORE_CHECK(p[0] == 0 && p[1] == 0, op, where, ": bad magic: the first two bytes are ",
               int(p[0]), " and ", int(p[1]), ", expected 0 and 0 (not an IDX file)");
  const IdxType* type = nullptr;
  for (const IdxType& t : kTypes)
    if (t.code == p[2]) type = &t;
  if (type == nullptr) {
    std::ostringstream code;
    code << "0x" << std::hex << int(p[2]);
    ENCORE_FAIL(op, where, ": unknown element type code ", code.str(),
                " (expected 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32 or 0x0E f64)");
  }
  const int ndims = p[3];
  ENCORE_CHECK(ndims >= 1 && ndims <= kMaxDims, op, where, ": header declares ", ndims,
               " dims; supported are 1 to ", kMaxDims);
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  ENCORE_CHECK(size >= header, op, where, ": file is ", size, " bytes, too short for the ", header,
               "-byte header of ", ndims, " dims (truncated)");

  // Sizes are u32, so each fits int64; their product may not. The product of the nonzero sizes
  // (which bounds every contiguous stride) must fit in int64 with 8-byte elements.
  Shape shape;
  uint64_t extent = 1;
  bool overflow = false, empty = false;
  for (int d = 0; d < ndims; ++d) {
    uint64_t n = load_be_bits<4>(p + 4 + 4 * d);
    shape.push_back(static_cast<int64_t>(n));
    if (n == 0)
      empty = true;
    else
      overflow |= __builtin_mul_overflow(extent, n, &extent);
  }
  overflow |= extent > uint64_t{std::numeric_limits<int64_t>::max()} / 8;
  const uint64_t count = empty ? 0 : extent;
  const uint64_t expected = header + count * type->size;  // < 2^63 + small: no wrap
  ENCORE_CHECK(!overflow, op, where, ": dims ", shape, " of ", type->name,
               " describe more data than any file can hold (size overflows)");
  ENCORE_CHECK(expected == size, op, where, ": dims ", shape, " of ", type->name,
               " need a file of ", expected, " bytes, but it is ", size, " bytes (",
               size < expected ? "truncated" : "trailing bytes after the data", ")");

  return {type, shape, static_cast<int64_t>(count), header};
}

}  // namespace

Tensor read_idx(const std::string& path, DType out) {
  detail::FileBytes file = detail::read_file(kOp, path);
  const IdxHeader h = parse_header(kOp, file, path);
  const IdxType* type = h.type;
  const unsigned char* p = file.data.get();
  const size_t header = h.bytes;
  const int64_t n = h.count;
  Tensor t(h.shape, out);
  dispatch(out, [&]<class D>() {
    dispatch_idx(type->code, [&]<class S>() { convert<D, S>(t.data<D>(), p + header, n, path); });
  });
  return t;
}

IdxBytes read_idx_bytes(const std::string& path) {
  const char* op = "read_idx_bytes";
  detail::FileBytes file = detail::read_file(op, path);
  const IdxHeader h = parse_header(op, file, path);
  ENCORE_CHECK(h.type->code == 0x08, op, detail::quoted(path), ": elements are ", h.type->name,
               " of dims ", h.shape, ", expected u8 (read_idx converts other types)");
  IdxBytes out;
  out.shape = h.shape;
  out.data = file.data.get() + h.bytes;
  // The file's buffer is kept, header and all, so the bytes are never copied.
  out.buffer = std::shared_ptr<const unsigned char[]>(std::move(file.data));
  return out;
}

}  // namespace encore::io
