#!/usr/bin/env python3
"""Ctrl-C, again and again: runs `fcn predict MODEL FOLDER` N times, sends SIGINT once its progress shows (after
DELAY s), and counts the exit codes. Every run must end with 130 (stopped, outputs written); anything else (-6:
glibc found the heap corrupted, -11: a crash) is a fault. Run two at a time to load the machine as CI does.
Usage: scripts/ctrl-c-stress.py FCN MODEL FOLDER [N [DELAY]]  (a folder of a few hundred small images)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    fcn, model, folder = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    codes = {}
    scratch = tempfile.mkdtemp(prefix="fcn-ctrl-c-")
    env = dict(os.environ, OMP_NUM_THREADS="1", XDG_CACHE_HOME=os.path.join(scratch, "xdg"))
    for _ in range(runs):
        out, err = os.path.join(scratch, "out"), os.path.join(scratch, "err")
        shutil.rmtree(out, ignore_errors=True)
        with open(err, "w") as log:
            p = subprocess.Popen([fcn, "predict", model, folder, "--out", out], stdout=subprocess.DEVNULL, stderr=log, env=env)
            deadline = time.time() + 60
            while "predict " not in open(err).read() and p.poll() is None and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
            p.send_signal(signal.SIGINT)
            p.wait()
        codes[p.returncode] = codes.get(p.returncode, 0) + 1
        if p.returncode != 130:
            print(f"exit {p.returncode}: {open(err).read()[-300:]}")
    shutil.rmtree(scratch, ignore_errors=True)
    print("exit codes:", codes)
    sys.exit(0 if set(codes) == {130} else 1)


if __name__ == "__main__":
    main()
