#!/usr/bin/env python3
"""No lost work: kills a real training run (examples/dense_ae, one thread, a checkpoint every
few steps) with SIGKILL at random moments and resumes it with --resume each time, at least
KILLS times in all. After every kill a readable checkpoint remains (once the first one was
written) and at most one interrupted save's temp file is left; every run resumed to the end
finishes with the same checkpoint tensors, step and final metrics as an uninterrupted run,
bitwise, and no temp file. Then SIGINT during training: the program writes a checkpoint and
exits 0, and resuming it also ends bitwise equal.

    kill_test.py DENSE_AE MNIST_DIR [--kills N] [--seed S]

Exits 77 (meson's "skipped") when DENSE_AE is "none" (examples not built, e.g. under
scripts/test --sanitize). Standard library only."""
import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

CHECKPOINT = "checkpoint.safetensors"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read_checkpoint(path):
    """Parses a safetensors checkpoint as encore's loader would (header length, JSON, the
    tensors tiling the data section exactly, the checkpoint format); returns (metadata,
    {name: bytes}). Raises ValueError when the file is not a readable checkpoint."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%d bytes, shorter than the header length" % len(data))
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("header length %d past the end (%d bytes)" % (n, len(data)))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    if meta.get("format") != "encore-checkpoint-1":
        raise ValueError("metadata format is %r" % meta.get("format"))
    spans = sorted((tuple(v["data_offsets"]), k) for k, v in header.items())
    cursor = 0
    for (begin, end), name in spans:
        if begin != cursor:
            raise ValueError("tensor %s begins at %d, expected %d" % (name, begin, cursor))
        cursor = end
    if cursor != len(body):
        raise ValueError("tensors cover %d of %d data bytes" % (cursor, len(body)))
    tensors = {k: body[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}
    return meta, tensors


def temp_files(run_dir):
    if not os.path.isdir(run_dir):
        return []
    return sorted(f for f in os.listdir(run_dir) if ".tmp." in f)


class Runner:
    def __init__(self, exe, data):
        self.exe = exe
        self.data = data

    def command(self, resume):
        # 20 steps an epoch, 120 in all, a checkpoint every 3: a kill lands in a save often.
        cmd = [self.exe, "--data", self.data, "--train-limit", "320", "--test-limit", "64",
               "--hidden", "64,32", "--code", "8", "--batch-size", "16", "--epochs", "6",
               "--checkpoint-every", "3", "--threads", "1", "--seed", "3", "--out", "run",
               "--quiet"]
        return cmd + (["--resume"] if resume else [])

    def start(self, cwd, resume=True):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        return subprocess.Popen(self.command(resume), cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def run(self, cwd, resume=True):
        p = self.start(cwd, resume)
        out, _ = p.communicate()
        if p.returncode != 0:
            fail("%s exited %d:\n%s" % (" ".join(self.command(resume)), p.returncode,
                                        out.decode(errors="replace")))
        return out.decode(errors="replace")


def result(cwd):
    """What must match bitwise: every checkpoint tensor, step and epoch, the final metrics."""
    run_dir = os.path.join(cwd, "run")
    meta, tensors = read_checkpoint(os.path.join(run_dir, CHECKPOINT))
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return {"tensors": tensors, "step": meta["step"], "epoch": meta["epoch"],
            "final_metrics": metrics["final_metrics"]}


def compare(got, want, what):
    if got["step"] != want["step"] or got["epoch"] != want["epoch"]:
        fail("%s: ended at step %s epoch %s, the uninterrupted run at step %s epoch %s"
             % (what, got["step"], got["epoch"], want["step"], want["epoch"]))
    if set(got["tensors"]) != set(want["tensors"]):
        fail("%s: checkpoint tensors %s differ from %s"
             % (what, sorted(got["tensors"]), sorted(want["tensors"])))
    differ = [k for k in want["tensors"] if got["tensors"][k] != want["tensors"][k]]
    if differ:
        fail("%s: tensors not bitwise equal to the uninterrupted run's: %s" % (what, differ))
    if got["final_metrics"] != want["final_metrics"]:
        fail("%s: final metrics %s, uninterrupted %s"
             % (what, got["final_metrics"], want["final_metrics"]))


def check_after_kill(run_dir, saved_once):
    """After a kill: a readable checkpoint once one was written, at most one temp file."""
    path = os.path.join(run_dir, CHECKPOINT)
    if os.path.exists(path):
        try:
            read_checkpoint(path)
        except (ValueError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as e:
            fail("after a SIGKILL the checkpoint is not readable: %s" % e)
        saved_once = True
    elif saved_once:
        fail("after a SIGKILL the checkpoint is gone")
    temps = temp_files(run_dir)
    if len(temps) > 1:
        fail("temp files pile up after SIGKILLs: %s" % temps)
    return saved_once, len(temps) == 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("exe")
    ap.add_argument("data")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if args.exe == "none" or not os.path.exists(args.exe):
        print("examples not built: skipped")
        return 77
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print("random seed %d (rerun with --seed %d)" % (seed, seed))
    rng = random.Random(seed)
    runner = Runner(os.path.abspath(args.exe), os.path.abspath(args.data))
    top = tempfile.mkdtemp(prefix="encore_kill_test_")
    try:
        ref_dir = os.path.join(top, "reference")
        os.makedirs(ref_dir)
        t0 = time.monotonic()
        runner.run(ref_dir, resume=False)
        duration = time.monotonic() - t0
        want = result(ref_dir)
        print("uninterrupted run: %.2f s, step %s" % (duration, want["step"]))

        # Rounds of kill + resume until the run completes; a new round until KILLS kills.
        kills = rounds = in_saves = 0
        while kills < args.kills:
            rounds += 1
            cwd = os.path.join(top, "round%d" % rounds)
            os.makedirs(cwd)
            run_dir = os.path.join(cwd, "run")
            saved_once, round_kills = False, 0
            while True:
                p = runner.start(cwd)
                time.sleep(rng.uniform(0, duration))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.communicate()
                    kills += 1
                    round_kills += 1
                    saved_once, in_save = check_after_kill(run_dir, saved_once)
                    in_saves += in_save
                    continue
                out, _ = p.communicate()
                if p.returncode != 0:
                    fail("a resumed run exited %d:\n%s"
                         % (p.returncode, out.decode(errors="replace")))
                break
            if temp_files(run_dir):
                fail("temp files left after the run finished: %s" % temp_files(run_dir))
            compare(result(cwd), want, "round %d (%d kills)" % (rounds, round_kills))
            print("round %d: %d SIGKILLs, resumed to the end bitwise equal" % (rounds, round_kills))
        print("%d SIGKILLs in %d rounds, %d of them during a save (a temp file left)"
              % (kills, rounds, in_saves))

        # SIGINT once training has begun (the first checkpoint exists): checkpoint, exit 0.
        cwd = os.path.join(top, "sigint")
        os.makedirs(cwd)
        path = os.path.join(cwd, "run", CHECKPOINT)
        p = runner.start(cwd, resume=False)
        while not os.path.exists(path) and p.poll() is None:
            time.sleep(0.005)
        if p.poll() is not None:
            fail("the run ended before its first checkpoint")
        time.sleep(rng.uniform(0, duration / 4))
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate()
        out = out.decode(errors="replace")
        if p.returncode != 0:
            fail("after SIGINT the program exited %d, expected 0:\n%s" % (p.returncode, out))
        meta, _ = read_checkpoint(path)
        if int(meta["step"]) >= int(want["step"]):
            fail("SIGINT came after the last step: the test needs a longer run")
        print("SIGINT: exit 0, checkpoint at step %s" % meta["step"])
        runner.run(cwd)
        compare(result(cwd), want, "resumed after SIGINT")
        print("resumed after SIGINT: bitwise equal")
        return 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
