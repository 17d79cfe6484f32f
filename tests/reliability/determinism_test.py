#!/usr/bin/env python3
"""Determinism: examples/dense_ae run twice with the same seed and one thread, as separate
processes (so with different heap and stack addresses), ends with the same checkpoint tensors
and final metrics, bitwise; another seed gives other tensors (the comparison can tell). Then
prints, without asserting, whether two threads give the one-thread result and each other's:
that is not promised (see the README's Reliability section).

    determinism_test.py DENSE_AE MNIST_DIR

Exits 77 (meson's "skipped") when DENSE_AE is "none" (examples not built). Standard library
only; the checkpoint reader is kill_test.py's."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kill_test import CHECKPOINT, read_checkpoint  # noqa: E402


def run(exe, data, cwd, seed, threads):
    cmd = [exe, "--data", data, "--train-limit", "320", "--test-limit", "64", "--hidden",
           "64,32", "--code", "8", "--batch-size", "16", "--epochs", "2", "--threads",
           str(threads), "--seed", str(seed), "--out", "run", "--quiet"]
    os.makedirs(cwd)
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if p.returncode != 0:
        print("FAIL: %s exited %d:\n%s" % (" ".join(cmd), p.returncode,
                                           p.stdout.decode(errors="replace")), file=sys.stderr)
        sys.exit(1)
    _, tensors = read_checkpoint(os.path.join(cwd, "run", CHECKPOINT))
    with open(os.path.join(cwd, "run", "metrics.json")) as f:
        return tensors, json.load(f)["final_metrics"]


def differing(a, b):
    return sorted(k for k in a[0] if a[0][k] != b[0].get(k))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    exe, data = sys.argv[1], sys.argv[2]
    if exe == "none" or not os.path.exists(exe):
        print("examples not built: skipped")
        return 77
    exe, data = os.path.abspath(exe), os.path.abspath(data)
    top = tempfile.mkdtemp(prefix="encore_determinism_")
    try:
        first = run(exe, data, os.path.join(top, "a"), 3, 1)
        second = run(exe, data, os.path.join(top, "b"), 3, 1)
        other = run(exe, data, os.path.join(top, "c"), 4, 1)
        status = 0
        if differing(first, second) or first[1] != second[1]:
            print("FAIL: same seed, one thread, two runs differ: tensors %s, metrics %s vs %s"
                  % (differing(first, second), first[1], second[1]), file=sys.stderr)
            status = 1
        else:
            print("seed 3, one thread: two runs bitwise equal (%d tensors, metrics %s)"
                  % (len(first[0]), first[1]))
        if not differing(first, other):
            print("FAIL: seeds 3 and 4 gave the same tensors", file=sys.stderr)
            status = 1
        two_a = run(exe, data, os.path.join(top, "d"), 3, 2)
        two_b = run(exe, data, os.path.join(top, "e"), 3, 2)
        def same(a, b):
            return "tensors %s, metrics %s" % ("equal" if not differing(a, b) else "differ",
                                               "equal" if a[1] == b[1] else "differ")
        print("two threads (not asserted): against one thread %s; two runs: %s"
              % (same(first, two_a), same(two_a, two_b)))
        return status
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
