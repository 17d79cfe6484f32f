#!/usr/bin/env python3
"""Writes the --init fixture of tests/models/test_dense.cpp with PyTorch.

A small DenseAutoencoder (input 12, hidden [8], code 3, batch norm with eps 1e-3, ReLU code,
sigmoid output) built as PyTorch nn.Sequential modules under encore's parameter names, its
weights, batch-norm parameters and running statistics set to random values, saved as a
safetensors file (written here with json + numpy, the format's own layout: u64 little-endian
header length, JSON header, raw little-endian data), so the C++ test shows that weights made in
PyTorch load into encore by name and compute the same thing:

  tests/golden/dense_init.safetensors   the state (encoder.0.weight, encoder.1.running_mean, ...)
  tests/golden/dense_init_fixture.json  an input batch, the model's output for it in eval mode
                                        (running statistics) and in training mode (batch
                                        statistics), and the per-image L2 loss in training mode

Run with Debian's PyTorch: /usr/bin/python3 tests/golden/make_init_fixture.py
"""
import json
import os

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
INPUT, HIDDEN, CODE, EPS = 12, 8, 3, 1e-3


def build():
    encoder = nn.Sequential(
        nn.Linear(INPUT, HIDDEN), nn.BatchNorm1d(HIDDEN, eps=EPS), nn.ReLU(),
        nn.Linear(HIDDEN, CODE), nn.BatchNorm1d(CODE, eps=EPS), nn.ReLU())
    decoder = nn.Sequential(
        nn.Linear(CODE, HIDDEN), nn.BatchNorm1d(HIDDEN, eps=EPS), nn.ReLU(),
        nn.Linear(HIDDEN, INPUT))
    model = nn.Module()
    model.encoder = encoder
    model.decoder = decoder
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape) * 0.3)
            else:
                t.copy_(torch.randn(t.shape) * 0.5)
    return model


def forward(model, x):
    return torch.sigmoid(model.decoder(model.encoder(x)))


def write_safetensors(path, state):
    kinds = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}
    header = {"__metadata__": {"format": "pt", "source": "make_init_fixture.py"}}
    chunks, offset = [], 0
    for name in sorted(state):
        arr = np.array(state[name].detach().numpy(), order="C")  # keeps 0-d shapes
        arr = arr.astype(arr.dtype.newbyteorder("<"))
        b = arr.tobytes()
        header[name] = {"dtype": kinds[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in chunks:
            f.write(b)


def tensor_json(t):
    t = t.detach().double()
    return {"shape": list(t.shape), "data": t.flatten().tolist()}


def main():
    torch.manual_seed(2006)
    model = build()
    x = torch.rand(5, INPUT)
    model.eval()
    with torch.no_grad():
        eval_out = forward(model, x)
    model.train()
    train_model = build()  # a copy for the training-mode pass (it updates running stats)
    train_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        train_out = forward(train_model, x)
        l2 = torch.sqrt(((train_out - x) ** 2).sum(1)).mean()
    write_safetensors(os.path.join(HERE, "dense_init.safetensors"), model.state_dict())
    fixture = {
        "about": "make_init_fixture.py: DenseAutoencoder(12-8-3) state from PyTorch "
                 + torch.__version__,
        "options": {"input": INPUT, "hidden": [HIDDEN], "code": CODE, "bn_eps": EPS},
        "names": sorted(model.state_dict()),
        "input": tensor_json(x),
        "eval_output": tensor_json(eval_out),
        "train_output": tensor_json(train_out),
        "train_l2_loss": float(l2),
        "encoder.0.weight": tensor_json(model.state_dict()["encoder.0.weight"]),
    }
    with open(os.path.join(HERE, "dense_init_fixture.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print("make_init_fixture.py: wrote dense_init.safetensors and dense_init_fixture.json")


if __name__ == "__main__":
    main()
