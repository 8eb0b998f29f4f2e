"""Data-parallel training end to end, on 127.0.0.1 only: N ranks compute what one process computes,
the loader threads change nothing, a killed rank stops the others with one line and the run resumes
with any number of ranks, and bad launches fail fast naming the variable.

Usage: /usr/bin/python3 distributed_test.py PATH/TO/fcn
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FCN, check, one_line_error, path, run, summary  # noqa: E402

# One thread per process, as each of --nproc 2's ranks gets on this 2-core machine: with two threads the
# single-process reference sums its convolutions' weight gradients in another order (oneDNN splits the
# reduction by thread), and AdamW magnifies that roundoff to ~1.4e-5 on an AVX-512 Zen 5, beside ~2e-6
# between the ranks and one thread. The comparisons below are of the distributed logic, not of reduction order.
os.environ["OMP_NUM_THREADS"] = "1"

# A U-Net without batch norm or dropout: the per-rank batches then compute exactly the whole batch.
NET = ["--arch", "unet", "--depth", 2, "--base-channels", 4]
AUGMENT = ["--flip", "--crop", 24, "--scale-min", "0.8", "--scale-max", "1.2"]


def weights(model_file):
    return torch.load(model_file)["state_dict"]


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def val_lines(run_dir):
    return [json.loads(line)["val"] for line in open(os.path.join(run_dir, "metrics.jsonl"))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank, world, port, **more):
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    env.update({k: str(v) for k, v in more.items()})
    return env


def start(args, env):
    return subprocess.Popen([FCN, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


run("data", "fashion-scenes", "--out", path("scenes"), "--train", 10, "--val", 5, "--size", 32)


def train(name, *flags, epochs=2, batch=4):
    return run("train", "--data", path("scenes"), *NET, "--epochs", epochs, "--batch", batch, "--seed", 7,
               "--out", path(name + ".fcn"), *flags)


@check("2 ranks x batch 2 give the weights and validation of 1 rank x batch 4 (SGD and AdamW)")
def _():
    for optimizer in ("sgd", "adamw"):
        flags = ["--optimizer", optimizer, "--lr", "0.05" if optimizer == "sgd" else "0.01", *AUGMENT]
        train("one_" + optimizer, *flags)
        train("two_" + optimizer, *flags, "--nproc", 2)
        one, two = weights(path(f"one_{optimizer}.run/last.fcn")), weights(path(f"two_{optimizer}.run/last.fcn"))
        difference = max_difference(one, two)
        assert difference <= 1e-5, (optimizer, difference)
        # Validation split across the ranks and summed: the same metrics as one process.
        for a, b in zip(val_lines(path(f"one_{optimizer}.run")), val_lines(path(f"two_{optimizer}.run"))):
            for key in ("pixel_acc", "mean_iu", "fw_iu"):
                assert abs(a[key] - b[key]) <= 1e-4, (optimizer, key, a, b)
        lines = [json.loads(line) for line in open(path(f"two_{optimizer}.run/metrics.jsonl"))]
        assert all(line["ranks"] == 2 for line in lines), lines
    # It trained: the weights moved from the start.
    train("zero_steps", "--optimizer", "sgd", "--lr", "1e-12", epochs=1)
    assert max_difference(weights(path("zero_steps.run/last.fcn")), weights(path("two_sgd.run/last.fcn"))) > 1e-3


@check("--patience stops every rank at the same epoch (each decides from the same all-reduced validation)")
def _():
    # Steps of 1e-12 leave the weights as they were: no epoch beats the first, so patience 2 ends epoch 3 of 6.
    p = train("patience", "--optimizer", "sgd", "--lr", "1e-12", "--patience", 2, "--nproc", 2, "--json", epochs=6)
    result = json.loads(p.stdout)
    assert result["stopped_early"] is True and result["epochs_done"] == 3 and result["best_epoch"] == 1, result
    assert len(val_lines(path("patience.run"))) == 3
    # The models record the command the user gave (--nproc 2), not the ranks' own.
    for model in (path("patience.fcn"), path("patience.run/best.fcn")):
        command = json.loads(torch.load(model)["meta"])["training"]["command"]
        assert command.startswith("fcn train --data ") and "--nproc 2" in command and "--no-check" not in command, command
    run("eval", path("patience.fcn"), "--data", path("scenes"), "--markdown", path("patience.md"))
    assert "3 of 6 epochs |" in open(path("patience.md")).read()  # what ran, of what was asked for


@check("the sharded validation equals fcn eval of the same model")
def _():
    r = json.loads(run("eval", path("two_adamw.run/last.fcn"), "--data", path("scenes"), "--json").stdout)
    last = val_lines(path("two_adamw.run"))[-1]
    assert abs(r["mean_iu"] - last["mean_iu"]) <= 1e-4 and abs(r["pixel_acc"] - last["pixel_acc"]) <= 1e-4, (r["mean_iu"], last)


@check("--workers 0 and --workers 3 give identical weights after an epoch (and so does a third rank)")
def _():
    flags = ["--optimizer", "adamw", "--lr", "0.01", *AUGMENT, "--elastic", "alpha=3,grid=3", "--rotate", 10]
    train("w0", *flags, epochs=1)
    p = train("w3", *flags, "--workers", 3, epochs=1)
    assert max_difference(weights(path("w0.run/last.fcn")), weights(path("w3.run/last.fcn"))) == 0
    # 3 ranks on a global batch of 4 (parts of 2, 1, 1; the last batch of 2 leaves one rank a void stand-in).
    train("r3", *flags, "--nproc", 3, epochs=1)
    assert max_difference(weights(path("w0.run/last.fcn")), weights(path("r3.run/last.fcn"))) <= 1e-5
    assert p.returncode == 0


def wait_for(file, process):
    """Until `file` exists (the first epoch's checkpoint): the ranks are then inside training."""
    deadline = time.time() + 120
    while not os.path.exists(file) and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    assert os.path.exists(file), finish(process)


def long_run_flags(name):
    return ["train", "--data", path("scenes_long"), *NET, "--epochs", 3, "--batch", 2, "--seed", 3, "--optimizer", "adamw",
            "--lr", "0.01", "--out", path(name + ".fcn"), "--dist-timeout", 30]


@check("kill -9 of one rank: the other exits at once with one line; the checkpoint resumes on 2 ranks and on 1")
def _():
    run("data", "fashion-scenes", "--out", path("scenes_long"), "--train", 120, "--val", 2, "--size", 32)
    port = free_port()
    ranks = [start(long_run_flags("killed"), rank_env(r, 2, port)) for r in range(2)]
    wait_for(path("killed.run/checkpoint.pt"), ranks[0])
    ranks[1].send_signal(signal.SIGKILL)
    killed_at = time.time()
    code, _, err = finish(ranks[0], timeout=60)
    assert time.time() - killed_at < 30, "rank 0 did not notice within the timeout"
    errors = [line for line in err.splitlines() if line.startswith("fcn: error")]  # after its progress lines
    assert code != 0 and len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert "rank 0 of 2" in errors[0] and "--resume" in errors[0], err
    finish(ranks[1])
    shutil.copytree(path("killed.run"), path("killed1.run"))
    run(*long_run_flags("killed"), "--resume", path("killed.run"), "--nproc", 2)
    run(*long_run_flags("killed1"), "--resume", path("killed1.run"))
    lines = [json.loads(line) for line in open(path("killed.run/metrics.jsonl"))]
    assert [line["epoch"] for line in lines] == [1, 2, 3], lines
    # Different world sizes from the same checkpoint: the same run.
    assert max_difference(weights(path("killed.run/last.fcn")), weights(path("killed1.run/last.fcn"))) <= 1e-5


@check("SIGTERM to one rank checkpoints and stops every rank at the same step; --resume finishes")
def _():
    port = free_port()
    ranks = [start(long_run_flags("termed"), rank_env(r, 2, port)) for r in range(2)]
    wait_for(path("termed.run/checkpoint.pt"), ranks[0])  # training runs (its handlers are in place)
    ranks[1].send_signal(signal.SIGTERM)
    results = [finish(p) for p in ranks]
    assert [code for code, _, _ in results] == [130, 130], results
    assert "checkpoint at epoch" in results[0][2], results[0][2]
    run(*long_run_flags("termed"), "--resume", path("termed.run"), "--nproc", 2)
    assert len(open(path("termed.run/metrics.jsonl")).read().splitlines()) == 3


@check("bad launches fail fast with one line naming the variable")
def _():
    common = ["train", "--data", path("scenes"), *NET, "--epochs", 1, "--out", path("bad.fcn")]
    base = [*common, "--batch", 4, "--dist-timeout", 5]
    # Mismatched WORLD_SIZE: both ranks say so, in seconds.
    port = free_port()
    ranks = [start(base, rank_env(0, 2, port)), start(base, rank_env(1, 3, port))]
    began = time.time()
    for p in ranks:
        code, _, err = finish(p, timeout=30)
        assert code != 0 and len(err.strip().splitlines()) == 1 and "WORLD_SIZE" in err, err
    assert time.time() - began < 5, time.time() - began
    # Port in use.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = finish(start(base, rank_env(0, 2, busy.getsockname()[1])), timeout=30)
        assert code != 0 and len(err.strip().splitlines()) == 1 and "MASTER_PORT" in err and "in use" in err, err
    # Unreachable master: within the timeout, naming MASTER_ADDR.
    began = time.time()
    code, _, err = finish(start(base, rank_env(1, 2, free_port())), timeout=60)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "MASTER_ADDR" in err, err
    assert time.time() - began < 20, time.time() - began
    # Settings that cannot work are refused before connecting.
    for env, needle in ((dict(RANK=2, WORLD_SIZE=2), "RANK"), (dict(RANK=0), "WORLD_SIZE"),
                        (dict(RANK=0, WORLD_SIZE="two"), "WORLD_SIZE"), (dict(RANK=0, WORLD_SIZE=2), "MASTER_ADDR")):
        clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
        clean.update({k: str(v) for k, v in env.items()})
        code, _, err = finish(start(base, clean))
        assert code != 0 and len(err.strip().splitlines()) == 1 and needle in err, (env, err)
    one_line_error(run(*common, "--nproc", 2, "--batch", 1, ok=False), "--batch")
    one_line_error(run(*common, "--workers", -1, ok=False), "--workers")
    one_line_error(run(*common, "--dist-url", "http://x", "--rank", 0, "--world-size", 2, ok=False), "--dist-url")


@check("fcn bench --mode train --nproc 2 times 2 ranks on the parent's device, each with half the batch and the cores")
def _():
    bench = json.loads(run("bench", *NET, "--size", 32, "--batch", 4, "--mode", "train", "--runs", 2, "--warmup", 1,
                           "--threads", 2, "--nproc", 2, "--json").stdout)
    dp = bench["data_parallel"]
    assert dp["nproc"] == 2 and dp["threads_per_rank"] == 1 and dp["device"] == bench["device"] == "cpu", dp
    assert dp["ms_per_batch"] > 0 and dp["all_reduce_ms_per_batch"] >= 0, dp
    # images/s of the global batch of 4, from rank 0's median step, and its ratio to the one process's best
    assert abs(dp["images_per_s"] - 4000.0 / dp["ms_per_batch"]) < 1e-6 * dp["images_per_s"], dp
    assert abs(dp["scaling_efficiency"] - dp["images_per_s"] / dp["one_process_images_per_s"]) < 1e-9, dp
    one_line_error(run("bench", *NET, "--size", 32, "--batch", 3, "--mode", "train", "--nproc", 2, ok=False), "--batch")
    one_line_error(run("bench", *NET, "--size", 32, "--nproc", 2, ok=False), "--nproc")


summary()
