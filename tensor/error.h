// encore::Error and the one-line check macro used at every user-facing throw site.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace encore {

/// The exception every user-caused error throws. Its message starts with the op's name and
/// names the shapes involved, e.g. "matmul: shapes [128, 784] and [400, 784] do not align".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
[[noreturn]] void throw_error(const char* op, const Args&... args) {
  std::ostringstream os;
  os << op << ": ";
  (os << ... << args);
  throw Error(os.str());
}
}  // namespace detail

}  // namespace encore

/// ENCORE_CHECK(cond, "op", "message parts", shape, ...): throws encore::Error("op: ...")
/// when cond is false. Message parts are streamed, so shapes and dtypes print themselves.
#define ENCORE_CHECK(cond, op, ...)                   \
  do {                                                \
    if (!(cond)) [[unlikely]]                         \
      ::encore::detail::throw_error(op, __VA_ARGS__); \
  } while (0)

/// ENCORE_FAIL("op", parts...): throws unconditionally.
#define ENCORE_FAIL(op, ...) ::encore::detail::throw_error(op, __VA_ARGS__)
