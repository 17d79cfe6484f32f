#!/usr/bin/python3
"""The models of bench/bench_models.cpp in PyTorch (Debian's python3-torch), for side-by-side
timing: the same shapes, the same synthetic data, the same training step (forward, backward,
Adam) and the same one-line JSON output (impl "pytorch").

  /usr/bin/python3 bench/torch_models.py --model dense_ae [--threads N] [--steps K] ...

--threads sets torch's intra-op threads. OpenBLAS's own threads (its sgemm) follow
OPENBLAS_NUM_THREADS, which the launcher (scripts/bench) sets; PyTorch never changes them.
The written code is the idiomatic PyTorch of each model, not a transcription of encore's.
"""
import argparse
import ctypes
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DenseAE(nn.Module):
    """Seed 004: 784-400-300-200-20 and back, Linear -> BatchNorm1d -> ReLU, sigmoid output,
    loss the mean over the batch of each image's L2 reconstruction distance."""

    def __init__(self, sizes=(784, 400, 300, 200, 20)):
        super().__init__()
        enc = []
        for a, b in zip(sizes, sizes[1:]):
            enc += [nn.Linear(a, b), nn.BatchNorm1d(b, eps=1e-3, momentum=0.1), nn.ReLU()]
        rev = sizes[::-1]
        dec = []
        for i, (a, b) in enumerate(zip(rev, rev[1:])):
            dec.append(nn.Linear(a, b))
            if i < len(rev) - 2:
                dec += [nn.BatchNorm1d(b, eps=1e-3, momentum=0.1), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def loss(self, x):
        out = torch.sigmoid(self.decoder(self.encoder(x)))
        return torch.linalg.vector_norm(out - x, dim=1).mean()


class VAE(nn.Module):
    """PyTorch's examples/vae: 784-400-(20, 20)-400-784, -ELBO per image."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def loss(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.fc4(F.relu(self.fc3(z)))
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kld) / x.shape[0]


class ConvAE(nn.Module):
    """Seed 002: two strided 'valid' convolutions, a 100-d code, a dense layer reshaped to
    (32, 7, 7) and four 'same' transposed convolutions; mean binary cross-entropy."""

    def __init__(self, c=32, latent=100):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, stride=2)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2)
        self.code = nn.Linear(c * 6 * 6, latent)
        self.dense = nn.Linear(latent, 7 * 7 * c)
        self.deconv1 = nn.ConvTranspose2d(c, 2 * c, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1)
        self.deconv3 = nn.ConvTranspose2d(c, 1, 3, stride=1, padding=1)
        self.deconv4 = nn.ConvTranspose2d(1, 1, 3, stride=1, padding=1)
        self.c = c

    def loss(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        z = self.code(h.flatten(1))
        h = F.relu(self.dense(z)).view(-1, self.c, 7, 7)
        h = F.relu(self.deconv2(F.relu(self.deconv1(h))))
        logits = self.deconv4(self.deconv3(h))
        return F.binary_cross_entropy_with_logits(logits, x)


class LSTMAE(nn.Module):
    """Seeds 000/003: an encoder LSTM's final state is the code; the repeat decoder reads h at
    every step from a zero state, the seq2seq decoder starts from (h, c) and is teacher-forced."""

    def __init__(self, decoder, input_dim=8, hidden=20):
        super().__init__()
        self.kind = decoder
        self.encoder = nn.LSTM(input_dim, hidden, batch_first=True)
        self.decoder = nn.LSTM(hidden if decoder == "repeat" else input_dim, hidden,
                               batch_first=True)
        self.output = nn.Linear(hidden, input_dim)

    def loss(self, x):
        _, (h, c) = self.encoder(x)
        if self.kind == "repeat":
            steps = x.shape[1]
            out, _ = self.decoder(h[0].unsqueeze(1).expand(-1, steps, -1).contiguous())
        else:
            shifted = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
            out, _ = self.decoder(shifted, (h, c))
        return F.binary_cross_entropy_with_logits(self.output(out), x)


class RecursiveAE(nn.Module):
    """Seed 001, literally: every candidate merge of the greedy all-pairs procedure computed
    on the autograd graph, the lowest merged each round."""

    def __init__(self, n=10):
        super().__init__()
        self.encoder = nn.Linear(2 * n, n)
        self.decoder = nn.Linear(n, 2 * n)

    def merge(self, a, b):
        c = torch.cat([a[0], b[0]])
        h = self.encoder(c)
        o = self.decoder(h)
        return (h, 0.5 * torch.sum((o - c) ** 2) + a[1] + b[1])

    def loss(self, leaves):
        zero = torch.zeros(())
        x = [(leaves[i], zero) for i in range(leaves.shape[0])]
        while len(x) > 1:
            best, bi, bj, node = float("inf"), 0, 0, None
            for i in range(len(x)):
                for j in range(i + 1, len(x)):
                    cand = self.merge(x[i], x[j])
                    s = cand[1].item()
                    if s < best:
                        best, bi, bj, node = s, i, j, cand
            x[bi] = node
            del x[bj]
        return x[0][1]


def cpu_name():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                info.setdefault(k.strip(), v.strip())
    return "%s (family %s, model %s)" % (info.get("model name", "?"), info.get("cpu family", "?"),
                                         info.get("model", "?"))


def blas_kernel():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="dense_ae",
                   choices=["dense_ae", "conv_ae", "lstm_ae", "recursive_ae", "vae"])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--decoder", default="repeat", choices=["repeat", "seq2seq"])
    p.add_argument("--steps-per-seq", type=int, default=10)
    p.add_argument("--impl", default="literal", choices=["literal"])
    p.add_argument("--leaves", type=int, default=20)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    variant = ""
    if a.model == "dense_ae":
        batch = a.batch_size or 128
        model, data, lr, eps = DenseAE(), torch.rand(batch, 784), 1e-3, 1e-8
    elif a.model == "vae":
        batch = a.batch_size or 128
        model, data, lr, eps = VAE(), torch.rand(batch, 784), 1e-3, 1e-8
    elif a.model == "conv_ae":
        batch = a.batch_size or 1000
        model, data, lr, eps = ConvAE(), torch.rand(batch, 1, 28, 28), 1e-4, 1e-8
    elif a.model == "lstm_ae":
        batch = a.batch_size or 100
        variant = a.decoder
        data = (torch.rand(batch, a.steps_per_seq, 8) > 0.875).float()
        model, lr, eps = LSTMAE(a.decoder), 1e-3, 1e-8
    else:
        batch = 1
        variant = "%s_%d" % (a.impl, a.leaves)
        if a.leaves == 20:
            data = torch.cat([torch.ones(10, 10) * torch.arange(10.0)[:, None]] * 2)
        else:
            data = torch.randn(a.leaves, 10)
        model, lr, eps = RecursiveAE(), 1e-3, 1e-7
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=eps)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(data)
        value = loss.item()
        loss.backward()
        opt.step()
        return value

    first_step_end, loss = 0.0, 0.0
    for i in range(a.warmup):
        loss = step()
        if i == 0:
            first_step_end = time.time()
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        ms.append(1e3 * (time.perf_counter() - t0))
    ms.sort()
    h = len(ms) // 2
    median = ms[h] if len(ms) % 2 else 0.5 * (ms[h - 1] + ms[h])
    print(json.dumps({
        "impl": "pytorch", "model": a.model, "variant": variant, "batch": batch,
        "threads": a.threads, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        "steps": a.steps, "median_ms": median, "min_ms": ms[0], "max_ms": ms[-1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "first_step_end": first_step_end, "blas_kernel": blas_kernel(),
        "torch": torch.__version__, "cpu": cpu_name(), "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
