# shellcheck shell=bash
# Shared set-up for scripts/demo and scripts/test (sourced, not run): installs the Debian 12
# packages encore needs when they are missing, and configures and builds the meson build dir.
# Both scripts use the same build dir and options, so running one after the other does not
# reconfigure or rebuild from scratch.

# The Debian 12 packages the build, the tests, the format check and the demo need. This is the
# only list: add a package here and both scripts install it.
ENCORE_PACKAGES=(
  meson ninja-build g++ pkg-config    # build tools
  libopenblas-dev                     # BLAS (gemm) and LAPACK
  doctest-dev                         # test framework
  libstb-dev                          # PNG reading and writing
  nlohmann-json3-dev                  # safetensors headers, benchmark output
  libcli11-dev                        # command-line flags of examples and benchmarks
  libplplot-dev plplot-driver-cairo   # PNG plots: loss curves and the examples' figures
  clang-format-14                     # the format check
  clang libomp-dev                    # scripts/test --clang: the second compiler, its OpenMP
  git                                 # lists the files the format check covers
  python3 python3-numpy               # interchange tests
  libopenmpi-dev openmpi-bin          # data-parallel training over MPI, its 2-rank test
)

# The repository root, whichever directory the script was started from.
ENCORE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Whether the caller chose the build dir; encore_select_mode picks one per mode otherwise.
ENCORE_BUILD_DIR_GIVEN="${ENCORE_BUILD_DIR:+1}"
ENCORE_BUILD_DIR="${ENCORE_BUILD_DIR:-$ENCORE_ROOT/build}"
# Options of the shared build dir. werror holds our code to zero warnings. Third-party headers
# (stb, doctest, CLI11, nlohmann-json) are reached through /usr/include, a system directory, so
# the compiler does not report warnings inside them.
ENCORE_MESON_OPTIONS=(-Dwerror=true)
# Extra arguments of 'meson test' in the current mode.
ENCORE_TEST_ARGS=()
ENCORE_MODE=gcc
# Parallel jobs for ninja (default: one per core).
ENCORE_JOBS="${ENCORE_JOBS:-$(nproc 2>/dev/null || echo 2)}"

encore_say() {
  if [[ -t 1 ]]; then printf '\033[1m==> %s\033[0m\n' "$*"; else printf '==> %s\n' "$*"; fi
}
encore_warn() { printf 'warning: %s\n' "$*" >&2; }
encore_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Prints the packages of ENCORE_PACKAGES that are not installed, one per line.
encore_missing_packages() {
  local pkg status
  for pkg in "${ENCORE_PACKAGES[@]}"; do
    # db:Status-Abbrev is "ii " for an installed package; `dpkg -s` alone also succeeds for a
    # removed package whose config files remain.
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == ii* ]] || echo "$pkg"
  done
}

# Installs the missing packages (as root), or says what to install and exits 1.
encore_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    encore_warn "not a Debian system: cannot check packages; assuming the tools are installed"
    return 0
  fi
  local missing
  mapfile -t missing < <(encore_missing_packages)
  ((${#missing[@]} == 0)) && return 0

  if ((EUID != 0)); then
    printf 'error: missing Debian packages: %s\n' "${missing[*]}" >&2
    printf 'Install them with:\n  sudo apt-get update && sudo apt-get install -y %s\n' \
      "${missing[*]}" >&2
    printf 'or run this script as root, which installs them itself.\n' >&2
    exit 1
  fi
  encore_say "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update || encore_die "apt-get update failed (no network or no apt sources?)"
  apt-get install -y --no-install-recommends "${missing[@]}" ||
    encore_die "apt-get install failed for: ${missing[*]}"
  mapfile -t missing < <(encore_missing_packages)
  ((${#missing[@]} == 0)) || encore_die "still missing after apt-get install: ${missing[*]}"
}

# encore_select_mode SANITIZE CLANG [FUZZ [NOMPI]] (each 0 or 1): sets the build dir, compiler,
# meson options and the test environment of one of scripts/test's modes. Each mode has its own
# build dir, so switching modes never reconfigures another mode's build. FUZZ (scripts/test
# --fuzz) is clang + ASan + UBSan with the libFuzzer targets (-Dfuzz=true) in build-fuzz/, and
# nothing else built. NOMPI (scripts/test --no-mpi) configures -Dmpi=disabled in a dir named
# with -nompi (build-nompi/, build-clang-nompi/, ...).
encore_select_mode() {
  local sanitize="$1" clang="$2" fuzz="${3:-0}" nompi="${4:-0}" dir=build
  if ((fuzz)); then
    sanitize=1
    clang=1
  fi
  if ((clang)); then
    # A build dir remembers its compiler: these matter only when it is first configured.
    export CC=clang CXX=clang++
    ENCORE_MODE=clang
    dir=build-clang
    # The clang build is also the portable one (-march=x86-64 instead of native): its suite's
    # 'portable' test then checks that a -Dnative=false library uses base x86-64 only, and the
    # kernels' generic code paths run the whole suite. The GCC build stays tuned (-march=native).
    ENCORE_MESON_OPTIONS+=(-Dnative=false)
  fi
  if ((sanitize)); then
    ENCORE_MODE="$ENCORE_MODE+asan+ubsan"
    dir=build-asan
    if ((clang)); then dir=build-asan-clang; fi
    # debugoptimized keeps the asserts (b_ndebug=if-release) and the line numbers of reports.
    # -fno-sanitize-recover=all makes every UBSan finding abort the test instead of printing
    # and going on. b_lundef=false: with clang the sanitizer runtime is linked into the
    # executables only, so the shared library has undefined sanitizer symbols by design.
    # The benchmarks and example programs are not run by the suite, so they are not built.
    # shellcheck disable=SC2054 # the commas are inside one option's value
    ENCORE_MESON_OPTIONS+=(-Dbuildtype=debugoptimized -Db_sanitize=address,undefined
      -Db_lundef=false -Dcpp_args=-fno-sanitize-recover=all
      -Dcpp_link_args=-fno-sanitize-recover=all -Dbench=false -Dexamples=false)
    # The install suite links freshly built, uninstrumented programs against the instrumented
    # library, which ASan refuses to start; the normal mode runs it.
    ENCORE_TEST_ARGS+=(--no-suite install)
    # allocator_may_return_null: a too-large allocation returns null, as glibc's does, so the
    # tests that an impossible tensor size throws encore::Error run under ASan too.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
    export LSAN_OPTIONS="suppressions=$ENCORE_ROOT/scripts/lsan.supp:print_suppressions=0"
  fi
  if ((fuzz)); then
    ENCORE_MODE=fuzz
    dir=build-fuzz
    ENCORE_MESON_OPTIONS+=(-Dfuzz=true -Dtests=false)
    # The library is single-threaded under the fuzzer: reports are reproducible.
    export OMP_NUM_THREADS=1
    # As --sanitize; an impossible size still returns null (encore throws), and libFuzzer's
    # -malloc_limit_mb (scripts/test) reports any single allocation over it that an input
    # asks for as a finding.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:allocator_may_return_null=1"
  fi
  if ((nompi)); then
    # The library, examples and suites must also build and pass where Open MPI is not
    # installed; -Dmpi=disabled checks that on a machine that has it.
    ENCORE_MODE="$ENCORE_MODE+nompi"
    dir="$dir-nompi"
    ENCORE_MESON_OPTIONS+=(-Dmpi=disabled)
  fi
  [[ -n "$ENCORE_BUILD_DIR_GIVEN" ]] || ENCORE_BUILD_DIR="$ENCORE_ROOT/$dir"
}

# Configures ENCORE_BUILD_DIR: a fresh setup, or a reconfigure when it already exists (wiping
# it if the reconfigure fails, e.g. after a meson upgrade).
encore_configure() {
  if [[ -f "$ENCORE_BUILD_DIR/meson-private/coredata.dat" ]]; then
    meson setup --reconfigure "${ENCORE_MESON_OPTIONS[@]}" "$ENCORE_BUILD_DIR" "$ENCORE_ROOT" ||
      meson setup --wipe "${ENCORE_MESON_OPTIONS[@]}" "$ENCORE_BUILD_DIR" "$ENCORE_ROOT"
  else
    meson setup "${ENCORE_MESON_OPTIONS[@]}" "$ENCORE_BUILD_DIR" "$ENCORE_ROOT"
  fi
}

# Builds the given ninja targets (everything when none are given).
encore_build() {
  ninja -C "$ENCORE_BUILD_DIR" -j "$ENCORE_JOBS" "$@"
}
