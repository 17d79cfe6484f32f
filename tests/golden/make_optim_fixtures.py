#!/usr/bin/python3
"""Golden fixtures for nn/optim (optimizers, gradient clipping, learning-rate schedules)
computed with PyTorch.

Run with Debian's Python, which has torch and numpy (the python3 on PATH may not):

    /usr/bin/python3 tests/golden/make_optim_fixtures.py

It writes tests/golden/optim_fixtures.json next to this script. Everything is f64.

Optimizers: two parameters (shapes [2, 3] and [4]) start from fixed values and receive a fixed,
seeded sequence of five gradients whose scale changes from step to step (so that AMSGrad's
running maximum matters). Each case names the encore optimizer and its options (encore's option
names; an option left out means "the default", which is then also torch's default, so the
defaults are checked too) and holds both parameters after every step. In the "skip" cases the
second parameter gets no gradient (torch: grad None) at the steps listed in "skip"; torch then
leaves it and its state alone, so Adam's per-parameter step count stays behind.

Clipping: torch.nn.utils.clip_grad_norm_ (which scales by max_norm / (norm + 1e-6)) and the
exact rule encore and tf.clip_by_global_norm use (scale by max_norm / norm when norm > max_norm),
computed here with numpy; torch.clamp for clip_by_value.

Schedules: the learning rate torch.optim.lr_scheduler gives at each step (StepLR, ExponentialLR,
CosineAnnealingLR, and LinearLR(start_factor=1/W, total_iters=W-1) followed by a constant or a
CosineAnnealingLR for encore's LinearWarmup).
"""

import json
import math
import os
import warnings

import numpy as np
import torch

SEED = 20240611
STEPS = 5
SHAPES = [(2, 3), (4,)]
# The gradient scale at each step: large then small, so that the second-moment averages shrink.
SCALES = [1.0, 3.0, 0.2, 0.5, 2.0]


def rounded(rng, shape, scale=1.0):
    """Normal(0, scale) values rounded to 4 decimals, as an f64 tensor."""
    return torch.tensor(np.round(rng.normal(0.0, scale, size=shape), 4), dtype=torch.float64)


def encode(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def make_torch_optimizer(kind, params, o):
    """torch's optimizer for encore's kind and option names (missing options: defaults)."""
    o = dict(o)
    if kind == "SGD":
        return torch.optim.SGD(params, **o)
    if kind in ("Adam", "AdamW"):
        betas = (o.pop("beta1", 0.9), o.pop("beta2", 0.999))
        cls = torch.optim.Adam if kind == "Adam" else torch.optim.AdamW
        return cls(params, betas=betas, **o)
    if kind == "RMSProp":
        return torch.optim.RMSprop(params, **o)
    if kind == "Adagrad":
        return torch.optim.Adagrad(params, **o)
    raise ValueError(kind)


def optimizer_case(init, grads, kind, options, skip=()):
    params = [p.clone().requires_grad_(True) for p in init]
    opt = make_torch_optimizer(kind, params, options)
    after = []
    for step in range(STEPS):
        for i, p in enumerate(params):
            p.grad = None if (i == 1 and step in skip) else grads[step][i].clone()
        opt.step()
        after.append([encode(p) for p in params])
    return {"optimizer": kind, "options": options, "skip": list(skip), "after": after}


def optimizer_cases(rng):
    init = [rounded(rng, s) for s in SHAPES]
    grads = [[rounded(rng, s, scale) for s in SHAPES] for scale in SCALES]
    cases = {
        "sgd_plain": ("SGD", {"lr": 0.1}),
        "sgd_momentum": ("SGD", {"lr": 0.1, "momentum": 0.9}),
        "sgd_dampening": ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
        "sgd_nesterov": ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        "sgd_weight_decay": ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
        "sgd_momentum_weight_decay": ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1}),
        "sgd_nesterov_weight_decay": ("SGD", {"lr": 0.05, "momentum": 0.7, "nesterov": True,
                                              "weight_decay": 0.2}),
        "adam_defaults": ("Adam", {}),
        "adam": ("Adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6}),
        "adam_weight_decay": ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
        "adam_amsgrad": ("Adam", {"lr": 0.02, "beta2": 0.5, "amsgrad": True}),
        "adam_amsgrad_weight_decay": ("Adam", {"lr": 0.02, "beta1": 0.5, "beta2": 0.6,
                                               "weight_decay": 0.3, "amsgrad": True}),
        "adamw_defaults": ("AdamW", {}),
        "adamw": ("AdamW", {"lr": 0.01}),
        "adamw_weight_decay": ("AdamW", {"lr": 0.05, "beta1": 0.7, "weight_decay": 0.5}),
        "adamw_amsgrad": ("AdamW", {"lr": 0.02, "beta2": 0.5, "weight_decay": 0.1,
                                    "amsgrad": True}),
        "rmsprop_defaults": ("RMSProp", {}),
        "rmsprop": ("RMSProp", {"lr": 0.02, "alpha": 0.9, "eps": 1e-6}),
        "rmsprop_centered": ("RMSProp", {"lr": 0.01, "alpha": 0.8, "centered": True}),
        "rmsprop_momentum": ("RMSProp", {"lr": 0.01, "momentum": 0.9}),
        "rmsprop_weight_decay": ("RMSProp", {"lr": 0.01, "weight_decay": 0.2}),
        "rmsprop_centered_momentum_weight_decay": (
            "RMSProp", {"lr": 0.01, "alpha": 0.7, "momentum": 0.5, "weight_decay": 0.1,
                        "centered": True}),
        "adagrad_defaults": ("Adagrad", {}),
        "adagrad": ("Adagrad", {"lr": 0.1}),
        "adagrad_lr_decay": ("Adagrad", {"lr": 0.1, "lr_decay": 0.3}),
        "adagrad_weight_decay": ("Adagrad", {"lr": 0.1, "weight_decay": 0.2}),
        "adagrad_initial_accumulator": ("Adagrad", {"lr": 0.1,
                                                    "initial_accumulator_value": 0.5}),
        "adagrad_all": ("Adagrad", {"lr": 0.2, "lr_decay": 0.1, "weight_decay": 0.05,
                                    "initial_accumulator_value": 0.1, "eps": 1e-3}),
    }
    out = {name: optimizer_case(init, grads, kind, o) for name, (kind, o) in cases.items()}
    skipped = {
        "skip_sgd_momentum": ("SGD", {"lr": 0.1, "momentum": 0.9}),
        "skip_adam": ("Adam", {"lr": 0.01}),
        "skip_adamw_amsgrad": ("AdamW", {"lr": 0.02, "beta2": 0.5, "amsgrad": True}),
        "skip_rmsprop_centered_momentum": ("RMSProp", {"lr": 0.01, "momentum": 0.5,
                                                       "centered": True}),
        "skip_adagrad_lr_decay": ("Adagrad", {"lr": 0.1, "lr_decay": 0.3}),
    }
    for name, (kind, o) in skipped.items():
        out[name] = optimizer_case(init, grads, kind, o, skip=(1, 2))
    return {"init": [encode(p) for p in init],
            "grads": [[encode(g) for g in step] for step in grads],
            "cases": out}


def clip_cases(rng):
    grads = [rounded(rng, s, 2.0) for s in SHAPES]
    norm = math.sqrt(sum(float((g.numpy() ** 2).sum()) for g in grads))
    out = []
    for max_norm in (0.5 * norm, 2.0 * norm, 1.0):
        ts = [g.clone().requires_grad_(True) for g in grads]
        for t, g in zip(ts, grads):
            t.grad = g.clone()
        torch_norm = float(torch.nn.utils.clip_grad_norm_(ts, max_norm))
        scale = max_norm / norm if norm > max_norm else 1.0
        exact = [torch.tensor(g.numpy() * scale) for g in grads]
        out.append({"max_norm": max_norm, "norm": norm, "torch_norm": torch_norm,
                    "clipped": [encode(g) for g in exact],
                    "torch_clipped": [encode(t.grad) for t in ts]})
    by_value = []
    for limit in (0.5, 1.5):
        by_value.append({"limit": limit,
                         "clipped": [encode(torch.clamp(g, -limit, limit)) for g in grads]})
    return {"grads": [encode(g) for g in grads], "by_norm": out, "by_value": by_value}


def lr_sequence(make_schedulers, base_lr, n):
    """The lr torch uses at steps 0..n-1 (read before each scheduler.step())."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_schedulers(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def schedule_cases():
    S = torch.optim.lr_scheduler
    cases = {}
    cases["step_decay"] = {"base_lr": 0.1, "step_size": 3, "gamma": 0.5,
                           "lr": lr_sequence(lambda o: S.StepLR(o, 3, gamma=0.5), 0.1, 12)}
    cases["exponential_decay"] = {"base_lr": 0.05, "gamma": 0.9,
                                  "lr": lr_sequence(lambda o: S.ExponentialLR(o, 0.9), 0.05, 10)}
    cases["cosine_decay"] = {
        "base_lr": 0.1, "total_steps": 10, "min_lr": 0.001,
        "lr": lr_sequence(lambda o: S.CosineAnnealingLR(o, 10, eta_min=0.001), 0.1, 11)}
    cases["cosine_decay_to_zero"] = {
        "base_lr": 0.02, "total_steps": 7, "min_lr": 0.0,
        "lr": lr_sequence(lambda o: S.CosineAnnealingLR(o, 7), 0.02, 8)}
    W = 4
    cases["linear_warmup_constant"] = {
        "base_lr": 0.1, "warmup_steps": W,
        "lr": lr_sequence(lambda o: S.LinearLR(o, 1.0 / W, 1.0, W - 1), 0.1, 10)}
    cases["linear_warmup_cosine"] = {
        "base_lr": 0.1, "warmup_steps": W, "total_steps": 6, "min_lr": 0.0,
        "lr": lr_sequence(lambda o: S.SequentialLR(
            o, [S.LinearLR(o, 1.0 / W, 1.0, W - 1), S.CosineAnnealingLR(o, 6)], [W]), 0.1, 11)}
    # The closed forms encore documents; torch must agree with them (else this fixture is wrong).
    for name, c in cases.items():
        for s, lr in enumerate(c["lr"]):
            if name == "step_decay":
                want = 0.1 * 0.5 ** (s // 3)
            elif name == "exponential_decay":
                want = 0.05 * 0.9 ** s
            elif name.startswith("cosine"):
                T, lo, hi = c["total_steps"], c["min_lr"], c["base_lr"]
                want = lo + (hi - lo) * (1 + math.cos(math.pi * min(s, T) / T)) / 2
            elif name == "linear_warmup_constant":
                want = 0.1 * min(s + 1, W) / W
            else:
                want = 0.1 * (s + 1) / W if s < W else \
                    0.05 * (1 + math.cos(math.pi * (s - W) / 6))
            assert abs(lr - want) <= 1e-12 * abs(want) + 1e-15, (name, s, lr, want)
    return cases


def main():
    # SequentialLR steps its second scheduler with an explicit epoch, which torch 1.13 flags as
    # deprecated (the closed form it then uses is the value wanted here).
    warnings.filterwarnings("ignore", message="The epoch parameter", category=UserWarning)
    rng = np.random.default_rng(SEED)
    doc = {"about": "PyTorch reference values for nn/optim; made by make_optim_fixtures.py",
           "torch_version": torch.__version__, "dtype": "f64",
           "optimizers": optimizer_cases(rng), "clip": clip_cases(rng),
           "schedules": schedule_cases()}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_fixtures.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes, "
          f"{len(doc['optimizers']['cases'])} optimizer cases)")


if __name__ == "__main__":
    main()
