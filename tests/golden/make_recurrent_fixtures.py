#!/usr/bin/python3
"""Golden fixtures for nn/recurrent (LSTMCell, LSTM, GRUCell, GRU) computed with PyTorch.

Run with Debian's Python, which has torch and numpy (the python3 on PATH may not):

    /usr/bin/python3 tests/golden/make_recurrent_fixtures.py

It writes tests/golden/recurrent_fixtures.json next to this script. Everything is f64.
Each case holds the module's configuration, its parameters under PyTorch's names, the inputs,
the outputs, one fixed cotangent ("weights") per output, and the gradients of

    loss = sum over outputs o of sum(o * weights[o])

with respect to every input and every parameter. Parameters and inputs are rounded to four
decimals so that the file stays small and the values are exactly what both sides read;
outputs and gradients keep full precision (Python's shortest round-trip repr).

Padded cases run PyTorch on a PackedSequence (pack_padded_sequence with enforce_sorted=False)
and unpack the output with pad_packed_sequence(total_length=T): that is the reference for
"h_n/c_n at each sequence's last valid step, zeros in the output past its end". The padded
positions of x hold random values, not zeros, so ignoring them is actually tested.
"""

import json
import os

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

N, T, I, H = 3, 5, 4, 6
SEED = 20240601


def rounded(rng, shape, scale=1.0):
    """Uniform(-scale, scale) values rounded to 4 decimals, as an f64 tensor."""
    return torch.tensor(np.round(rng.uniform(-scale, scale, size=shape), 4), dtype=torch.float64)


def encode(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def set_params(module, rng):
    """Replaces every parameter by rounded uniform(-0.5, 0.5) values, in PyTorch's order."""
    params = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(rounded(rng, tuple(p.shape), 0.5))
            params[name] = p
    return params


def finish(case, module, inputs, outputs, rng):
    """Adds cotangents, the loss's gradients and the encoded tensors to case."""
    weights = {k: rounded(rng, tuple(v.shape)) for k, v in outputs.items()}
    loss = sum((outputs[k] * weights[k]).sum() for k in outputs)
    names = list(inputs) + [n for n, _ in module.named_parameters()]
    tensors = list(inputs.values()) + [p for _, p in module.named_parameters()]
    grads = torch.autograd.grad(loss, tensors)
    case["params"] = {n: encode(p) for n, p in module.named_parameters()}
    case["inputs"] = {k: encode(v) for k, v in inputs.items()}
    case["outputs"] = {k: encode(v) for k, v in outputs.items()}
    case["weights"] = {k: encode(v) for k, v in weights.items()}
    case["grads"] = {n: encode(g) for n, g in zip(names, grads)}
    return case


def sequence_case(kind, num_layers, lengths, rng):
    """An LSTM or GRU over (N, T, I) with a given initial state, optionally padded."""
    cls = torch.nn.LSTM if kind == "LSTM" else torch.nn.GRU
    module = cls(I, H, num_layers=num_layers, batch_first=True).double()
    set_params(module, rng)
    x = rounded(rng, (N, T, I)).requires_grad_()
    h0 = rounded(rng, (num_layers, N, H)).requires_grad_()
    inputs = {"x": x, "h0": h0}
    if kind == "LSTM":
        c0 = rounded(rng, (num_layers, N, H)).requires_grad_()
        inputs["c0"] = c0
        state = (h0, c0)
    else:
        state = h0

    if lengths is None:
        out, hidden = module(x, state)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=False)
        out_packed, hidden = module(packed, state)
        out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=T)

    outputs = {"output": out}
    if kind == "LSTM":
        outputs["h_n"], outputs["c_n"] = hidden
    else:
        outputs["h_n"] = hidden
    case = {"module": kind, "input_size": I, "hidden_size": H, "num_layers": num_layers,
            "batch_first": True, "lengths": lengths}
    return finish(case, module, inputs, outputs, rng)


def cell_case(kind, rng):
    """One step of an LSTMCell or GRUCell from a given state."""
    cls = torch.nn.LSTMCell if kind == "LSTMCell" else torch.nn.GRUCell
    module = cls(I, H).double()
    set_params(module, rng)
    x = rounded(rng, (N, I)).requires_grad_()
    h = rounded(rng, (N, H)).requires_grad_()
    inputs = {"x": x, "h": h}
    if kind == "LSTMCell":
        c = rounded(rng, (N, H)).requires_grad_()
        inputs["c"] = c
        h1, c1 = module(x, (h, c))
        outputs = {"h": h1, "c": c1}
    else:
        outputs = {"h": module(x, h)}
    case = {"module": kind, "input_size": I, "hidden_size": H}
    return finish(case, module, inputs, outputs, rng)


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    # Unsorted lengths, one full and one of length 1, so that both the permutation inside
    # PackedSequence and a sequence that stops after its first step are covered.
    lengths = [3, 5, 1]
    cases = {
        "lstm_cell": cell_case("LSTMCell", rng),
        "gru_cell": cell_case("GRUCell", rng),
        "lstm_l1": sequence_case("LSTM", 1, None, rng),
        "lstm_l2": sequence_case("LSTM", 2, None, rng),
        "lstm_l2_padded": sequence_case("LSTM", 2, lengths, rng),
        "gru_l1": sequence_case("GRU", 1, None, rng),
        "gru_l2": sequence_case("GRU", 2, None, rng),
        "gru_l2_padded": sequence_case("GRU", 2, lengths, rng),
    }
    doc = {
        "about": "PyTorch reference values for nn/recurrent; made by make_recurrent_fixtures.py",
        "torch_version": torch.__version__,
        "dtype": "f64",
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recurrent_fixtures.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
