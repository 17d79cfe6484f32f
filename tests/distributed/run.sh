#!/usr/bin/env bash
# Runs the distributed suite as 2 MPI ranks, then the hang check: with a 2 s timeout, rank 1
# sleeps before its first step and rank 0 must stop the job naming rank 1.
# Usage: run.sh <test_distributed>. Exit 77 (skip) when mpirun is missing.
set -u
prog="$1"
if ! command -v mpirun >/dev/null 2>&1; then
  echo "mpirun not found (install openmpi-bin): skipping"
  exit 77
fi
# Under scripts/test --sanitize: Open MPI keeps its start-up allocations (opal, hwloc, its MCA
# plugins) until exit and never frees them, many from plugins it has dlclosed by then, so
# LeakSanitizer reports ~120 KB through "<unknown module>" frames that no suppression can name.
# Leak checking is off for these MPI processes only; AddressSanitizer and UBSan still check
# every memory access, and the other suites still check leaks.
if [[ -n "${ASAN_OPTIONS:-}" ]]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
fi
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1)

echo "== the suite on 2 ranks"
"${mpi[@]}" "$prog" || { echo "FAIL: the 2-rank suite"; exit 1; }

echo "== a hanging rank is named"
out="$("${mpi[@]}" "$prog" --hang 2>&1)"
status=$?
printf '%s\n' "$out" | tail -n 20
if ((status == 0)); then
  echo "FAIL: the run with a hanging rank exited with status 0"
  exit 1
fi
if ! grep -q 'rank(s) 1 did not arrive at step 0' <<<"$out"; then
  echo "FAIL: no message naming rank 1"
  exit 1
fi
echo "ok"
