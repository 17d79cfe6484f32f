#!/usr/bin/env bash
# tests/install/run.sh BUILD_DIR SOURCE_ROOT: installs the encore build in BUILD_DIR into a
# temporary directory (meson install --destdir) and uses it the way a new user would:
#   - encore.pc gives -I<prefix>/include alone and requires no other package (pkg-config only
#     sees encore.pc here, so a Requires line naming e.g. openblas would fail);
#   - the installed headers are exactly the public list (ENCORE_PUBLIC_HEADERS, from
#     meson.build), and each compiles alone, warning-free, with a user include directory in
#     front that holds a file named like every encore header (a header found through it
#     instead of encore's own stops the compile);
#   - the README's "A first program" and its meson snippet, cut out of SOURCE_ROOT/README.md,
#     are configured, built and run (one epoch on the 1000-image MNIST subset in tests/data),
#     loading the installed libencore.
# Exits non-zero when any step fails. The temporary directory is removed on success and kept
# (and named) on failure.
set -euo pipefail

build="$(cd "${1:?usage: run.sh BUILD_DIR SOURCE_ROOT}" && pwd)"
src="$(cd "${2:?usage: run.sh BUILD_DIR SOURCE_ROOT}" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/encore-install.XXXXXX")"
cleanup() {
  local rc=$?
  if ((rc == 0)); then rm -rf "$tmp"; else echo "install test failed; files kept in $tmp" >&2; fi
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*"; }
fail() {
  echo "install test: $*" >&2
  exit 1
}

step "meson install --destdir $tmp/dest"
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/dest"

pc="$(find "$tmp/dest" -name encore.pc -print -quit)"
[[ -n "$pc" ]] || fail "encore.pc was not installed"
# The .pc names the configured prefix (say /usr/local); under --destdir the files sit at
# $tmp/dest/usr/local, so point prefix there. Every other path in the file must derive from
# ${prefix}, or the build below fails.
prefix="$(sed -n 's/^prefix=//p' "$pc")"
sed -i "s|^prefix=.*|prefix=$tmp/dest$prefix|" "$pc"
step "installed $pc (prefix relocated)"
cat "$pc"

# Only encore.pc is visible: the user's machine may lack openblas.pc, nlohmann_json.pc, ...
export PKG_CONFIG_LIBDIR="$(dirname "$pc")"
unset PKG_CONFIG_PATH
step "pkg-config --cflags --libs encore (no other .pc file visible)"
pkg-config --cflags --libs encore || fail "encore.pc needs other packages' .pc files"
includedir="$(pkg-config --variable=includedir encore)"
libdir="$(pkg-config --variable=libdir encore)"
cflags="$(pkg-config --cflags encore | xargs)"
[[ "$cflags" == "-I$includedir" ]] || fail "Cflags are '$cflags', expected '-I$includedir' alone"
if grep -E '^Requires(\.private)?:[[:space:]]*[^[:space:]]' "$pc"; then
  fail "encore.pc requires other packages, but no installed header includes theirs"
fi

step "Libs.private names libmpi exactly when the build has MPI (ENCORE_MPI=${ENCORE_MPI:?})"
# A static link of a program using libencore.a needs libmpi and its directory, which Open MPI
# keeps outside the default search path; the shared libencore finds it through its own DT_NEEDED.
libs_private="$(sed -n 's/^Libs\.private:[[:space:]]*//p' "$pc")"
echo "Libs.private: $libs_private"
if [[ "$ENCORE_MPI" == 1 ]]; then
  [[ " $libs_private " == *" -lmpi "* ]] || fail "an MPI build's Libs.private lacks -lmpi"
  mpi_dir=""
  for flag in $libs_private; do
    if [[ "$flag" == -L* ]] && compgen -G "${flag#-L}/libmpi.*" >/dev/null; then
      mpi_dir="${flag#-L}"
    fi
  done
  [[ -n "$mpi_dir" ]] || fail "no -L directory of Libs.private holds libmpi"
  echo "libmpi in $mpi_dir"
elif [[ " $libs_private " == *" -lmpi "* ]]; then
  fail "a build without MPI lists -lmpi in Libs.private"
fi

step "installed headers = the public list"
(cd "$includedir" && find . -type f | sed 's|^\./||' | sort) >"$tmp/installed.txt"
tr ' ' '\n' <<<"${ENCORE_PUBLIC_HEADERS:?set by tests/meson.build}" | sed '/^$/d' | sort \
  >"$tmp/public.txt"
diff -u "$tmp/public.txt" "$tmp/installed.txt" || fail "installed files differ from the list"
echo "$(wc -l <"$tmp/installed.txt") headers"

# A user include directory that shadows every encore header name, with and without its
# folder (nn/loss.h and loss.h), put before encore's on the command line.
shadow="$tmp/user_include"
while read -r h; do
  rel="${h#encore/}"
  for f in "$shadow/$rel" "$shadow/$(basename "$rel")"; do
    mkdir -p "$(dirname "$f")"
    echo "#error \"the user's $f was included instead of encore's <$h>\"" >"$f"
  done
done <"$tmp/installed.txt"

step "compile each installed header alone"
CXX="${CXX:-c++}"
while read -r h; do
  # shellcheck disable=SC2046  # pkg-config prints several flags
  echo "#include <$h>" | "$CXX" -std=c++20 -Wall -Wextra -Werror -fsyntax-only -x c++ \
    -I"$shadow" $(pkg-config --cflags encore) - ||
    fail "<$h> does not compile on its own against the install"
done <"$tmp/installed.txt"
echo "ok"

step "the README's first program, built with the README's meson snippet"
app="$tmp/app"
mkdir -p "$app"
# The first ```cpp block after the "## A first program" heading, and the first ```meson block.
awk '/^## A first program/ {s = 1} s == 1 && /^```cpp$/ {s = 2; next}
     s == 2 && /^```$/ {exit} s == 2 {print}' "$src/README.md" >"$app/app.cpp"
awk '/^```meson$/ {s = 1; next} s == 1 && /^```$/ {exit} s == 1 {print}' "$src/README.md" \
  >"$app/meson.build"
grep -q 'int main' "$app/app.cpp" || fail "no program found under README's 'A first program'"
grep -q "executable('app', 'app.cpp'" "$app/meson.build" ||
  fail "README's meson snippet does not build app.cpp"
cat "$app/meson.build"
meson setup "$tmp/app-build" "$app" -Dwerror=true -Dwarning_level=2
ninja -C "$tmp/app-build"

step "run it (one epoch on tests/data/mnist-small)"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The program must load the installed library, not one from the build tree.
loaded="$(ldd "$tmp/app-build/app" | awk '/libencore/ {print $3}')"
echo "libencore resolved to: $loaded"
[[ "$loaded" == "$libdir"/* ]] || fail "expected libencore from $libdir"
mkdir -p "$tmp/run"
(cd "$tmp/run" && ENCORE_DATA_DIR="$src/tests/data/mnist-small" "$tmp/app-build/app")
[[ -s "$tmp/run/ae.safetensors" ]] || fail "the README program wrote no ae.safetensors"
echo "install test: ok"
