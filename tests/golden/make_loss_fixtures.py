#!/usr/bin/python3
"""Golden fixtures for nn/loss computed with PyTorch (and, where PyTorch itself rounds, with
mpmath at 50 digits).

Run with Debian's Python, which has torch, numpy and mpmath (the python3 on PATH may not):

    /usr/bin/python3 tests/golden/make_loss_fixtures.py

It writes tests/golden/loss_fixtures.json next to this script. Everything is f64 (labels i64).
Each case holds the loss name, its inputs, the reduction, the loss value, a fixed cotangent R of
the loss's shape, and the gradients of sum(loss * R) with respect to the prediction and, where
the loss is differentiable in it, the target. Inputs are rounded to four decimals.

Special cases:
  bce_edges:        p exactly 0 and 1. PyTorch clamps each log at -100, so the loss is finite
                    (the loss reference is PyTorch's). The gradient w.r.t. p is
                    (p - t) / max(p (1 - p), 1e-12), computed here with numpy: PyTorch's clamp
                    constant is the f32 nearest 1e-12, 4e-9 smaller (checked to that tolerance).
                    PyTorch's gradient w.r.t. the target is the unclamped -logit(p) (infinite at 0
                    and 1); encore differentiates the clamped loss it computes, so that reference
                    is max(log(1 - p), -100) - max(log p, -100), computed here with numpy.
  bce_logits_large: |x| up to 100. PyTorch's formula rounds log(1 + exp(-50)) to 0, so the loss
                    reference is max(x, 0) - x t + log(1 + exp(-|x|)) and the gradient
                    sigmoid(x) - t, both evaluated in mpmath and rounded to f64.
  gaussian_kl:      torch.distributions.kl_divergence(Normal(mu, exp(logvar / 2)), Normal(0, 1)),
                    summed over the last dim.
"""

import json
import os

import mpmath
import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

SEED = 20240612
mpmath.mp.dps = 50


def rounded(rng, shape, lo=-1.0, hi=1.0):
    return torch.tensor(np.round(rng.uniform(lo, hi, size=shape), 4), dtype=torch.float64)


def encode(t):
    t = torch.as_tensor(t).detach()
    if t.dtype != torch.int64:
        t = t.to(torch.float64)
    return {"shape": list(t.shape), "data": [v for v in t.contiguous().reshape(-1).tolist()]}


def torch_case(rng, loss, fn, pred, target, reduction, target_grad=True):
    """Forward and gradients of sum(fn(pred, target) * R) via torch autograd."""
    x = pred.clone().requires_grad_(True)
    t = target.clone().requires_grad_(target_grad)
    out = fn(x, t, reduction)
    r = rounded(rng, tuple(out.shape))
    inputs = [x, t] if target_grad else [x]
    grads = torch.autograd.grad((out * r).sum(), inputs)
    case = {"loss": loss, "reduction": reduction, "pred": encode(pred), "target": encode(target),
            "out": encode(out), "R": encode(r), "dpred": encode(grads[0])}
    if target_grad:
        case["dtarget"] = encode(grads[1])
    return case


def mse(x, t, red):
    return F.mse_loss(x, t, reduction=red)


def bce(x, t, red):
    return F.binary_cross_entropy(x, t, reduction=red)


def bce_logits(x, t, red):
    return F.binary_cross_entropy_with_logits(x, t, reduction=red)


def cross_entropy(x, t, red):
    return F.cross_entropy(x, t, reduction=red)


def kl(mu, logvar, red):
    per = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    return {"mean": per.mean(), "sum": per.sum(), "none": per}[red]


def reduce_np(v, red):
    return {"mean": np.mean(v), "sum": np.sum(v), "none": v}[red]


def bce_edge_case(rng, reduction):
    p = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.25, 0.9]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.3, 0.6, 0.0, 1.0]], dtype=torch.float64)
    c = torch_case(rng, "binary_cross_entropy", bce, p, t, reduction, target_grad=False)
    r = np.array(c["R"]["data"]).reshape(c["R"]["shape"])
    pn = p.numpy()
    with np.errstate(divide="ignore"):
        dt_el = np.maximum(np.log1p(-pn), -100.0) - np.maximum(np.log(pn), -100.0)
    scale = 1.0 / pn.size if reduction == "mean" else 1.0
    c["dtarget"] = encode(torch.tensor(dt_el * r * scale, dtype=torch.float64))
    # torch's clamp constant is the f32 1e-12 (9.99999996e-13), so its dp at p = 0 / 1 is 4e-9
    # larger in relative terms than with the documented 1e-12; the reference is the closed form.
    tn = t.numpy()
    dp_el = (pn - tn) / np.maximum(pn * (1 - pn), 1e-12)
    dp = torch.tensor(dp_el * r * scale, dtype=torch.float64)
    assert np.allclose(dp.numpy(), np.array(c["dpred"]["data"]).reshape(dp.shape), rtol=1e-8,
                       atol=0)
    c["dpred"] = encode(dp)
    return c


def mp_softplus_loss(x, t):
    x, t = mpmath.mpf(x), mpmath.mpf(t)
    return max(x, 0) - x * t + mpmath.log(1 + mpmath.exp(-abs(x)))


def mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-mpmath.mpf(x)))


def bce_logits_large_case(rng, reduction):
    x = torch.tensor([[50.0, -50.0, 100.0, -100.0], [0.0, 30.0, -30.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0, 0.3, 1.0], [0.0, 0.7, 0.0, 1.0]], dtype=torch.float64)
    xs, ts = x.reshape(-1).tolist(), t.reshape(-1).tolist()
    n = len(xs)
    el = [mp_softplus_loss(a, b) for a, b in zip(xs, ts)]
    if reduction == "none":
        out = torch.tensor([float(v) for v in el], dtype=torch.float64).reshape(x.shape)
    else:
        total = mpmath.fsum(el)
        out = torch.tensor(float(total / n if reduction == "mean" else total), dtype=torch.float64)
    r = rounded(rng, tuple(out.shape))
    rs = r.reshape(-1).tolist() if reduction == "none" else [float(r)] * n
    scale = mpmath.mpf(1) / n if reduction == "mean" else mpmath.mpf(1)
    dx = [float((mp_sigmoid(a) - mpmath.mpf(b)) * mpmath.mpf(w) * scale)
          for a, b, w in zip(xs, ts, rs)]
    dt = [float(-mpmath.mpf(a) * mpmath.mpf(w) * scale) for a, w in zip(xs, rs)]
    # Torch must agree with the exact values wherever it does not round log(1 + tiny) to 0.
    xg = x.clone().requires_grad_(True)
    (tdx,) = torch.autograd.grad((bce_logits(xg, t, reduction) * r).sum(), [xg])
    # (torch rounds sigmoid(50) to 1, so its dx at (50, t = 1) is 0 instead of -2e-22 R.)
    assert np.allclose(tdx.reshape(-1).tolist(), dx, rtol=1e-14, atol=1e-20)
    return {"loss": "bce_with_logits", "reduction": reduction, "pred": encode(x),
            "target": encode(t), "out": encode(out), "R": encode(r),
            "dpred": encode(torch.tensor(dx, dtype=torch.float64).reshape(x.shape)),
            "dtarget": encode(torch.tensor(dt, dtype=torch.float64).reshape(x.shape))}


def main():
    rng = np.random.default_rng(SEED)
    cases = {}
    for red in ("mean", "sum", "none"):
        cases[f"mse_{red}"] = torch_case(rng, "mse_loss", mse, rounded(rng, (3, 4), -2, 2),
                                         rounded(rng, (3, 4), -2, 2), red)
        cases[f"bce_{red}"] = torch_case(rng, "binary_cross_entropy", bce,
                                         rounded(rng, (3, 4), 0.05, 0.95),
                                         rounded(rng, (3, 4), 0, 1), red)
        cases[f"bce_edges_{red}"] = bce_edge_case(rng, red)
        cases[f"bce_logits_{red}"] = torch_case(rng, "bce_with_logits", bce_logits,
                                                rounded(rng, (3, 4), -4, 4),
                                                rounded(rng, (3, 4), 0, 1), red)
        cases[f"bce_logits_large_{red}"] = bce_logits_large_case(rng, red)
        labels = torch.tensor(rng.integers(0, 5, size=(4,)), dtype=torch.int64)
        cases[f"cross_entropy_{red}"] = torch_case(rng, "cross_entropy", cross_entropy,
                                                   rounded(rng, (4, 5), -3, 3), labels, red,
                                                   target_grad=False)
        big = rounded(rng, (3, 4), -1, 1) * 1000
        cases[f"cross_entropy_large_{red}"] = torch_case(
            rng, "cross_entropy", cross_entropy, big, torch.tensor([0, 3, 2]), red,
            target_grad=False)
        cases[f"gaussian_kl_{red}"] = torch_case(rng, "gaussian_kl", kl,
                                                 rounded(rng, (3, 4), -1.5, 1.5),
                                                 rounded(rng, (3, 4), -2, 1), red)
    # Sanity: torch's KL is the closed form -1/2 sum(1 + logvar - mu^2 - exp(logvar)).
    for red in ("mean", "sum", "none"):
        c = cases[f"gaussian_kl_{red}"]
        mu = np.array(c["pred"]["data"]).reshape(3, 4)
        lv = np.array(c["target"]["data"]).reshape(3, 4)
        want = reduce_np(-0.5 * np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=-1), red)
        assert np.allclose(c["out"]["data"], np.ravel(want), rtol=1e-13, atol=0)
    doc = {"about": "PyTorch reference values for nn/loss; made by make_loss_fixtures.py",
           "torch_version": torch.__version__, "dtype": "f64", "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loss_fixtures.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
