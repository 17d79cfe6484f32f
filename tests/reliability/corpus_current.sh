#!/usr/bin/env bash
# corpus_current.sh MAKE_CORPUS CORPUS_DIR: fails when the committed seed corpus differs from
# what make_corpus writes now (a writer changed: regenerate with
# 'build/tests/reliability/make_corpus tests/fuzz/corpus' and commit).
set -euo pipefail
make_corpus="$1" corpus="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$make_corpus" "$tmp"
# checkpoint/ is left out: its files hold a model's trained floats, whose last bits depend on
# the compiler and the vector instructions it used (clang's portable build writes other bits
# than g++'s -march=native one), so only the writers of exact bytes are compared.
if ! diff -r --exclude=checkpoint "$tmp" "$corpus"; then
  echo "the seed corpus in $corpus is stale: regenerate it with $make_corpus $corpus" >&2
  exit 1
fi
echo "corpus current: $(find "$tmp" -type f | wc -l) files"
