#!/usr/bin/env bash
# examples/no_mpi.sh EXAMPLE: in a build without MPI, `EXAMPLE --distributed` must exit non-zero
# before any training, and say on stderr that MPI is missing and how to get it (the package and
# the meson option), so a user who asked for data-parallel training is not left guessing.
set -uo pipefail
exe="${1:?usage: no_mpi.sh EXAMPLE}"
err="$("$exe" --distributed --epochs 1 2>&1 >/dev/null)"
rc=$?
echo "exit $rc, stderr: $err"
if ((rc == 0)); then
  echo "FAIL: $exe --distributed succeeded in a build without MPI"
  exit 1
fi
for want in "no MPI support" "libopenmpi-dev" "-Dmpi=enabled"; do
  if [[ "$err" != *"$want"* ]]; then
    echo "FAIL: the error does not say '$want'"
    exit 1
  fi
done
echo "ok"
