#!/usr/bin/python3
"""Golden fixtures for the nn/ layers (Linear, Conv2d, ConvTranspose2d, BatchNorm1d/2d) computed
with PyTorch.

Run with Debian's Python, which has torch and numpy (the python3 on PATH may not):

    /usr/bin/python3 tests/golden/make_layer_fixtures.py

It writes tests/golden/layer_fixtures.json next to this script. Everything is f64. Each case
holds the layer's configuration (in encore's option names), its parameters under PyTorch's
names, and a list of steps. A step has a mode ("train" or "eval"), the input x, the output, a
fixed cotangent R, the gradients of

    loss = sum(out * R)

with respect to x and every parameter, and (batch norm) the buffers after the step. Batch-norm
cases run three training steps (the running statistics accumulate) and then one eval step.
Parameters and inputs are rounded to four decimals so that the file stays small and both sides
read exactly the same values; outputs and gradients keep full precision.

Keras 'same' / 'valid' cases are not PyTorch layers; their references are built from first
principles, independently of encore's arithmetic:
  Conv2d 'same':           TensorFlow's padding rule (out = ceil(in / s), total padding split
                           with the extra row/column at the bottom/right), applied with F.pad.
  ConvTranspose2d 'same'/'valid': the gradient of that Conv2d (or of a padding-free one) with
                           respect to its input, whose size is Keras' deconv_output_length
                           (in * s for 'same', in * s + max(dk - s, 0) for 'valid'), which is how
                           TensorFlow defines conv2d_transpose.
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240602


def rounded(rng, shape, scale=1.0):
    """Uniform(-scale, scale) values rounded to 4 decimals, as an f64 tensor."""
    return torch.tensor(np.round(rng.uniform(-scale, scale, size=shape), 4), dtype=torch.float64)


def encode(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def run_step(fn, params, x, rng, mode, buffers=None):
    """One forward/backward of out = fn(x) with loss sum(out * R); returns the encoded step."""
    x = x.clone().requires_grad_(True)
    out = fn(x)
    r = rounded(rng, tuple(out.shape))
    loss = (out * r).sum()
    names = ["x"] + list(params)
    grads = torch.autograd.grad(loss, [x] + list(params.values()), allow_unused=True)
    step = {
        "mode": mode,
        "x": encode(x),
        "R": encode(r),
        "out": encode(out),
        "grads": {n: encode(g if g is not None else torch.zeros_like(t))
                  for n, g, t in zip(names, grads, [x] + list(params.values()))},
    }
    if buffers is not None:
        step["buffers"] = {n: encode(b) for n, b in buffers().items()}
    return step


def set_params(module, rng, scale=0.5):
    params = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(rounded(rng, tuple(p.shape), scale))
            params[name] = p
    return params


# ---------------------------------------------------------------------------------------------
# Linear


def linear_case(rng, in_f, out_f, x_shape, bias=True):
    m = torch.nn.Linear(in_f, out_f, bias=bias).double()
    params = set_params(m, rng)
    step = run_step(m, params, rounded(rng, x_shape), rng, "train")
    return {"module": "Linear", "in": in_f, "out": out_f, "bias": bias,
            "params": {n: encode(p) for n, p in params.items()}, "steps": [step]}


# ---------------------------------------------------------------------------------------------
# Convolutions


def conv_case(rng, c_in, c_out, k, x_shape, stride=1, padding=0, dilation=1, bias=True):
    m = torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation,
                        bias=bias).double()
    params = set_params(m, rng)
    step = run_step(m, params, rounded(rng, x_shape), rng, "train")
    return {"module": "Conv2d", "in": c_in, "out": c_out, "kernel": pair(k),
            "stride": pair(stride), "padding": pair(padding), "dilation": pair(dilation),
            "padding_mode": "explicit", "bias": bias,
            "params": {n: encode(p) for n, p in params.items()}, "steps": [step]}


def conv_transpose_case(rng, c_in, c_out, k, x_shape, stride=1, padding=0, output_padding=0,
                        dilation=1, bias=True):
    m = torch.nn.ConvTranspose2d(c_in, c_out, k, stride=stride, padding=padding,
                                 output_padding=output_padding, dilation=dilation,
                                 bias=bias).double()
    params = set_params(m, rng)
    step = run_step(m, params, rounded(rng, x_shape), rng, "train")
    return {"module": "ConvTranspose2d", "in": c_in, "out": c_out, "kernel": pair(k),
            "stride": pair(stride), "padding": pair(padding),
            "output_padding": pair(output_padding), "dilation": pair(dilation),
            "padding_mode": "explicit", "bias": bias,
            "params": {n: encode(p) for n, p in params.items()}, "steps": [step]}


def tf_same_pads(n, k, s, d):
    """TensorFlow 'SAME': out = ceil(n / s); the smaller half of the padding goes before."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def keras_conv(x, w, stride, dilation, mode):
    """Keras Conv2D with padding 'same' or 'valid' (x NCHW, w (F, C, kh, kw))."""
    (sh, sw), (dh, dw) = stride, dilation
    if mode == "same":
        top, bottom = tf_same_pads(x.shape[2], w.shape[2], sh, dh)
        left, right = tf_same_pads(x.shape[3], w.shape[3], sw, dw)
        x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, w, None, (sh, sw), 0, (dh, dw))


def keras_deconv_length(n, k, s, d, mode):
    dk = d * (k - 1) + 1
    return n * s if mode == "same" else n * s + max(dk - s, 0)


def keras_conv_transpose(y, w, b, stride, dilation, mode):
    """Keras Conv2DTranspose: the input-gradient of the matching Keras Conv2D, evaluated at y.
    y: (N, C_in, h, w), w: (C_in, C_out, kh, kw) -- as a conv weight, (F = C_in, C = C_out)."""
    H = keras_deconv_length(y.shape[2], w.shape[2], stride[0], dilation[0], mode)
    W = keras_deconv_length(y.shape[3], w.shape[3], stride[1], dilation[1], mode)
    z = torch.zeros(y.shape[0], w.shape[1], H, W, dtype=torch.float64, requires_grad=True)
    c = keras_conv(z, w, stride, dilation, mode)
    assert tuple(c.shape) == tuple(y.shape), (c.shape, y.shape)
    (g,) = torch.autograd.grad(c, z, grad_outputs=y, create_graph=True)
    return g + b.view(1, -1, 1, 1) if b is not None else g


def keras_conv_case(rng, c_in, c_out, k, x_shape, stride, dilation, mode):
    w = rounded(rng, (c_out, c_in) + tuple(pair(k)), 0.5).requires_grad_(True)
    b = rounded(rng, (c_out,), 0.5).requires_grad_(True)
    params = {"weight": w, "bias": b}
    fn = lambda x: keras_conv(x, w, pair(stride), pair(dilation), mode) + b.view(1, -1, 1, 1)
    step = run_step(fn, params, rounded(rng, x_shape), rng, "train")
    return {"module": "Conv2d", "in": c_in, "out": c_out, "kernel": pair(k),
            "stride": pair(stride), "padding": [0, 0], "dilation": pair(dilation),
            "padding_mode": mode, "bias": True,
            "params": {n: encode(p) for n, p in params.items()}, "steps": [step]}


def keras_conv_transpose_case(rng, c_in, c_out, k, x_shape, stride, dilation, mode):
    w = rounded(rng, (c_in, c_out) + tuple(pair(k)), 0.5).requires_grad_(True)
    b = rounded(rng, (c_out,), 0.5).requires_grad_(True)
    params = {"weight": w, "bias": b}
    fn = lambda x: keras_conv_transpose(x, w, b, pair(stride), pair(dilation), mode)
    step = run_step(fn, params, rounded(rng, x_shape), rng, "train")
    return {"module": "ConvTranspose2d", "in": c_in, "out": c_out, "kernel": pair(k),
            "stride": pair(stride), "padding": [0, 0], "output_padding": [0, 0],
            "dilation": pair(dilation), "padding_mode": mode, "bias": True,
            "params": {n: encode(p) for n, p in params.items()}, "steps": [step]}


# ---------------------------------------------------------------------------------------------
# Batch norm


def batchnorm_case(rng, kind, c, x_shape, eps=1e-5, momentum=0.1, affine=True):
    cls = torch.nn.BatchNorm1d if kind == "BatchNorm1d" else torch.nn.BatchNorm2d
    m = cls(c, eps=eps, momentum=momentum, affine=affine).double()
    params = set_params(m, rng) if affine else {}
    buffers = lambda: {n: b for n, b in m.named_buffers()}
    steps = []
    m.train()
    for _ in range(3):
        steps.append(run_step(m, params, rounded(rng, x_shape, 2.0) + 0.5, rng, "train", buffers))
    m.eval()
    steps.append(run_step(m, params, rounded(rng, x_shape, 2.0), rng, "eval", buffers))
    return {"module": kind, "num_features": c, "eps": eps,
            "momentum": momentum,  # None: cumulative average
            "affine": affine, "params": {n: encode(p) for n, p in params.items()},
            "steps": steps}


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(SEED)
    cases = {
        "linear": linear_case(rng, 5, 4, (3, 5)),
        "linear_3d_input": linear_case(rng, 5, 3, (2, 3, 5)),
        "linear_no_bias": linear_case(rng, 4, 2, (3, 4), bias=False),
        "conv2d_stride_padding": conv_case(rng, 2, 3, 3, (2, 2, 7, 7), stride=2, padding=1),
        "conv2d_dilation_rect": conv_case(rng, 2, 3, (3, 2), (2, 2, 8, 7), stride=(1, 2),
                                          padding=(2, 1), dilation=(2, 1)),
        "conv2d_no_bias": conv_case(rng, 1, 2, 2, (1, 1, 4, 5), bias=False),
        "conv2d_keras_same_stride2": keras_conv_case(rng, 2, 3, 3, (2, 2, 8, 7), 2, 1, "same"),
        "conv2d_keras_same_k4": keras_conv_case(rng, 2, 2, 4, (1, 2, 5, 6), 1, 1, "same"),
        "conv2d_keras_valid_stride2": keras_conv_case(rng, 1, 2, 3, (2, 1, 9, 8), 2, 1,
                                                      "valid"),
        "conv_transpose2d_output_padding": conv_transpose_case(
            rng, 2, 3, 3, (2, 2, 4, 4), stride=2, padding=1, output_padding=1),
        "conv_transpose2d_dilation_rect": conv_transpose_case(
            rng, 3, 2, (2, 3), (1, 3, 3, 4), stride=(2, 1), padding=(0, 1),
            output_padding=(1, 0), dilation=(1, 2)),
        "conv_transpose2d_keras_same_stride2": keras_conv_transpose_case(
            rng, 2, 3, 3, (2, 2, 4, 3), 2, 1, "same"),
        "conv_transpose2d_keras_same_k4": keras_conv_transpose_case(
            rng, 2, 2, 4, (1, 2, 3, 3), (2, 1), 1, "same"),
        "conv_transpose2d_keras_same_k1_stride2": keras_conv_transpose_case(
            rng, 2, 2, 1, (1, 2, 3, 3), 2, 1, "same"),
        "conv_transpose2d_keras_valid_stride2": keras_conv_transpose_case(
            rng, 2, 2, 3, (1, 2, 3, 4), 2, 1, "valid"),
        "conv_transpose2d_keras_valid_k1_stride2": keras_conv_transpose_case(
            rng, 1, 2, 1, (1, 1, 3, 2), 2, 1, "valid"),
        "batchnorm1d": batchnorm_case(rng, "BatchNorm1d", 4, (6, 4)),
        "batchnorm1d_3d_input": batchnorm_case(rng, "BatchNorm1d", 3, (4, 3, 5), eps=1e-3,
                                               momentum=0.3),
        "batchnorm1d_cumulative_no_affine": batchnorm_case(rng, "BatchNorm1d", 3, (5, 3),
                                                           momentum=None, affine=False),
        "batchnorm2d": batchnorm_case(rng, "BatchNorm2d", 2, (3, 2, 3, 4), eps=1e-3),
    }
    doc = {"about": "PyTorch reference values for nn/ layers; made by make_layer_fixtures.py",
           "torch_version": torch.__version__, "dtype": "f64", "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer_fixtures.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
