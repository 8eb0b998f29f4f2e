"""Shared pieces of the end-to-end tests of the `fcn` command line (cli_test.py, infer_test.py).

The scripts are run as: /usr/bin/python3 SCRIPT.py PATH/TO/fcn [more paths]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

FCN = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="fcn-cli-")
results = []
# Hermetic: fcn tune's cache (read by predict, eval and bench) is this run's own, not the user's.
os.environ["XDG_CACHE_HOME"] = os.path.join(TMP, "xdg-cache")
os.environ.pop("FCN_NO_TUNE", None)


def run(*args, ok=True, cwd=None):
    p = subprocess.run([FCN, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)
    if ok and p.returncode != 0:
        raise AssertionError(f"fcn {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def listed(folder):
    """The files in a folder fcn predict wrote, without its record of what made them (.fcn-predict.json)."""
    return [name for name in os.listdir(folder) if name != ".fcn-predict.json"]


def check(name):
    def wrap(fn):
        if os.environ.get("FCN_CHECK", "") not in name:  # FCN_CHECK=text: only the checks whose name holds it
            return fn
        start = time.monotonic()
        try:
            fn()
            results.append((name, None))
            print(f"[ OK ] {name} ({time.monotonic() - start:.1f} s)")
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            results.append((name, e))
            print(f"[FAIL] {name} ({time.monotonic() - start:.1f} s): {e}")
        return fn
    return wrap


def path(name):
    return os.path.join(TMP, name)


def one_line_error(p, *needles):
    assert p.returncode != 0, f"expected failure, got 0: {p.stdout}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {p.stderr!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def randomize_model_file(src, dst, seed):
    """Fills a model file's weights with random numbers, saved from Python (interop both ways)."""
    d = torch.load(src)
    g = torch.Generator().manual_seed(seed)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.2 if v.is_floating_point() else v) for k, v in d["state_dict"].items()}
    d["state_dict"] = sd
    torch.save(d, dst)
    return d, sd


def write_gray_png(file, array):
    from torchvision.io import write_png
    write_png(torch.from_numpy(np.ascontiguousarray(array, dtype=np.uint8))[None], file)


def summary():
    """Prints 'N passed, M failed' and exits non-zero on any failure. The scratch folder (models,
    datasets, outputs: up to ~1 GB) is removed when every check passed, else kept and named."""
    failed = [n for n, e in results if e is not None]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed or os.environ.get("FCN_KEEP_TMP"):
        print(f"scratch files kept in {TMP}")
    else:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(1 if failed else 0)
