#!/usr/bin/env python3
"""Bad flags given to the example programs: each probe runs one program with one bad flag and
expects it to stop before any training with a non-zero exit status (not a signal), and a
message on stderr that names the flag and holds each expected part.

    flag_probes.py BUILD_EXAMPLES_DIR MNIST_DIR

Exits 77 (meson's "skipped") when BUILD_EXAMPLES_DIR is "none" (examples not built).
Standard library only."""
import concurrent.futures
import os
import subprocess
import sys
import tempfile

# (program, flags, parts the message must hold). {data} is the small MNIST folder.
PROBES = [
    ("dense_ae", ["--lr", "nan"], ["--lr", "nan"]),
    ("dense_ae", ["--lr", "-1"], ["--lr"]),
    ("dense_ae", ["--lr", "1e999"], ["--lr", "1e999"]),
    ("dense_ae", ["--seed", "-1"], ["--seed", "-1"]),
    ("dense_ae", ["--seed", "99999999999999999999999"], ["--seed", "2^64"]),
    ("dense_ae", ["--epochs", "0"], ["--epochs"]),
    ("dense_ae", ["--batch-size", "-3"], ["--batch-size"]),
    ("dense_ae", ["--threads", "5000"], ["--threads"]),
    ("dense_ae", ["--code", "1000000000000"], ["--code", "1000000000000"]),
    ("dense_ae", ["--code", "0"], ["--code"]),
    ("dense_ae", ["--hidden", "0"], ["--hidden", "0"]),
    ("dense_ae", ["--hidden", "64,-5"], ["--hidden", "-5"]),
    ("dense_ae", ["--hidden", "sixty"], ["--hidden"]),
    ("dense_ae", ["--pca-components", "1000"], ["--pca-components", "1000"]),
    ("dense_ae", ["--loss", "hinge"], ["--loss", "hinge"]),
    ("dense_ae", ["--data", "/nonexistent/encore/mnist"], ["--data", "/nonexistent/encore/mnist"]),
    ("dense_ae", ["--data", "README.md"], ["--data", "README.md"]),
    ("dense_ae", ["--init", "/nonexistent/encore/w.safetensors"], ["--init"]),
    ("dense_ae", ["--init", "README.md"], ["--init", "README.md", "load_safetensors"]),
    ("dense_ae", ["--checkpoint-every", "-1"], ["--checkpoint-every"]),
    ("dense_ae", ["--train-limit", "-1"], ["--train-limit"]),
    ("dense_ae", ["--no-such-flag"], ["--no-such-flag"]),
    ("conv_ae", ["--channels", "1000000000"], ["--channels", "1000000000"]),
    ("conv_ae", ["--latent", "0"], ["--latent"]),
    ("denoising_ae", ["--channels", "0"], ["--channels"]),
    ("denoising_ae", ["--code", "10000000"], ["--code"]),
    ("vae", ["--hidden", "0"], ["--hidden"]),
    ("vae", ["--code", "-2"], ["--code"]),
    ("lstm_ae", ["--export-codes", "/nonexistent/encore/codes.safetensors"],
     ["--export-codes", "/nonexistent/encore"]),
    ("lstm_ae", ["--hidden", "0"], ["--hidden"]),
    ("lstm_ae", ["--data", "{data}"], ["--data"]),
    ("lstm_ae", ["--decoder", "gru"], ["--decoder", "gru"]),
    ("recursive_ae", ["--data", "{data}"], ["--data"]),
    ("recursive_ae", ["--lr", "nan"], ["--lr", "nan"]),
]

# The sweep: every example program x each of its numeric, choice and path flags x the bad
# values of that kind of flag. Each value must be refused before training, naming the flag.
POSITIVE = ["0", "-1", "nan", "inf", "1e999", "x", "99999999999999999999"]  # counts > 0
NON_NEGATIVE = ["-1", "nan", "x", "1e999"]                                    # counts >= 0
POSITIVE_REAL = ["nan", "-1", "0", "inf", "x"]                                # lr and budgets
NON_NEGATIVE_REAL = ["nan", "-1", "inf", "x"]
PROBABILITY = ["1.5", "-0.1", "nan", "x"]
CHOICE = ["bogus", ""]
SEED = ["-1", "nan", "1.5", "x", "18446744073709551616"]
THREADS = ["-1", "1025", "nan", "x"]
MISSING = "/nonexistent/encore/missing"

COMMON = [("--epochs", POSITIVE), ("--batch-size", POSITIVE), ("--lr", POSITIVE_REAL),
          ("--seed", SEED), ("--threads", THREADS), ("--checkpoint-every", NON_NEGATIVE),
          ("--train-limit", NON_NEGATIVE), ("--test-limit", NON_NEGATIVE),
          ("--init", [MISSING + ".safetensors", "/tmp"])]
DATA = [("--data", [MISSING, "README.md"])]
OWN = {
    "dense_ae": [("--code", POSITIVE), ("--hidden", POSITIVE + ["64,x"]),
                 ("--loss", CHOICE), ("--pca-components", NON_NEGATIVE + ["785"])],
    "conv_ae": [("--latent", POSITIVE), ("--channels", POSITIVE)],
    "denoising_ae": [("--model", CHOICE), ("--noise-sigma", NON_NEGATIVE_REAL),
                     ("--mask-prob", PROBABILITY), ("--latent", POSITIVE),
                     ("--channels", POSITIVE), ("--code", POSITIVE), ("--dense-loss", CHOICE)],
    "lstm_ae": [("--dataset", CHOICE), ("--decoder", CHOICE), ("--feedback", CHOICE),
                ("--hidden", POSITIVE), ("--show", NON_NEGATIVE),
                ("--export-codes", [MISSING + "/codes.safetensors", "/tmp"])],
    "recursive_ae": [("--mode", CHOICE), ("--impl", CHOICE),
                     ("--leaves", ["1", "-1", "100001", "nan", "x"]),
                     ("--dim", ["0", "-1", "4097", "x"]), ("--timing-max", ["19", "5001", "x"]),
                     ("--literal-budget", POSITIVE_REAL), ("--timing-reps", ["0", "101", "x"])],
    "vae": [("--code", POSITIVE), ("--hidden", POSITIVE), ("--manifold", ["1", "61", "x"])],
    "custom_layer": [("--code", POSITIVE), ("--swish", CHOICE)],
}
HAS_DATA_FLAG = {"dense_ae", "conv_ae", "denoising_ae", "vae", "custom_layer"}


def sweep():
    seen = {(prog, tuple(flags)) for prog, flags, _ in PROBES}
    out = []
    for prog in sorted(OWN):
        flags = COMMON + (DATA if prog in HAS_DATA_FLAG else []) + OWN[prog]
        for flag, values in flags:
            for v in values:
                if (prog, (flag, v)) in seen:
                    continue
                seen.add((prog, (flag, v)))
                # The message must name the flag, and the value when there is one to show.
                # ("64,x": the message names the element at fault, 'x').
                shown = v.split(",")[-1]
                if v.startswith(MISSING):  # a missing file may be named by its folder
                    shown = "/nonexistent/encore"
                parts = [flag] + ([shown] if shown and v != "/tmp" else [])
                out.append((prog, [flag, v], parts))
    return out


PROBES += sweep()

# Programs that read MNIST get the small committed subset, so a flag that is wrongly accepted
# fails fast in training instead of reading the full set.
MNIST_PROGRAMS = {"dense_ae", "conv_ae", "denoising_ae", "vae", "custom_layer"}


def probe(exe_dir, data, repo, tmp, i, prog, flags, parts):
    """Runs one probe; returns (ok, report line)."""
    flags = [f.replace("{data}", data) for f in flags]
    cmd = [os.path.join(exe_dir, prog)] + flags
    if prog in MNIST_PROGRAMS and "--data" not in flags:
        cmd += ["--data", data]
    cmd += ["--epochs", "1"] if "--epochs" not in flags else []
    cmd += ["--out", os.path.join(tmp, "out%d" % i), "--quiet"]
    what = "%s %s" % (prog, " ".join(flags))
    try:
        p = subprocess.run(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return False, "FAIL %s: still running after 120 s (accepted?)" % what
    err = p.stderr.decode(errors="replace")
    missing = [x for x in parts if x not in err]
    if p.returncode <= 0 or p.returncode >= 128 or missing:
        return False, "FAIL %s: exit %d, missing %s in:\n%s" % (what, p.returncode, missing, err)
    first = next((line for line in err.splitlines() if line.strip()), "")
    return True, "ok   %s -> %s" % (what, first)


def main():
    exe_dir, data = sys.argv[1], os.path.abspath(sys.argv[2])
    if exe_dir == "none":
        return 77
    repo = os.environ.get("ENCORE_SOURCE_ROOT", os.getcwd())
    # The probes are independent processes that mostly wait on start-up: run a few at a time.
    workers = max(2, min(8, 2 * (os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(prefix="encore_flag_probes_") as tmp:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda a: probe(exe_dir, data, repo, tmp, *a),
                                    [(i,) + p for i, p in enumerate(PROBES)]))
    for _, line in results:
        print(line)
    failures = sum(1 for ok, _ in results if not ok)
    print("%d of %d flag probes passed" % (len(PROBES) - failures, len(PROBES)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
