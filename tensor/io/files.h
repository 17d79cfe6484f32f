// Private helpers shared by the file formats in tensor/io/: whole-file reads and atomic
// writes, each throwing encore::Error that names the calling op and the path. Not part of the
// public API (tensor/io.h is); defined in io/safetensors.cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace encore::io::detail {

/// A file's bytes, read whole.
struct FileBytes {
  std::unique_ptr<unsigned char[]> data;
  size_t size = 0;
};

/// Reads the regular file at path whole; throws naming op and path when it cannot be opened,
/// is not a regular file, or a read fails.
FileBytes read_file(const char* op, const std::string& path);

/// Writes the concatenation of parts to path atomically: a temp file beside path, write,
/// fsync, rename over path (then fsync the directory). On any failure removes the temp file and
/// throws naming op and path; path is then untouched.
void write_file_atomic(const char* op, const std::string& path,
                       const std::vector<std::string_view>& parts);

/// "'path'" for messages.
std::string quoted(const std::string& path);

}  // namespace encore::io::detail
