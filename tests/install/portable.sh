#!/usr/bin/env bash
# tests/install/portable.sh LIBRARY MODE: in a -Dnative=false build (MODE=portable) the library
# must run on any x86-64, so its code may use the base instruction set (SSE2) only. Fails
# listing the first offending instructions: VEX/EVEX-encoded ones (AVX, AVX2, FMA, AVX-512:
# mnemonics starting with v, ymm/zmm registers, mask registers) and the common SSSE3/SSE4/BMI
# ones GCC emits for newer -march targets. MODE=native (the default build, tuned for the
# building machine) and non-x86-64 machines skip (exit 77). tzcnt is allowed: GCC emits it as
# "rep bsf" for generic x86-64, which older CPUs execute as bsf.
set -euo pipefail
lib="${1:?usage: portable.sh LIBRARY native|portable}"
mode="${2:?usage: portable.sh LIBRARY native|portable}"
if [[ "$mode" != portable ]]; then
  echo "built with -Dnative=true (-march=native): not meant to be portable; skipped"
  exit 77
fi
if [[ "$(uname -m)" != x86_64 ]]; then
  echo "not an x86-64 machine; skipped"
  exit 77
fi
command -v objdump >/dev/null || { echo "objdump (binutils) not installed; skipped"; exit 77; }
objdump -d --no-show-raw-insn "$lib" >"${TMPDIR:-/tmp}/portable.$$.txt"
total="$(grep -cE '^ +[0-9a-f]+:' "${TMPDIR:-/tmp}/portable.$$.txt" || true)"
insn='(v[a-z0-9]+|(pshufb|palignr|pabs[bwd]|phadd(w|d|sw)|phsub(w|d|sw)|pblendvb|pblendw|blendv?p[sd]|ptest|pmulld|pmaxs[bd]|pmins[bd]|pmaxu[wd]|pminu[wd]|pmov[sz]x[bwd][wdq]|pextr[bdq]|pinsr[bdq]|round[sp][sd]|dpp[sd]|insertps|extractps|popcnt|lzcnt|andn|shlx|shrx|sarx|bzhi|pdep|pext|movbe)[lqw]?)'
bad="$(grep -E "^ +[0-9a-f]+:"$'\t'"$insn( |\$)|%[yz]mm[0-9]|%k[0-7]" \
  "${TMPDIR:-/tmp}/portable.$$.txt" || true)"
rm -f "${TMPDIR:-/tmp}/portable.$$.txt"
if [[ -n "$bad" ]]; then
  echo "$lib: $(wc -l <<<"$bad") of $total instructions need more than base x86-64, e.g.:"
  head -20 <<<"$bad"
  exit 1
fi
echo "$lib: $total instructions, all base x86-64 (SSE2)"
