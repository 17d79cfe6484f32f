#!/usr/bin/env bash
# tests/install/run.sh BUILD_DIR [PROJECT_DIR]: installs the encore build in BUILD_DIR into a
# temporary directory (meson install --destdir), then configures, builds and runs the small
# out-of-tree project in PROJECT_DIR (default: this script's directory) against it through
# pkg-config, as a user's own meson project would. Exits non-zero when any step fails. The
# temporary directory is removed on success and kept (and named) on failure.
set -euo pipefail

build="$(cd "${1:?usage: run.sh BUILD_DIR [PROJECT_DIR]}" && pwd)"
project="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")}" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/encore-install.XXXXXX")"
cleanup() {
  local rc=$?
  if ((rc == 0)); then rm -rf "$tmp"; else echo "install test failed; files kept in $tmp" >&2; fi
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*"; }

step "meson install --destdir $tmp/dest"
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/dest"

pc="$(find "$tmp/dest" -name encore.pc -print -quit)"
[[ -n "$pc" ]] || { echo "encore.pc was not installed" >&2; exit 1; }
# The .pc names the configured prefix (say /usr/local); under --destdir the files sit at
# $tmp/dest/usr/local, so point prefix there. Every other path in the file must derive from
# ${prefix}, or the build below fails.
prefix="$(sed -n 's/^prefix=//p' "$pc")"
sed -i "s|^prefix=.*|prefix=$tmp/dest$prefix|" "$pc"
step "installed $pc (prefix relocated)"
cat "$pc"

PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
step "pkg-config --cflags --libs encore"
pkg-config --cflags --libs encore
includedir="$(pkg-config --variable=includedir encore)"
libdir="$(pkg-config --variable=libdir encore)"
[[ -f "$includedir/encore/tensor/tensor.h" ]] ||
  { echo "missing $includedir/encore/tensor/tensor.h" >&2; exit 1; }

# Every installed header must compile from the install alone (none may include a header that
# was not installed).
step "compile every installed header"
(cd "$includedir" && find encore -name '*.h' | sort) >"$tmp/headers.txt"
while read -r h; do echo "#include <$h>"; done <"$tmp/headers.txt" >"$tmp/all_headers.cpp"
echo "$(wc -l <"$tmp/headers.txt") headers"
# shellcheck disable=SC2046  # pkg-config prints several flags
"${CXX:-c++}" -std=c++20 -fsyntax-only $(pkg-config --cflags encore) "$tmp/all_headers.cpp"

step "configure and build $project"
meson setup "$tmp/build" "$project"
ninja -C "$tmp/build"

step "run"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The program must load the installed library, not one from the build tree.
loaded="$(ldd "$tmp/build/use_encore" | awk '/libencore/ {print $3}')"
echo "libencore resolved to: $loaded"
[[ "$loaded" == "$libdir"/* ]] || { echo "expected libencore from $libdir" >&2; exit 1; }
"$tmp/build/use_encore"
