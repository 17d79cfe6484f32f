#!/usr/bin/env python3
"""PyTorch side of bench_autograd: the same chain of small ops, eager autograd.

Prints one JSON object per line, like the C++ benchmarks. Run with Debian's
/usr/bin/python3 (python3-torch); bench_autograd calls it itself.
"""
import argparse
import json
import statistics
import time

import torch


def chain(x, c1, c2, n_ops):
    h = x
    for i in range(n_ops // 3):
        h = h + c1
        h = h * c2
        h = torch.tanh(h)
    return h.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=999)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.randn(a.size, dtype=torch.float32, requires_grad=True)
    c1 = torch.full((a.size,), 0.01)
    c2 = torch.full((a.size,), 0.99)
    times = []
    for rep in range(a.reps + 3):
        t0 = time.perf_counter()
        loss = chain(x, c1, c2, a.ops)
        (g,) = torch.autograd.grad(loss, [x])
        t1 = time.perf_counter()
        if rep >= 3:
            times.append((t1 - t0) * 1e3)
    n_recorded = (a.ops // 3) * 3 + 1
    med = statistics.median(times)
    print(json.dumps({
        "name": "autograd_chain_pytorch",
        "framework": f"pytorch {torch.__version__} eager",
        "ops": n_recorded,
        "size": a.size,
        "median_ms": med,
        "min_ms": min(times),
        "max_ms": max(times),
        "reps": a.reps,
        "ns_per_op": med * 1e6 / n_recorded,
        "check_grad_sum": float(g.sum()),
    }))


if __name__ == "__main__":
    main()
