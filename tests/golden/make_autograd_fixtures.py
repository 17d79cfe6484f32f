#!/usr/bin/python3
"""Writes tests/golden/autograd_fixtures.json: PyTorch's forward values and gradients for
conv2d, conv_transpose2d, max_pool2d, avg_pool2d, softmax and log_softmax, which
tests/autograd/test_golden.cpp checks encore against (the C++ tests do not need torch).

Run with Debian's Python, which has torch:  /usr/bin/python3 tests/golden/make_autograd_fixtures.py

Every case holds its inputs and parameters (f64), the forward output y, a fixed random R of
y's shape, and the gradients of sum(y * R) w.r.t. every input and parameter. Inputs and R are
rounded to 4 decimals so that the JSON text holds them exactly and stays small; outputs and
gradients are written with Python's shortest round-trip repr, so they parse back to the exact
doubles PyTorch computed.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20240611)


def rnd(*shape):
    """Seeded f64 values, rounded to 4 decimals (exact in the JSON text)."""
    return torch.round(torch.randn(*shape, dtype=torch.float64) * 1e4) / 1e4


def distinct(*shape):
    """Values with no ties (max_pool2d's gradient is not defined at a tie), spaced >= 0.01
    apart so finite differences in the C++ tests cannot flip an argmax either."""
    n = 1
    for s in shape:
        n *= s
    perm = torch.randperm(n).to(torch.float64)
    return (perm * 0.01 - n * 0.005).reshape(shape)


def enc(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def case(op, name, attrs, inputs, fn):
    """inputs: dict of name -> f64 tensor (all differentiated)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    r = rnd(*y.shape)
    (y * r).sum().backward()
    return {
        "op": op,
        "name": name,
        "attrs": attrs,
        "inputs": {k: enc(v) for k, v in inputs.items()},
        "output": enc(y),
        "R": enc(r),
        "grads": {k: enc(v.grad) for k, v in leaves.items()},
    }


def conv2d_cases():
    out = []
    variants = [
        ("plain", dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1)), True),
        ("stride2_pad1", dict(stride=(2, 2), padding=(1, 1), dilation=(1, 1)), True),
        ("stride21_pad12", dict(stride=(2, 1), padding=(1, 2), dilation=(1, 1)), True),
        ("dilation2_pad1", dict(stride=(1, 1), padding=(1, 1), dilation=(2, 2)), True),
        ("all_nobias", dict(stride=(2, 1), padding=(2, 1), dilation=(2, 1)), False),
    ]
    for name, a, bias in variants:
        inputs = {"x": rnd(2, 2, 6, 5), "weight": rnd(3, 2, 3, 2)}
        if bias:
            inputs["bias"] = rnd(3)
        attrs = {"stride": list(a["stride"]), "padding": list(a["padding"]),
                 "dilation": list(a["dilation"])}

        def fn(x, weight, bias=None, a=a):
            return F.conv2d(x, weight, bias, **a)

        out.append(case("conv2d", name, attrs, inputs, fn))
    return out


def conv_transpose2d_cases():
    out = []
    variants = [
        ("stride2_pad1_outpad1", dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1),
                                      dilation=(1, 1)), True),
        ("stride23_pad01_outpad12", dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2),
                                          dilation=(1, 1)), True),
        # output padding >= stride, allowed because it is < dilation
        ("dilation2_outpad1", dict(stride=(1, 1), padding=(1, 0), output_padding=(1, 1),
                                   dilation=(2, 2)), True),
        ("plain_nobias", dict(stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                              dilation=(1, 1)), False),
    ]
    for name, a, bias in variants:
        # weight (C_in, C_out, kh, kw), PyTorch's layout
        inputs = {"x": rnd(2, 3, 3, 4), "weight": rnd(3, 2, 3, 2)}
        if bias:
            inputs["bias"] = rnd(2)
        attrs = {"stride": list(a["stride"]), "padding": list(a["padding"]),
                 "output_padding": list(a["output_padding"]), "dilation": list(a["dilation"])}

        def fn(x, weight, bias=None, a=a):
            return F.conv_transpose2d(x, weight, bias, **a)

        out.append(case("conv_transpose2d", name, attrs, inputs, fn))
    return out


def pool_cases():
    out = []
    pools = [
        ("k2", dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))),
        ("k3_s2_p1", dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))),
        ("k32_s12_p10", dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0))),
    ]
    for name, a in pools:
        attrs = {"kernel": list(a["kernel_size"]), "stride": list(a["stride"]),
                 "padding": list(a["padding"])}
        out.append(case("max_pool2d", name, attrs, {"x": distinct(2, 2, 7, 6)},
                        lambda x, a=a: F.max_pool2d(x, **a)))
        out.append(case("avg_pool2d", name, attrs, {"x": rnd(2, 2, 7, 6)},
                        lambda x, a=a: F.avg_pool2d(x, count_include_pad=True, **a)))
    return out


def softmax_cases():
    out = []
    for dim in (-1, 1):
        attrs = {"dim": dim}
        out.append(case("softmax", f"dim{dim}", attrs, {"x": rnd(3, 4, 5) * 3},
                        lambda x, dim=dim: F.softmax(x, dim=dim)))
        out.append(case("log_softmax", f"dim{dim}", attrs, {"x": rnd(3, 4, 5) * 3},
                        lambda x, dim=dim: F.log_softmax(x, dim=dim)))
    return out


def main():
    cases = conv2d_cases() + conv_transpose2d_cases() + pool_cases() + softmax_cases()
    doc = {
        "generator": "tests/golden/make_autograd_fixtures.py",
        "torch": torch.__version__,
        "loss": "sum(output * R)",
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograd_fixtures.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
