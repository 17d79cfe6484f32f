#!/usr/bin/python3
"""Writes tests/golden/pool_fixtures.json: PyTorch's forward values and gradients for
max_pool2d and avg_pool2d with ceil_mode=True, which tests/autograd/test_golden.cpp checks
encore's Pool2dOptions{.ceil_mode = true} against (the C++ tests do not need torch).

Run with Debian's Python, which has torch:  /usr/bin/python3 tests/golden/make_pool_fixtures.py

The cases use make_autograd_fixtures.py's format (inputs, output y, a fixed random R and the
gradients of sum(y * R)); the geometries cover a last window that runs past the padded edge,
one that PyTorch drops because it would start in the right padding, and exact fits.
"""
import json
import os

import torch
import torch.nn.functional as F

from make_autograd_fixtures import case, distinct, rnd


def ceil_pool_cases():
    torch.manual_seed(20240612)
    out = []
    # (name, input (N, C, H, W), kernel, stride, padding)
    pools = [
        # H 7 -> 4 windows, the last reading rows 6..7 (7 past the edge); W 6 -> 3
        ("k2_s2_7x6", (2, 2, 7, 6), (2, 2), (2, 2), (0, 0)),
        # W 6 + 2 padding: the last window starts at 5, covers 5, the right padding, and past
        ("k3_s2_p1_7x6", (2, 2, 7, 6), (3, 3), (2, 2), (1, 1)),
        # H 4: a third window would start at 6 - 1 = 5, in the right padding: dropped
        ("k2_s3_p1_4x6", (1, 2, 4, 6), (2, 2), (3, 3), (1, 1)),
        # asymmetric: H exact, W 7 -> 3 windows, the last past the edge
        ("k32_s23_p10_7x7", (2, 1, 7, 7), (3, 2), (2, 3), (1, 0)),
    ]
    for name, shape, k, s, p in pools:
        attrs = {"kernel": list(k), "stride": list(s), "padding": list(p), "ceil_mode": True}
        a = dict(kernel_size=k, stride=s, padding=p, ceil_mode=True)
        out.append(case("max_pool2d", name, attrs, {"x": distinct(*shape)},
                        lambda x, a=a: F.max_pool2d(x, **a)))
        out.append(case("avg_pool2d", name, attrs, {"x": rnd(*shape)},
                        lambda x, a=a: F.avg_pool2d(x, count_include_pad=True, **a)))
    return out


def main():
    cases = ceil_pool_cases()
    doc = {
        "generator": "tests/golden/make_pool_fixtures.py",
        "torch": torch.__version__,
        "loss": "sum(output * R)",
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool_fixtures.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
