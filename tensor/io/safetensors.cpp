// safetensors reading and writing, and the file helpers of tensor/io/ (io/files.h).
//
// Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON, then the data section:
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// Offsets are bytes relative to the start of the data section. We write the header padded
// with spaces to a multiple of 8 (so the data section is 8-byte aligned) and the tensors
// back to back in key order.
//
// Loading checks everything against the bytes actually read, never trusting the header: the
// header length against the file size, the JSON, every field's type, dtype, shape (negative
// or overflowing sizes), data_offsets against shape * dtype size and the data section, and
// overlaps. Like the reference implementation, we require the tensors to tile the data
// section exactly (no holes, no trailing bytes): a file that loads here then loads there.
// Fields we do not know inside a tensor's entry are ignored, as the reference does.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <system_error>

#include "tensor/creation.h"
#include "tensor/io.h"
#include "tensor/io/files.h"

namespace encore::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as is: a big-endian host needs "
              "byte swapping here");

// ---------------------------------------------------------------------------------------------
// File helpers (io/files.h)

namespace detail {
namespace {

std::string error_text(int err) { return std::generic_category().message(err); }

/// Closes a file descriptor on scope exit unless released.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

/// The temp files this process is writing now, so that cleaning up after interrupted saves
/// never removes one that another thread of this process is still writing.
struct ActiveTemps {
  std::mutex mu;
  std::set<std::string> names;
};
ActiveTemps& active_temps() {
  static ActiveTemps* a = new ActiveTemps;  // leaked: saves may run during static destruction
  return *a;
}

/// A path made absolute and normal, so two spellings of one file compare equal.
std::string normal_path(const std::filesystem::path& p) {
  std::error_code ec;
  const std::filesystem::path a = std::filesystem::absolute(p, ec);
  return (ec ? p : a).lexically_normal().string();
}

/// Registers a temp file as being written for the guard's lifetime.
struct ActiveTemp {
  std::string name;
  explicit ActiveTemp(const std::string& path) : name(normal_path(path)) {
    std::lock_guard<std::mutex> lock(active_temps().mu);
    active_temps().names.insert(name);
  }
  ~ActiveTemp() {
    std::lock_guard<std::mutex> lock(active_temps().mu);
    active_temps().names.erase(name);
  }
  ActiveTemp(const ActiveTemp&) = delete;
  ActiveTemp& operator=(const ActiveTemp&) = delete;
};

/// The pid in a temp file name "<base>.tmp.<pid>.<n>", or 0 when name is not one for base.
pid_t temp_pid(const std::string& name, const std::string& base) {
  const std::string head = base + ".tmp.";
  if (name.size() <= head.size() || name.compare(0, head.size(), head) != 0) return 0;
  const std::string rest = name.substr(head.size());
  const size_t dot = rest.find('.');
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dot == std::string::npos || !digits(rest.substr(0, dot)) || !digits(rest.substr(dot + 1)))
    return 0;
  return static_cast<pid_t>(std::stol(rest.substr(0, dot)));
}

/// A live process's temp file left untouched this long belongs to no save in progress (a
/// save writes and fsyncs continuously), e.g. after the pid was reused by another process.
constexpr auto kStaleTempAge = std::chrono::minutes(10);

/// Removes what interrupted saves to path left beside it, "<path>.tmp.<pid>.<n>": files of a
/// process that is gone; of this process's pid that no thread here is writing (a killed run
/// whose pid was reused by this one, common in containers); and of another live pid untouched
/// for kStaleTempAge. Best effort: a file that cannot be examined or removed is left.
void remove_interrupted_temps(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  const std::string base = target.filename().string();
  const pid_t self = ::getpid();
  const auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const pid_t pid = temp_pid(name, base);
    if (pid <= 0 || !it->is_regular_file(ec)) continue;
    bool remove = false;
    if (pid == self) {
      std::lock_guard<std::mutex> lock(active_temps().mu);
      remove = !active_temps().names.count(normal_path(it->path()));
    } else if (::kill(pid, 0) != 0 && errno == ESRCH) {
      remove = true;
    } else {
      const auto modified = fs::last_write_time(it->path(), ec);
      remove = !ec && now - modified > kStaleTempAge;
    }
    if (remove) fs::remove(it->path(), ec);
    ec.clear();
  }
}

}  // namespace

std::string quoted(const std::string& path) { return "'" + path + "'"; }

FileBytes read_file(const char* op, const std::string& path) {
  FdGuard guard;
  do {
    // O_NONBLOCK: opening a FIFO must not hang; it is then rejected as not a regular file.
    guard.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (guard.fd < 0 && errno == EINTR);
  if (guard.fd < 0) ENCORE_FAIL(op, quoted(path), ": cannot open: ", error_text(errno));
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) ENCORE_FAIL(op, quoted(path), ": ", error_text(errno));
  ENCORE_CHECK(S_ISREG(st.st_mode), op, quoted(path), ": not a regular file");

  FileBytes out;
  out.size = static_cast<size_t>(st.st_size);
  out.data = std::make_unique_for_overwrite<unsigned char[]>(std::max<size_t>(out.size, 1));
  size_t done = 0;
  while (done < out.size) {
    ssize_t r = ::read(guard.fd, out.data.get() + done, out.size - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) ENCORE_FAIL(op, quoted(path), ": read failed: ", error_text(errno));
    ENCORE_CHECK(r > 0, op, quoted(path), ": file shrank to ", done, " bytes while being read");
    done += static_cast<size_t>(r);
  }
  return out;
}

void write_file_atomic(const char* op, const std::string& path,
                       const std::vector<std::string_view>& parts) {
  ENCORE_CHECK(!path.empty(), op, "empty path");
  // The temp file sits beside path so the rename stays on one file system; pid + counter make
  // its name unique between threads and processes, O_EXCL makes sure.
  static std::atomic<uint64_t> counter{0};
  // A save killed between creating its temp file and the rename leaves the temp file behind;
  // the next save to the same path removes it before it writes its own, so however often
  // saves are killed, at most one temp file (the latest one's) is left beside path.
  remove_interrupted_temps(path);
  std::string tmp;
  FdGuard guard;
  std::optional<ActiveTemp> active;  // registered before it exists, until renamed or removed
  for (int attempt = 0; guard.fd < 0; ++attempt) {
    tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    active.emplace(tmp);
    guard.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (guard.fd < 0 && (errno != EEXIST || attempt >= 100))
      // The temp file's name (with the pid) on a line of its own, so that the first line is
      // the same from run to run.
      ENCORE_FAIL(op, quoted(path), ": cannot create a temp file next to it: ", error_text(errno),
                  "\n(the temp file was ", quoted(tmp), ")");
  }
  auto fail = [&](const char* what) {
    int err = errno;
    if (guard.fd >= 0) ::close(guard.fd);
    guard.fd = -1;
    ::unlink(tmp.c_str());
    ENCORE_FAIL(op, quoted(path), ": ", what, ": ", error_text(err));
  };
  for (std::string_view part : parts) {
    size_t done = 0;
    while (done < part.size()) {
      ssize_t w = ::write(guard.fd, part.data() + done, part.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail("write failed");
      done += static_cast<size_t>(w);
    }
  }
  if (::fsync(guard.fd) != 0) fail("fsync failed");
  int fd = guard.fd;
  guard.fd = -1;
  if (::close(fd) != 0) fail("close failed");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename of the temp file failed");
  // Make the rename itself durable. Best effort: some file systems refuse to fsync a directory.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  FdGuard dir_guard{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir_guard.fd >= 0) (void)::fsync(dir_guard.fd);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// safetensors

namespace {

using nlohmann::json;

/// The largest header we accept: larger ones are corrupt or hostile.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* safetensors_dtype(DType dt) {
  switch (dt) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i64:
      return "I64";
  }
  return "?";
}

/// One tensor's entry in a header, validated.
struct Entry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

/// Validates the header entry of tensor `name` against a data section of data_size bytes.
Entry parse_entry(const std::string& where, const std::string& name, const json& v,
                  uint64_t data_size) {
  constexpr const char* op = "load_safetensors";
  const std::string tensor = "tensor '" + name + "'";
  ENCORE_CHECK(v.is_object(), op, where, ": ", tensor, ": entry is a JSON ", v.type_name(),
               ", expected an object with dtype, shape and data_offsets");
  auto field = [&](const char* key) -> const json& {
    auto it = v.find(key);
    ENCORE_CHECK(it != v.end(), op, where, ": ", tensor, ": missing field '", key, "'");
    return *it;
  };
  Entry e;
  e.name = name;

  const json& dt = field("dtype");
  ENCORE_CHECK(dt.is_string(), op, where, ": ", tensor, ": 'dtype' is a JSON ", dt.type_name(),
               ", expected a string");
  const std::string& dts = dt.get_ref<const std::string&>();
  if (dts == "F32") {
    e.dtype = DType::f32;
  } else if (dts == "F64") {
    e.dtype = DType::f64;
  } else if (dts == "I64") {
    e.dtype = DType::i64;
  } else {
    static const std::set<std::string> known = {
        "BOOL", "U8",      "I8",      "U16",     "I16", "F16",     "BF16",    "U32", "I32",
        "U64",  "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
    ENCORE_FAIL(
        op, where, ": ", tensor, ": ",
        known.count(dts) ? "dtype '" + dts + "' is not supported" : "unknown dtype '" + dts + "'",
        " (encore reads F32, F64 and I64)");
  }

  const json& sh = field("shape");
  ENCORE_CHECK(sh.is_array(), op, where, ": ", tensor, ": 'shape' is a JSON ", sh.type_name(),
               ", expected an array of sizes");
  ENCORE_CHECK(sh.size() <= size_t{kMaxDims}, op, where, ": ", tensor, ": shape has ", sh.size(),
               " dims; at most ", kMaxDims, " are supported");
  // The product of the nonzero sizes bounds every stride: it must fit int64 in bytes.
  uint64_t extent = 1;
  bool overflow = false, empty = false;
  for (const json& s : sh) {
    ENCORE_CHECK(s.is_number_integer(), op, where, ": ", tensor, ": shape ", sh.dump(),
                 " holds a non-integer size");
    ENCORE_CHECK(s.is_number_unsigned(), op, where, ": ", tensor, ": shape ", sh.dump(),
                 " holds a negative size");
    uint64_t n = s.get<uint64_t>();
    ENCORE_CHECK(n <= uint64_t{std::numeric_limits<int64_t>::max()}, op, where, ": ", tensor,
                 ": shape ", sh.dump(), " holds a size beyond int64");
    e.shape.push_back(static_cast<int64_t>(n));
    if (n == 0)
      empty = true;
    else
      overflow |= __builtin_mul_overflow(extent, n, &extent);
  }
  overflow |= extent > uint64_t{std::numeric_limits<int64_t>::max()} / 8;
  ENCORE_CHECK(!overflow, op, where, ": ", tensor, ": shape ", e.shape,
               " has more elements than can be addressed (size overflows)");
  const uint64_t nbytes = (empty ? 0 : extent) * dtype_size(e.dtype);

  const json& off = field("data_offsets");
  ENCORE_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                   off[1].is_number_unsigned(),
               op, where, ": ", tensor, ": 'data_offsets' is ", off.dump(),
               ", expected [begin, end] with two non-negative integers");
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  ENCORE_CHECK(e.begin <= e.end, op, where, ": ", tensor, ": data_offsets [", e.begin, ", ", e.end,
               "] end before they begin");
  ENCORE_CHECK(e.end <= data_size, op, where, ": ", tensor, ": data_offsets [", e.begin, ", ",
               e.end, "] reach outside the data section of ", data_size, " bytes");
  ENCORE_CHECK(e.end - e.begin == nbytes, op, where, ": ", tensor, ": data_offsets [", e.begin,
               ", ", e.end, "] hold ", e.end - e.begin, " bytes, but shape ", e.shape, " of ", dts,
               " needs ", nbytes);
  return e;
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  constexpr const char* op = "save_safetensors";
  const std::string where = detail::quoted(path);
  json header = json::object();
  std::vector<Tensor> data;
  data.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    ENCORE_CHECK(name != "__metadata__", op, where,
                 ": '__metadata__' is reserved for metadata and cannot name a tensor");
    ENCORE_CHECK(t.defined(), op, where, ": tensor '", name, "' is undefined");
    Tensor c = t.contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * dtype_size(c.dtype());
    header[name] = {{"dtype", safetensors_dtype(c.dtype())},
                    {"shape", c.shape().vec()},
                    {"data_offsets", json::array({offset, offset + nbytes})}};
    offset += nbytes;
    data.push_back(std::move(c));
  }
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    ENCORE_FAIL(op, where,
                ": cannot encode the header (tensor names and metadata must be valid "
                "UTF-8): ",
                e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data section is 8-byte aligned

  char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<char>((uint64_t{text.size()} >> (8 * i)) & 0xff);
  std::vector<std::string_view> parts = {{length, 8}, text};
  for (const Tensor& c : data)
    if (c.numel() > 0)
      parts.emplace_back(static_cast<const char*>(c.raw_data()),
                         static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  detail::write_file_atomic(op, path, parts);
}

SafeTensors load_safetensors(const std::string& path) {
  constexpr const char* op = "load_safetensors";
  const std::string where = detail::quoted(path);
  const detail::FileBytes file = detail::read_file(op, path);
  const unsigned char* bytes = file.data.get();

  ENCORE_CHECK(file.size >= 8, op, where, ": file is ", file.size,
               " bytes, shorter than the 8-byte header length (truncated)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  ENCORE_CHECK(n <= kMaxHeaderBytes, op, where, ": header length ", n, " is over the ",
               kMaxHeaderBytes, "-byte limit (corrupt file?)");
  ENCORE_CHECK(n <= file.size - 8, op, where, ": header length ", n,
               " runs past the end of the file (", file.size, " bytes, so at most ", file.size - 8,
               "; truncated?)");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  const uint64_t data_size = file.size - 8 - n;
  const unsigned char* data = bytes + 8 + n;

  // nlohmann keeps the last of duplicate keys silently; the callback sees every top-level key.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 &&
        !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + n, on_event);
  } catch (const json::exception& e) {
    ENCORE_FAIL(op, where, ": the header is not valid JSON: ", e.what());
  }
  ENCORE_CHECK(header.is_object(), op, where, ": the header is a JSON ", header.type_name(),
               ", expected an object");
  ENCORE_CHECK(duplicate.empty(), op, where, ": the header names '", duplicate, "' twice");

  SafeTensors out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key != "__metadata__") {
      entries.push_back(parse_entry(where, key, value, data_size));
      continue;
    }
    if (value.is_null()) continue;  // the reference writes no metadata as absent or null
    ENCORE_CHECK(value.is_object(), op, where, ": '__metadata__' is a JSON ", value.type_name(),
                 ", expected an object of strings");
    for (const auto& [mkey, mvalue] : value.items()) {
      ENCORE_CHECK(mvalue.is_string(), op, where, ": metadata '", mkey, "' is a JSON ",
                   mvalue.type_name(), ", expected a string");
      out.metadata[mkey] = mvalue.get<std::string>();
    }
  }

  // The tensors must tile [0, data_size) exactly: sorted by offsets, each begins where the
  // previous one ended (empty tensors may sit at any boundary).
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  const Entry* last = nullptr;
  for (const Entry& e : entries) {
    ENCORE_CHECK(e.begin >= cursor, op, where, ": tensors '", last->name, "' [", last->begin, ", ",
                 last->end, ") and '", e.name, "' [", e.begin, ", ", e.end,
                 ") overlap in the data section");
    ENCORE_CHECK(e.begin == cursor, op, where, ": bytes [", cursor, ", ", e.begin,
                 ") of the data section belong to no tensor (a hole)");
    if (e.end > e.begin) last = &e;
    cursor = e.end;
  }
  ENCORE_CHECK(cursor == data_size, op, where, ": the data section has ", data_size,
               " bytes but the tensors cover only ", cursor, " (trailing bytes)");

  for (const Entry& e : entries)
    out.tensors.emplace(e.name, from_buffer(data + e.begin, e.shape, e.dtype));
  return out;
}

}  // namespace encore::io
