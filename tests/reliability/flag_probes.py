#!/usr/bin/env python3
"""Bad flags given to the example programs: each probe runs one program with one bad flag and
expects it to stop before any training with a non-zero exit status (not a signal), and a
message on stderr that names the flag and holds each expected part.

    flag_probes.py BUILD_EXAMPLES_DIR MNIST_DIR

Exits 77 (meson's "skipped") when BUILD_EXAMPLES_DIR is "none" (examples not built).
Standard library only."""
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

# Programs that read MNIST get the small committed subset, so a flag that is wrongly accepted
# fails fast in training instead of reading the full set.
MNIST_PROGRAMS = {"dense_ae", "conv_ae", "denoising_ae", "vae"}


def main():
    exe_dir, data = sys.argv[1], os.path.abspath(sys.argv[2])
    if exe_dir == "none":
        return 77
    repo = os.environ.get("ENCORE_SOURCE_ROOT", os.getcwd())
    failures = 0
    with tempfile.TemporaryDirectory(prefix="encore_flag_probes_") as tmp:
        for i, (prog, flags, parts) in enumerate(PROBES):
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
                print("FAIL %s: still running after 120 s (accepted?)" % what)
                failures += 1
                continue
            err = p.stderr.decode(errors="replace")
            missing = [x for x in parts if x not in err]
            if p.returncode <= 0 or p.returncode >= 128 or missing:
                print("FAIL %s: exit %d, missing %s in:\n%s" % (what, p.returncode, missing, err))
                failures += 1
            else:
                first = next((line for line in err.splitlines() if line.strip()), "")
                print("ok   %s -> %s" % (what, first))
    print("%d of %d flag probes passed" % (len(PROBES) - failures, len(PROBES)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
