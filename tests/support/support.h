// Helpers shared by the test executables (tests/support/, linked in as test_support_dep):
// finding files in the source tree, the golden JSON fixtures written by tests/golden/*.py,
// elementwise tensor comparison, encore::Error messages and gradcheck assertions.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tensor/tensor.h"

namespace encore::testing {

// ---------------------------------------------------------------------------------------------
// Files and fixtures

/// The directories a file of the source tree is looked for in when $ENCORE_SOURCE_ROOT is unset
/// (the binary run by hand): the working directory and each of its ancestors, then the
/// executable's path and each of its ancestors, up to but not including the root.
std::vector<std::filesystem::path> search_dirs();

/// A file of the source tree by its path relative to the top (e.g. "tests/nn/interchange.py"):
/// under $ENCORE_SOURCE_ROOT (meson test sets it), else the first of search_dirs() that holds
/// it, else `relative` itself.
std::filesystem::path source_path(const std::string& relative);

/// tests/golden/<file_name> (found by source_path), parsed once and kept for the process. A
/// file that cannot be opened fails the test case (REQUIRE), naming the path it tried.
const nlohmann::json& golden(const std::string& file_name);

/// A fixture tensor {"shape": [...], "data": [...]} (values as f64), converted to dt.
Tensor json_tensor(const nlohmann::json& j, DType dt = DType::f64);

// ---------------------------------------------------------------------------------------------
// Comparing tensors

/// How check_close weighs an element's error |got - want| against its tolerance
/// atol + rtol |want|.
enum class Measure {
  /// error - tolerance <= 0: an exact match passes even with a zero tolerance.
  difference,
  /// error / tolerance <= 1: the failure report also gives the worst element's error.
  ratio,
};

/// Checks got against want elementwise: REQUIREs that got is defined and has want's shape, then
/// CHECKs every element within atol + rtol |want| (NaN fails), reporting the worst element.
void check_close(const std::string& what, const Tensor& got, const Tensor& want, double atol,
                 double rtol, Measure measure = Measure::difference);

// ---------------------------------------------------------------------------------------------
// Errors

/// Runs f and returns the message of the encore::Error it throws, or `if_none` when it throws
/// none (a file may pick a marker such as "(no error)" that reads well in a failed CHECK).
template <class F>
std::string error_of(F&& f, const std::string& if_none = "") {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return if_none;
}

/// The message of the encore::Error f throws; when it throws none the test case fails (FAIL).
template <class F>
std::string expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("expected an encore::Error");
  return "";
}

// ---------------------------------------------------------------------------------------------
// Gradient checks

/// CHECKs gradcheck(fn, inputs, o), with its message on failure.
void check_grad(const GradcheckFn& fn, const Tensors& inputs, const GradcheckOptions& o = {});
/// The same, with `what` in the failure report.
void check_grad(const std::string& what, const GradcheckFn& fn, const Tensors& inputs,
                const GradcheckOptions& o = {});

/// CHECKs gradgradcheck(fn, inputs, o), with its message on failure.
void check_gradgrad(const GradcheckFn& fn, const Tensors& inputs, const GradcheckOptions& o = {});
/// The same, with `what` in the failure report.
void check_gradgrad(const std::string& what, const GradcheckFn& fn, const Tensors& inputs,
                    const GradcheckOptions& o = {});

}  // namespace encore::testing
