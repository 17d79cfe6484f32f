// The OpenBLAS kernel choice (tensor/blas.h): the decision as a pure function of the kernel
// OpenBLAS chose, the CPU's features and the environment; the sgemm check; switching kernels
// in the process; and, in child processes started with a given environment, that a set
// OPENBLAS_CORETYPE always wins and ENCORE_BLAS_AUTO=0 keeps OpenBLAS's choice.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "tensor/tensor.h"

using namespace encore;

namespace {

CpuFeatures intel(bool avx2, bool avx512, bool bf16) {
  return {
      .vendor = "GenuineIntel", .fma = avx2, .avx2 = avx2, .avx512 = avx512, .avx512_bf16 = bf16};
}

CpuFeatures amd(bool avx2, bool avx512) {
  return {.vendor = "AuthenticAMD", .fma = avx2, .avx2 = avx2, .avx512 = avx512};
}

const std::optional<std::string> unset;

bool dynamic_arch() { return blas_config().find("DYNAMIC_ARCH") != std::string::npos; }

}  // namespace

TEST_CASE("blas: the fastest kernel the CPU's features allow") {
  CHECK(fast_blas_kernel(intel(true, true, true)) == "Cooperlake");
  CHECK(fast_blas_kernel(intel(true, true, false)) == "SkylakeX");
  CHECK(fast_blas_kernel(intel(true, false, false)) == "Haswell");
  CHECK(fast_blas_kernel(amd(true, false)) == "Zen");
  CHECK(fast_blas_kernel(amd(true, true)) == "SkylakeX");
  CHECK(fast_blas_kernel({.vendor = "HygonGenuine", .fma = true, .avx2 = true}) == "Zen");
  CHECK(fast_blas_kernel(intel(false, false, false)).empty());
  // AVX2 without FMA is not enough for the Haswell kernels.
  CHECK(fast_blas_kernel({.vendor = "GenuineIntel", .avx2 = true}).empty());
}

TEST_CASE("blas: generic kernels") {
  for (const char* g : {"Prescott", "PRESCOTT", "prescott", "Core2", "Nehalem", "Barcelona",
                        "Opteron_SSE3", "SandyBridge", "Atom"})
    CHECK_MESSAGE(is_generic_blas_kernel(g), g);
  for (const char* k :
       {"Haswell", "Zen", "SkylakeX", "Cooperlake", "Bulldozer", "Excavator", "unknown", ""})
    CHECK_MESSAGE(!is_generic_blas_kernel(k), k);
}

TEST_CASE("blas: a generic kernel on a CPU that supports a faster one is replaced") {
  // The Xeon of family 6, model 207 that OpenBLAS 0.3.21 runs on Prescott.
  BlasKernelDecision d = decide_blas_kernel("Prescott", intel(true, true, true), unset, unset);
  CHECK(d.status == BlasKernelStatus::switched);
  CHECK(d.target == "Cooperlake");
  CHECK(d.reason.find("Prescott") != std::string::npos);
  CHECK(decide_blas_kernel("Prescott", intel(true, true, false), unset, unset).target ==
        "SkylakeX");
  CHECK(decide_blas_kernel("Nehalem", intel(true, false, false), unset, unset).target == "Haswell");
  CHECK(decide_blas_kernel("Barcelona", amd(true, false), unset, unset).target == "Zen");
  // ENCORE_BLAS_AUTO with any other value leaves the rule on.
  CHECK(decide_blas_kernel("Prescott", amd(true, false), unset, "1").target == "Zen");
}

TEST_CASE("blas: kernels OpenBLAS chose for a CPU it knows, and CPUs with nothing faster, stay") {
  for (const char* k : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "Excavator"}) {
    BlasKernelDecision d = decide_blas_kernel(k, intel(true, true, true), unset, unset);
    CHECK_MESSAGE(d.status == BlasKernelStatus::kept, k);
    CHECK_MESSAGE(d.target.empty(), k);
  }
  // A real Nehalem (SSE4.2, no AVX) keeps its kernel.
  BlasKernelDecision d = decide_blas_kernel("Nehalem", intel(false, false, false), unset, unset);
  CHECK(d.status == BlasKernelStatus::kept);
  CHECK(d.target.empty());
}

TEST_CASE("blas: a set OPENBLAS_CORETYPE always wins") {
  for (const char* value : {"Prescott", "Haswell", "", "nonsense"}) {
    BlasKernelDecision d =
        decide_blas_kernel("Prescott", intel(true, true, true), std::string(value), unset);
    CHECK(d.status == BlasKernelStatus::environment);
    CHECK(d.target.empty());
    // Even when ENCORE_BLAS_AUTO asks for the rule.
    CHECK(decide_blas_kernel("Prescott", intel(true, true, true), std::string(value), "1")
              .target.empty());
  }
}

TEST_CASE("blas: ENCORE_BLAS_AUTO=0 keeps OpenBLAS's choice") {
  for (const char* off : {"0", "off", "OFF", "false", "no"}) {
    BlasKernelDecision d =
        decide_blas_kernel("Prescott", intel(true, true, true), unset, std::string(off));
    CHECK_MESSAGE(d.status == BlasKernelStatus::disabled, off);
    CHECK(d.target.empty());
  }
}

TEST_CASE("blas: the choice taken at load agrees with the rule and the environment") {
  const BlasKernelChoice& c = blas_kernel_choice();
  CHECK_FALSE(c.initial.empty());
  CHECK_FALSE(c.reason.empty());
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  if (coretype) {
    CHECK(c.status == BlasKernelStatus::environment);
    CHECK(c.kernel == c.initial);
  }
  BlasKernelDecision d = decide_blas_kernel(
      c.initial, cpu_features(), coretype ? std::optional<std::string>(coretype) : unset,
      std::getenv("ENCORE_BLAS_AUTO") ? std::optional<std::string>(std::getenv("ENCORE_BLAS_AUTO"))
                                      : unset);
  if (d.target.empty()) {
    CHECK(c.status == d.status);
    CHECK(c.kernel == c.initial);
  } else {
    CHECK((c.status == BlasKernelStatus::switched || c.status == BlasKernelStatus::check_failed ||
           c.status == BlasKernelStatus::unavailable));
  }
  CHECK(blas_config().find(std::string("; kernel ") + blas_kernel()) != std::string::npos);
}

TEST_CASE("blas: the sgemm check passes on the kernel in use") { CHECK(check_blas_sgemm()); }

TEST_CASE("blas: switching kernels in the process, and back") {
  if (!dynamic_arch()) return;  // one kernel only: nothing to switch
  const std::string before = blas_kernel();
  const char* coretype_before = std::getenv("OPENBLAS_CORETYPE");
  const std::optional<std::string> saved =
      coretype_before ? std::optional<std::string>(coretype_before) : unset;
  // Prescott (SSE3) runs on every x86_64 CPU.
  REQUIRE(set_blas_kernel("Prescott"));
  CHECK(blas_kernel() == "Prescott");
  // arange of integers is i64; matmul needs a floating dtype.
  Tensor a = raw::reshape(arange(0, 12), {3, 4}).to(DType::f32),
         b = raw::reshape(arange(0, 8), {4, 2}).to(DType::f32);
  Tensor c = raw::matmul(a, b);
  CHECK(c.to_vector<double>() == std::vector<double>{28, 34, 76, 98, 124, 162});
  // An unknown name changes nothing.
  CHECK_FALSE(set_blas_kernel("NoSuchCore"));
  CHECK(blas_kernel() == "Prescott");
  REQUIRE(set_blas_kernel(before));
  CHECK(blas_kernel() == before);
  // The environment is as it was.
  const char* coretype_after = std::getenv("OPENBLAS_CORETYPE");
  CHECK(bool(coretype_after) == bool(saved));
  if (coretype_after && saved) CHECK(std::string(coretype_after) == *saved);
}

// Run by the next test case in a fresh process with ENCORE_TEST_EXPECT_* set; passes
// trivially otherwise.
TEST_CASE("blas child: the environment's choice at load") {
  const char* kernel = std::getenv("ENCORE_TEST_EXPECT_KERNEL");
  const char* status = std::getenv("ENCORE_TEST_EXPECT_STATUS");
  if (!kernel || !status) return;
  CHECK(blas_kernel() == kernel);
  CHECK(std::string(to_string(blas_kernel_choice().status)) == status);
}

TEST_CASE("blas: in a fresh process, OPENBLAS_CORETYPE wins and ENCORE_BLAS_AUTO=0 keeps") {
  if (!dynamic_arch()) return;
  // This test program itself (the shell would resolve /proc/self/exe to itself).
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto run = [&](const std::string& env) {
    std::string cmd = env + " " + self + " -tc='blas child*' > /dev/null 2>&1";
    return std::system(cmd.c_str());
  };
  // A kernel older than anything this CPU can run faster, chosen by the user: kept.
  CHECK(run("OPENBLAS_CORETYPE=Prescott ENCORE_TEST_EXPECT_KERNEL=Prescott "
            "ENCORE_TEST_EXPECT_STATUS=environment") == 0);
  CHECK(run("OPENBLAS_CORETYPE=Prescott ENCORE_BLAS_AUTO=1 ENCORE_TEST_EXPECT_KERNEL=Prescott "
            "ENCORE_TEST_EXPECT_STATUS=environment") == 0);
  const BlasKernelChoice& c = blas_kernel_choice();
  if (!std::getenv("OPENBLAS_CORETYPE"))
    CHECK(run("ENCORE_BLAS_AUTO=0 ENCORE_TEST_EXPECT_KERNEL=" + c.initial +
              " ENCORE_TEST_EXPECT_STATUS=disabled") == 0);
  // The child fails when its expectation is wrong (the harness itself works).
  CHECK(run("OPENBLAS_CORETYPE=Prescott ENCORE_TEST_EXPECT_KERNEL=Haswell "
            "ENCORE_TEST_EXPECT_STATUS=environment") != 0);
}
