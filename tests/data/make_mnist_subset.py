#!/usr/bin/env python3
"""Writes the small MNIST subset committed for the tests (tests/data/mnist-small): the first
TRAIN training and TEST test examples of the original IDX files, as IDX files again.

    python3 tests/data/make_mnist_subset.py data/mnist tests/data/mnist-small

Standard library only. The originals come from scripts/fetch-data (SHA-256 checked)."""
import struct
import sys

TRAIN, TEST = 1000, 200


def subset(src, dst, n):
    with open(src, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    assert count >= n, (src, count, n)
    per = 1
    for d in dims[1:]:
        per *= d
    head = struct.pack(">I", magic) + struct.pack(">" + "I" * ndim, n, *dims[1:])
    start = 4 + 4 * ndim
    with open(dst, "wb") as f:
        f.write(head + data[start:start + n * per])


def main():
    src, dst = sys.argv[1], sys.argv[2]
    for prefix, n in (("train", TRAIN), ("t10k", TEST)):
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{prefix}-{kind}"
            subset(f"{src}/{name}", f"{dst}/{name}", n)
            print(f"wrote {dst}/{name} ({n} examples)")


if __name__ == "__main__":
    main()
