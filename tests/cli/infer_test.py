"""End-to-end tests of inference and deployment: fcn predict / heatmap / export / report, and the
examples/ program, with PyTorch (oracle/nets.py) and headless Chromium as oracles.

Usage: /usr/bin/python3 infer_test.py PATH/TO/fcn PATH/TO/segment_example PATH/TO/train_example
"""
import collections
import glob
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import nets  # noqa: E402

from harness import FCN, check, listed, one_line_error, path, randomize_model_file, run, summary  # noqa: E402

EXAMPLE, TRAIN_EXAMPLE, VIDEO_TOOL = sys.argv[2], sys.argv[3], sys.argv[4]


def scenes_model():
    """A small FCN-8s trained for one epoch on 32x32 Fashion-MNIST scenes (and its run dir)."""
    if not os.path.exists(path("s8.fcn")):
        run("data", "fashion-scenes", "--out", path("scenes"), "--train", 24, "--val", 4, "--size", 32)
        run("train", "--data", path("scenes"), "--arch", "fcn8s", "--backbone", "vgg16-w0.125", "--fc-channels", 16,
            "--epochs", 2, "--batch", 4, "--out", path("s8.fcn"))
    return path("s8.fcn")


def rgb_model():
    if not os.path.exists(path("rgb_random.fcn")):
        run("init", "--arch", "fcn8s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--classes", 4,
            "--out", path("rgb.fcn"))
        randomize_model_file(path("rgb.fcn"), path("rgb_random.fcn"), 3)
    return path("rgb_random.fcn")


def save(file, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(file)


def interrupted(args, log_name):
    """Runs fcn ARGS and sends it SIGINT once its progress shows on stderr; returns (exit code, stderr)."""
    import signal
    import time
    with open(path(log_name), "w") as log:
        p = subprocess.Popen([FCN, *map(str, args)], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 120
        while "predict " not in open(path(log_name)).read() and p.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=120)
    return p.returncode, open(path(log_name)).read()


@check("predict: files, folders and globs -> palette PNGs of the labels that forward gives")
def _():
    model = rgb_model()
    rng = np.random.default_rng(0)
    os.makedirs(path("photos"), exist_ok=True)
    sizes = [(40, 52), (33, 33), (64, 96)]
    for i, (h, w) in enumerate(sizes):
        save(path(f"photos/p{i}.png"), rng.integers(0, 256, (h, w, 3)))
    out = json.loads(run("predict", model, path("photos"), "--out", path("masks"), "--json", "--overlay").stdout)
    assert out["succeeded"] == 3 and out["failed"] == 0 and out["device"] == "cpu", out
    for i, (h, w) in enumerate(sizes):
        mask = Image.open(path(f"masks/p{i}.png"))
        assert mask.mode == "P", mask.mode  # palette: opens as colours, stores class indices
        assert mask.getpalette()[3:6] == [128, 0, 0]  # VOC colour of class 1
        # predict mirrors the image to a multiple of 32 and crops back: forward on the mirrored image
        image = np.array(Image.open(path(f"photos/p{i}.png")))
        padded = np.pad(image, ((0, -h % 32), (0, -w % 32), (0, 0)), mode="reflect")
        save(path("padded.png"), padded)
        run("forward", model, path("padded.png"), "--out", path("logits.npy"))
        expected = np.load(path("logits.npy"))[0].argmax(0)[:h, :w]
        got = np.array(mask)
        assert got.shape == expected.shape and (got == expected).all(), (i, (got == expected).mean())
        overlay = Image.open(path(f"masks/p{i}-overlay.png"))
        assert overlay.mode == "RGB" and overlay.size[0] > mask.size[0], overlay.size  # enlarged + legend
    counts = out["images"][0]["class_pixels"]
    assert sum(counts.values()) == 40 * 52, counts
    p = run("predict", model, path("photos/p*.png"), "--out", path("masks2"), "--quiet")
    assert len(glob.glob(path("masks2/*.png"))) == 3 and "3 image(s) segmented on cpu" in p.stdout, p.stdout


@check("predict: Ctrl-C midway finishes the images so far (exit 130); --skip-existing goes on where it stopped")
def _():
    model = scenes_model()
    scenes = sorted(glob.glob(path("scenes/JPEGImages/*.png")))
    os.makedirs(path("stopped"), exist_ok=True)
    for k in range(1500):
        shutil.copy(scenes[k % len(scenes)], path(f"stopped/m{k:04d}.png"))
    code, err = interrupted(["predict", model, path("stopped"), "--out", path("stopped_out")], "stopped.err")
    done = len(listed(path("stopped_out")))
    assert code == 130 and "stopped by Ctrl-C; the same command with --skip-existing goes on" in err, (code, err[-300:])
    assert 0 < done < 1500 and not any(n.startswith(".") for n in listed(path("stopped_out"))), done  # no partial file
    out = json.loads(run("predict", model, path("stopped"), "--out", path("stopped_out"), "--skip-existing", "--json").stdout)
    assert (out["kept"], out["succeeded"]) == (done, 1500 - done) and len(listed(path("stopped_out"))) == 1500, (out["kept"], done)
    run("predict", model, path(f"stopped/m{done - 1:04d}.png"), path(f"stopped/m{done:04d}.png"), "--out", path("stopped_one"))
    for k in (done - 1, done):  # the last mask of the stopped run and the first of the resumed one, as a fresh run writes them
        assert (np.array(Image.open(path(f"stopped_out/m{k:04d}.png"))) == np.array(Image.open(path(f"stopped_one/m{k:04d}.png")))).all(), k


@check("predict: inputs are named in input order even where one cannot be read, so --skip-existing finds each after a mend")
def _():
    model = rgb_model()
    for folder in ("dup/a", "dup/b"):
        os.makedirs(path(folder), exist_ok=True)
    rng = np.random.default_rng(1)
    save(path("dup/a.png"), rng.integers(0, 256, (24, 40, 3)))
    open(path("dup/a/x.png"), "wb").write(b"\x89PNG\r\n\x1a\n broken")
    save(path("dup/b/x.png"), rng.integers(0, 256, (36, 20, 3)))
    first = run("predict", model, path("dup/a"), path("dup/b"), "--out", path("dup_out"), ok=False)
    assert first.returncode == 1 and sorted(listed(path("dup_out"))) == ["x_2.png"], sorted(listed(path("dup_out")))
    shutil.copy(path("dup/a.png"), path("dup/a/x.png"))  # mended
    out = json.loads(run("predict", model, path("dup/a"), path("dup/b"), "--out", path("dup_out"), "--skip-existing", "--json").stdout)
    assert (out["kept"], out["succeeded"]) == (1, 1), out
    run("predict", model, path("dup/a.png"), "--out", path("dup_fresh"))
    assert (np.array(Image.open(path("dup_out/x.png"))) == np.array(Image.open(path("dup_fresh/a.png")))).all()


def components8(mask, four=False):
    """8-connected components of a boolean mask (4-connected where `four`), by flood fill: a list of sets of (y, x)."""
    seen, found = np.zeros(mask.shape, bool), []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start], todo, component = True, [start], set()
        while todo:
            y, x = todo.pop()
            component.add((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    n = (y + dy, x + dx)
                    if four and dy and dx:
                        continue
                    if 0 <= n[0] < mask.shape[0] and 0 <= n[1] < mask.shape[1] and mask[n] and not seen[n]:
                        seen[n] = True
                        todo.append(n)
        found.append(component)
    return found


@check("predict --instances: each class's 8-connected components numbered 1..N, counted per class (flood fill's)")
def _():
    model = rgb_model()  # random weights: labels in patches of every class, many objects
    rng = np.random.default_rng(4)
    os.makedirs(path("blobs"), exist_ok=True)
    scenes = []
    for i, (h, w) in enumerate([(48, 64), (37, 29)]):
        scenes.append(path(f"blobs/b{i}.png"))
        save(scenes[-1], np.kron(rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)), np.ones((4, 4, 1)))[:h, :w])
    out = json.loads(run("predict", model, *scenes, "--out", path("objects"), "--instances", "--json").stdout)
    total, classes = 0, set()
    for scene, report in zip(scenes, out["images"]):
        stem = os.path.splitext(os.path.basename(scene))[0]
        labels = np.array(Image.open(path(f"objects/{stem}.png")))
        ids = np.array(Image.open(path(f"objects/{stem}-instances.png")))
        assert ids.dtype in (np.int32, np.uint16) and ((ids > 0) == (labels > 0)).all(), stem
        counts = {}
        for c in np.unique(labels[labels > 0]):
            for component in components8(labels == c):
                values = {int(ids[p]) for p in component}
                assert len(values) == 1, (stem, c, values)  # one object: one id
                counts[int(c)] = counts.get(int(c), 0) + 1
        assert len(np.unique(ids[ids > 0])) == sum(counts.values()) == ids.max(), (stem, counts, ids.max())  # distinct, 1..N
        assert sorted(report["objects"].values()) == sorted(counts.values()), (report["objects"], counts)
        total += sum(counts.values())
        classes.update(counts)
    assert total >= 10 and len(classes) >= 2, (total, classes)  # many objects of several classes: the check compares something
    # --connectivity 6 (a volume's faces): an image's objects 4-connected, more of them.
    run("predict", model, scenes[0], "--out", path("objects4"), "--instances", "--connectivity", 6)
    labels, ids4 = np.array(Image.open(path("objects/b0.png"))), np.array(Image.open(path("objects4/b0-instances.png")))
    four = [(c, component) for c in np.unique(labels[labels > 0]) for component in components8(labels == c, four=True)]
    assert all(len({int(ids4[p]) for p in component}) == 1 for _, component in four) and ids4.max() == len(four), (ids4.max(), len(four))
    assert len(four) > np.array(Image.open(path("objects/b0-instances.png"))).max()
    p = run("predict", model, scenes[0], "--out", path("objects_line"), "--instances")
    assert re.search(r"-> .*\.png  [0-9.]+ ms, [0-9]+ object\(s\)", p.stdout), p.stdout
    # --min-object N: components of fewer pixels left out (0), the rest numbered again 1..M in their order.
    out = json.loads(run("predict", model, scenes[0], "--out", path("big_objects"), "--instances", "--min-object", 20, "--json").stdout)
    ids, small = np.array(Image.open(path("objects/b0-instances.png"))), np.array(Image.open(path("big_objects/b0-instances.png")))
    sizes = np.bincount(ids.ravel())
    kept = [i for i in range(1, len(sizes)) if sizes[i] >= 20]
    assert 0 < len(kept) < len(sizes) - 1, sizes  # some objects kept, some left out
    renumber = np.zeros(len(sizes), np.int64)
    renumber[kept] = np.arange(1, len(kept) + 1)
    assert (small == renumber[ids]).all() and sum(out["images"][0]["objects"].values()) == len(kept)
    one_line_error(run("predict", model, scenes[0], "--out", path("x"), "--min-object", 5, ok=False), "--min-object", "--instances")
    # With --overlay, the objects' outlines in white (each object's pixels with a 4-neighbour of another id, at the
    # overlay's enlarged scale), the rest the overlay without --instances.
    run("predict", model, scenes[0], "--out", path("outlined"), "--instances", "--overlay")
    run("predict", model, scenes[0], "--out", path("plain"), "--overlay")
    ids = np.array(Image.open(path("objects/b0-instances.png"))).astype(np.int64)
    factor = -(-256 // min(ids.shape))
    big = np.kron(ids, np.ones((factor, factor), np.int64))
    edge = np.zeros(big.shape, bool)
    edge[1:] |= big[1:] != big[:-1]
    edge[:-1] |= big[1:] != big[:-1]
    edge[:, 1:] |= big[:, 1:] != big[:, :-1]
    edge[:, :-1] |= big[:, 1:] != big[:, :-1]
    edge &= big > 0
    h, w = big.shape
    outlined = np.array(Image.open(path("outlined/b0-overlay.png")))[:h, :w]
    plain = np.array(Image.open(path("plain/b0-overlay.png")))[:h, :w]
    assert edge.any() and (outlined[edge] == 255).all() and (outlined[~edge] == plain[~edge]).all()


@check("predict: probabilities as .npy and 16-bit PNGs agree and sum to one")
def _():
    model = rgb_model()
    run("predict", model, path("photos/p0.png"), "--out", path("probs"), "--probs", "npy")
    run("predict", model, path("photos/p0.png"), "--out", path("probs"), "--probs", "png")
    probs = np.load(path("probs/p0-probs.npy"))
    assert probs.shape == (4, 40, 52) and np.abs(probs.sum(0) - 1).max() < 1e-5
    png = np.stack([np.array(Image.open(path(f"probs/p0-prob{c}.png"))) for c in range(4)]) / 65535.0
    assert np.abs(png - probs).max() <= 1 / 65535.0 + 1e-7
    assert (np.array(Image.open(path("probs/p0.png"))) == probs.argmax(0)).all()


@check("predict: a bad image is reported and skipped, the others written, exit code 1")
def _():
    model = rgb_model()
    os.makedirs(path("mixed"), exist_ok=True)
    shutil.copy(path("photos/p0.png"), path("mixed/a.png"))
    open(path("mixed/b.png"), "wb").write(b"\x89PNG\r\n\x1a\n broken")
    save(path("mixed/c.png"), np.zeros((5, 7, 4)))  # RGBA into an RGB model: alpha dropped
    save(path("mixed/d.png"), np.zeros((6, 9)))  # gray into an RGB model: replicated
    p = run("predict", model, path("mixed"), "--out", path("mixed_out"), ok=False)
    assert p.returncode == 1, p.returncode
    errors = [line for line in p.stderr.splitlines() if line.startswith("fcn: error")]
    assert len(errors) == 1 and "b.png" in errors[0] and "skipped" in errors[0], p.stderr
    assert sorted(listed(path("mixed_out"))) == ["a.png", "c.png", "d.png"], listed(path("mixed_out"))
    one_line_error(run("predict", model, path("nothing/*.png"), "--out", path("x"), ok=False), "matches no file")
    one_line_error(run("predict", path("photos/p0.png"), path("photos"), "--out", path("x"), ok=False), "p0.png")
    one_line_error(run("predict", model, path("photos"), "--out", path("x"), "--tile", 64, "--overlap", 64, ok=False),
                   "--overlap")


@check("predict: same-size neighbours go through the net together, with the probabilities of one at a time")
def _():
    model = scenes_model()  # trained: random weights make logits so large that rounding moves probabilities
    rng = np.random.default_rng(1)
    os.makedirs(path("many"), exist_ok=True)
    names = ["q0", "q1", "q2", "q3", "q4", "q5", "q6"]  # 48x64; q4 (40x40) and the broken q5 end the passes
    for name in names:
        save(path(f"many/{name}.png"), rng.integers(0, 256, (40, 40) if name == "q4" else (48, 64)))
    open(path("many/q5.png"), "wb").write(b"\x89PNG\r\n\x1a\n broken")
    p = run("predict", model, path("many"), "--out", path("many_out"), "--probs", "npy", "--json", ok=False)
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert [os.path.basename(i["image"]) for i in out["images"]] == [n + ".png" for n in names], out["images"]
    assert out["succeeded"] == 6 and out["failed"] == 1 and "error" in out["images"][5], out
    ms = [i.get("ms") for i in out["images"]]
    assert ms[0] == ms[1] == ms[2] == ms[3], ms  # one pass, its time shared
    for name in names[:5] + names[6:]:
        run("predict", model, path(f"many/{name}.png"), "--out", path("one_out"), "--probs", "npy")
        alone, together = np.load(path(f"one_out/{name}-probs.npy")), np.load(path(f"many_out/{name}-probs.npy"))
        assert np.abs(alone - together).max() < 1e-5, (name, np.abs(alone - together).max())
        labels = np.array(Image.open(path(f"many_out/{name}.png")))
        clear = np.sort(together, 0)[-1] - np.sort(together, 0)[-2] > 1e-4  # no near-tie between the top two
        assert (labels == alone.argmax(0))[clear].all(), name


@check("predict: a video's frames segmented as the same images are, its overlay a video at its frame rate")
def _():
    model = scenes_model()
    scenes = sorted(glob.glob(path("scenes/JPEGImages/val_*.png")))[:4]
    frames = scenes * 3  # 12 frames: a pass of 8 and one of 4
    subprocess.run([VIDEO_TOOL, "make", path("clip.mkv"), "12.5", *frames], check=True)  # FFV1: lossless
    open(path("broken.mp4"), "wb").write(b"not a video\n" * 10)
    p = run("predict", model, path("clip.mkv"), path("broken.mp4"), scenes[0], "--out", path("vid"), "--overlay",
            "--probs", "npy", "--json", ok=False)
    assert p.returncode == 1 and "broken.mp4: cannot be opened as a video" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr  # FFmpeg's own lines kept quiet
    out = json.loads(p.stdout)
    video = out["videos"][0]
    assert (video["frames"], video["fps"], video["height"], video["width"]) == (12, 12.5, 32, 32), video
    assert sum(video["class_pixels"].values()) == 12 * 32 * 32 and not video["stopped"] and video["decode_errors"] == [], video
    assert out["succeeded"] == 1 and out["failed"] == 1, out  # the image after the videos still segmented
    run("predict", model, *scenes, "--out", path("vid_one"), "--probs", "npy")
    for k in range(12):
        stem = os.path.basename(scenes[k % 4])[:-4]
        alone, frame = np.load(path(f"vid_one/{stem}-probs.npy")), np.load(path(f"vid/clip/{k:06d}-probs.npy"))
        assert np.abs(alone - frame).max() < 1e-5, (k, np.abs(alone - frame).max())
        labels = np.array(Image.open(path(f"vid/clip/{k:06d}.png")))
        clear = np.sort(frame, 0)[-1] - np.sort(frame, 0)[-2] > 1e-4
        assert (labels == alone.argmax(0))[clear].all() and clear.mean() > 0.9, k
    probe = subprocess.run([VIDEO_TOOL, "probe", path("vid/clip-overlay.mp4")], capture_output=True, text=True, check=True)
    overlay = json.loads(probe.stdout)  # enlarged to 256 with a legend of the 11 classes, every frame one size
    assert (overlay["frames"], overlay["fps"], overlay["height"]) == (12, 12.5, 256) and overlay["width"] > 256, overlay
    assert not [f for f in listed(path("vid")) if "partial" in f], listed(path("vid"))  # no temporary file left
    # --every 3: frames 0, 3, 6 and 9, named by their number and segmented as in the whole run; the overlay at 12.5 / 3 fps.
    p = run("predict", model, path("clip.mkv"), "--out", path("vid_every"), "--every", "3", "--overlay", "--probs", "npy", "--json")
    every = json.loads(p.stdout)["videos"][0]
    assert (every["frames"], every["frames_read"], every["every"]) == (4, 12, 3) and "warning" not in p.stderr, (every, p.stderr)
    assert sorted(listed(path("vid_every/clip"))) == [f"{k:06d}{s}" for k in (0, 3, 6, 9) for s in ("-probs.npy", ".png")]
    for k in (0, 3, 6, 9):
        picked, whole = np.load(path(f"vid_every/clip/{k:06d}-probs.npy")), np.load(path(f"vid/clip/{k:06d}-probs.npy"))
        assert np.abs(picked - whole).max() < 1e-5, (k, np.abs(picked - whole).max())
    probe = subprocess.run([VIDEO_TOOL, "probe", path("vid_every/clip-overlay.mp4")], capture_output=True, text=True, check=True)
    overlay = json.loads(probe.stdout)
    assert overlay["frames"] == 4 and abs(overlay["fps"] - 12.5 / 3) < 0.01, overlay
    text = run("predict", model, path("clip.mkv"), "--out", path("vid_every5"), "--every", "5", "--quiet").stdout
    assert "clip.mkv (32x32, 3 frames, 1 in 5) -> " in text, text
    p = run("predict", model, scenes[0], "--out", path("vid_every_image"), "--every", "2", ok=False)
    assert p.returncode == 1 and "--every: 2 picks frames of videos, and no input is a video" in p.stderr, p.stderr
    text = run("predict", model, path("clip.mkv"), "--out", path("vid2"), "--quiet").stdout
    assert "clip.mkv (32x32, 12 frames) -> " in text and "1 video(s) segmented" in text, text
    # --skip-existing: a video stopped after frame 6 (frames 7.. missing) and one whose frame 3 lacks its probabilities
    # go on where they stopped: only the missing frames segmented, as the whole run segmented them; the frames kept
    # untouched. With --overlay (its video needs every frame) a finished video is kept whole, any other done again.
    shutil.copytree(path("vid/clip"), path("vid_resume/clip"))
    for k in range(7, 12):
        os.remove(path(f"vid_resume/clip/{k:06d}.png")), os.remove(path(f"vid_resume/clip/{k:06d}-probs.npy"))
    os.remove(path("vid_resume/clip/000003-probs.npy"))
    before = os.stat(path("vid_resume/clip/000000.png")).st_mtime_ns
    resumed = json.loads(run("predict", model, path("clip.mkv"), "--out", path("vid_resume"), "--probs", "npy", "--skip-existing", "--json").stdout)
    assert (resumed["videos"][0]["frames"], resumed["videos"][0]["frames_kept"], resumed["kept"]) == (6, 6, 6), resumed["videos"][0]
    assert sorted(listed(path("vid_resume/clip"))) == sorted(listed(path("vid/clip"))), listed(path("vid_resume/clip"))
    for k in (3, 7, 11):
        assert np.abs(np.load(path(f"vid_resume/clip/{k:06d}-probs.npy")) - np.load(path(f"vid/clip/{k:06d}-probs.npy"))).max() < 1e-6, k
    assert os.stat(path("vid_resume/clip/000000.png")).st_mtime_ns == before, "a kept frame is not written again"
    again = ["predict", model, path("clip.mkv"), "--out", path("vid"), "--overlay", "--probs", "npy", "--skip-existing"]
    overlay_time = os.stat(path("vid/clip-overlay.mp4")).st_mtime_ns
    text = run(*again).stdout
    assert "clip.mkv (32x32, 0 frames, 12 kept from an earlier run) -> " in text and "12 kept from an earlier run" in text.splitlines()[-1], text
    assert os.stat(path("vid/clip-overlay.mp4")).st_mtime_ns == overlay_time
    os.remove(path("vid/clip/000011.png"))
    redone = json.loads(run(*again, "--json").stdout)["videos"][0]
    assert (redone["frames"], redone["frames_kept"]) == (12, 0) and os.path.exists(path("vid/clip/000011.png")), redone
    assert os.stat(path("vid/clip-overlay.mp4")).st_mtime_ns != overlay_time
    # A video cut short decodes up to the cut: segmented, with a warning naming the frames its header lists.
    data = open(path("clip.mkv"), "rb").read()
    open(path("cut.mkv"), "wb").write(data[: len(data) * 2 // 3])
    p = run("predict", model, path("cut.mkv"), "--out", path("vid_cut"), "--json")
    cut = json.loads(p.stdout)["videos"][0]
    assert 0 < cut["frames"] < 12 and cut["frames_listed"] == 12, cut
    assert f"cut.mkv: {cut['frames']} of the 12 frames its header lists could be read" in p.stderr, p.stderr
    assert "warning" not in run("predict", model, path("clip.mkv"), "--out", path("vid_cut")).stderr
    # Damaged data: segmented as far as FFmpeg decodes it, with a warning quoting FFmpeg's first error line and its frame.
    subprocess.run([VIDEO_TOOL, "make", path("clip.mp4"), "12.5", *frames], check=True)
    data = bytearray(open(path("clip.mp4"), "rb").read())
    box = data.index(b"mdat") - 4  # H.264 in MP4: length-prefixed NAL units; the middle one's length set to 0
    end, at, units = box + int.from_bytes(data[box : box + 4], "big"), box + 8, []
    while at + 4 <= end:
        units.append(at)
        at += 4 + int.from_bytes(data[at : at + 4], "big")
    data[units[len(units) // 2] : units[len(units) // 2] + 4] = bytes(4)
    open(path("damaged.mp4"), "wb").write(data)
    p = run("predict", model, path("damaged.mp4"), "--out", path("vid_damaged"), "--json")
    damaged = json.loads(p.stdout)["videos"][0]
    assert damaged["decode_errors"] and damaged["decode_errors"][0].startswith("frame "), damaged
    assert f"damaged.mp4: FFmpeg reported {len(damaged['decode_errors'])} decoding error(s)" in p.stderr, p.stderr
    assert damaged["decode_errors"][0] in p.stderr, p.stderr
    whole = json.loads(run("predict", model, path("clip.mp4"), "--out", path("vid_damaged"), "--json").stdout)["videos"][0]
    assert whole["frames"] == 12 and whole["decode_errors"] == [], whole
    # A frame size that changes mid-video (two MPEG-1 streams one after the other, which OpenCV 4.6's reader
    # would answer with the last good picture again): the frames before the change segmented and kept, masks
    # and overlay, then an error naming the frame.
    Image.open(scenes[1]).resize((64, 48)).save(path("wide.png"))
    subprocess.run([VIDEO_TOOL, "mpeg1", path("small.mpg"), *scenes], check=True)
    subprocess.run([VIDEO_TOOL, "mpeg1", path("wide.mpg"), *[path("wide.png")] * 4], check=True)
    open(path("changing.mpg"), "wb").write(open(path("small.mpg"), "rb").read() + open(path("wide.mpg"), "rb").read())
    p = run("predict", model, path("changing.mpg"), "--out", path("vid_changing"), "--overlay", ok=False)
    m = re.search(r"changing\.mpg: frame (\d+): FFmpeg could not convert it to an image", p.stderr)
    assert p.returncode == 1 and m and "does the frame size change mid-video?" in p.stderr, p.stderr
    done = int(m.group(1))  # MPEG-1's frame reordering may hold back the first stream's last frame
    assert 2 <= done <= 4 and sorted(listed(path("vid_changing/changing"))) == [f"{k:06d}.png" for k in range(done)], done
    probe = subprocess.run([VIDEO_TOOL, "probe", path("vid_changing/changing-overlay.mp4")], capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout)["frames"] == done, probe.stdout
    os.makedirs(path("footage"), exist_ok=True)  # a folder gives its videos as well as its images
    shutil.copy(path("clip.mkv"), path("footage/clip.mkv"))
    shutil.copy(scenes[0], path("footage/still.png"))
    text = run("predict", model, path("footage"), "--out", path("vid3"), "--quiet").stdout
    assert "1 image(s) and 1 video(s) segmented" in text and len(listed(path("vid3/clip"))) == 12, text


@check("predict --instances on a video: each frame's objects outlined in its overlay mp4, as an image's overlay outlines them")
def _():
    model = rgb_model()  # random weights: labels in patches of every class, many objects
    rng = np.random.default_rng(5)
    for k in range(2):
        save(path(f"vframe{k}.png"), np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((4, 4, 1))))
    subprocess.run([VIDEO_TOOL, "make", path("clip2.mkv"), "10", path("vframe0.png"), path("vframe1.png")], check=True)
    run("predict", model, path("clip2.mkv"), "--out", path("vplain"), "--overlay")
    run("predict", model, path("clip2.mkv"), "--out", path("vlined"), "--overlay", "--instances")
    for k in range(2):
        ids = np.kron(np.array(Image.open(path(f"vlined/clip2/{k:06d}-instances.png"))).astype(np.int64), np.ones((8, 8), np.int64))
        pad = np.pad(ids, 1, mode="edge")  # 32 -> 256 as the overlay enlarges; an outline: an object's pixel by another id
        neighbours = [pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]]
        outline = (ids > 0) & np.any([n != ids for n in neighbours], axis=0)
        near = np.pad(outline, 3)  # within 3 pixels of an outline: H.264 blurs a line into its neighbours
        near = np.any([near[3 + dy : 259 + dy, 3 + dx : 259 + dx] for dy in range(-3, 4) for dx in range(-3, 4)], axis=0)
        frames = []
        for folder in ("vplain", "vlined"):
            subprocess.run([VIDEO_TOOL, "frame", path(f"{folder}/clip2-overlay.mp4"), str(k), path(f"{folder}-{k}.png")], check=True)
            frames.append(np.array(Image.open(path(f"{folder}-{k}.png")))[:256, :256].astype(np.float64))
        plain, lined = frames
        brighter, elsewhere = (lined - plain)[outline].mean(), np.abs(lined - plain)[~near].mean()
        assert outline.sum() > 500 and brighter > 60 and elsewhere < 8, (k, outline.sum(), brighter, elsewhere)


@check("TIFF stacks: fcn data unstack writes a page per PNG as stored; predict segments every page, never the first alone")
def _():
    model = scenes_model()
    rng = np.random.default_rng(5)
    scenes = sorted(glob.glob(path("scenes/JPEGImages/val_*.png")))[:3]
    pages = [Image.open(f).convert("L") for f in scenes]  # the scenes model takes gray input
    pages[0].save(path("volume.tif"), save_all=True, append_images=pages[1:])
    deep = [Image.fromarray(rng.integers(0, 65536, (32, 32)).astype(np.uint16)) for _ in range(3)]
    deep[0].save(path("volume16.tif"), save_all=True, append_images=deep[1:])
    labels = [Image.fromarray((rng.integers(0, 2, (32, 32)) * 255).astype(np.uint8)) for _ in range(3)]
    labels[0].save(path("labels.tif"), save_all=True, append_images=labels[1:])
    labels[0].save(path("labels2.tif"), save_all=True, append_images=labels[1:2])
    os.makedirs(path("em/.images.partial"))  # what a run stopped midway leaves: the next run starts afresh
    open(path("em/.images.partial/009.png"), "wb").write(b"half")
    text = run("data", "unstack", path("volume16.tif"), "--masks", path("labels.tif"), "--out", path("em")).stdout
    assert "3 page(s) as images/ + masks/" in text, text
    assert sorted(listed(path("em"))) == ["images", "masks"] and len(listed(path("em/images"))) == 3, listed(path("em"))
    for k in range(3):  # as stored: 16-bit images, 0/255 masks
        assert (np.array(Image.open(path(f"em/images/{k:03d}.png"))) == np.array(deep[k]).astype(np.int64)).all(), k
        assert (np.array(Image.open(path(f"em/masks/{k:03d}.png"))) == np.array(labels[k])).all(), k
    assert "0 problems found" in run("data", "check", path("em")).stdout
    p = run("data", "unstack", path("volume.tif"), "--masks", path("labels2.tif"), "--out", path("em2"), ok=False)
    one_line_error(p, "labels2.tif: holds 2 pages but ", "volume.tif holds 3")
    p = run("data", "unstack", path("volume.tif"), "--out", path("em"), ok=False)
    one_line_error(p, "em: already holds images/")
    # A corrupt page (page 2's deflate strip overwritten): OpenCV decodes it to zeros without a word; fcn hears
    # libtiff's error. unstack stops and leaves nothing; predict reports the page and segments the others.
    pages[0].save(path("deflated.tif"), save_all=True, append_images=pages[1:], compression="tiff_deflate")
    stack = Image.open(path("deflated.tif"))
    stack.seek(2)
    strip = stack.tag_v2[273][0]  # StripOffsets
    data = bytearray(open(path("deflated.tif"), "rb").read())
    data[strip : strip + 40] = b"\xff" * 40
    open(path("corrupt.tif"), "wb").write(data)
    p = run("data", "unstack", path("corrupt.tif"), "--out", path("em_corrupt"), ok=False)
    assert "corrupt.tif page 2: corrupt TIFF: " in p.stderr and listed(path("em_corrupt")) == [], (p.stderr, listed(path("em_corrupt")))
    p = run("predict", model, path("corrupt.tif"), "--out", path("corrupt_out"), "--json", ok=False)
    assert p.returncode == 1 and "corrupt.tif page 2: corrupt TIFF: " in p.stderr, p.stderr
    assert json.loads(p.stdout)["succeeded"] == 2 and sorted(listed(path("corrupt_out/corrupt"))) == ["000000.png", "000001.png"]
    pages[0].save(path("one.tif"), compression="tiff_deflate")  # one page: the same, through OpenCV's imdecode
    strip = Image.open(path("one.tif")).tag_v2[273][0]
    data = bytearray(open(path("one.tif"), "rb").read())
    data[strip : strip + 40] = b"\xff" * 40
    open(path("one_corrupt.tif"), "wb").write(data)
    one_line_error(run("forward", model, path("one_corrupt.tif"), "--out", path("x.npy"), ok=False), "one_corrupt.tif: corrupt TIFF: ")
    # predict: each page segmented as the same picture is as a PNG, into OUT/volume/000000.png, ...
    out = json.loads(run("predict", model, path("volume.tif"), "--out", path("stack_out"), "--probs", "npy", "--json").stdout)
    assert [i["image"] for i in out["images"]] == [path("volume.tif") + f" page {k}" for k in range(3)], out["images"]
    run("data", "unstack", path("volume.tif"), "--out", path("em_pages"))
    for k in range(3):
        run("predict", model, path(f"em_pages/images/{k:03d}.png"), "--out", path("page_out"), "--probs", "npy")
        alone, page = np.load(path(f"page_out/{k:03d}-probs.npy")), np.load(path(f"stack_out/volume/{k:06d}-probs.npy"))
        assert np.abs(alone - page).max() < 1e-5, (k, np.abs(alone - page).max())
    p = run("forward", model, path("volume.tif"), "--out", path("logits.npy"), ok=False)  # one image asked: the stack named
    one_line_error(p, "volume.tif: holds 3 pages (a multi-page TIFF stack)")


@check("predict --label-stack: a stack's labels as one multi-page TIFF, page for page; a failed page void (255) there")
def _():
    model = scenes_model()
    scenes = sorted(glob.glob(path("scenes/JPEGImages/val_*.png")))[:4]
    pages = [Image.open(f).convert("L") for f in scenes]
    pages[0].save(path("vol4.tif"), save_all=True, append_images=pages[1:], compression="tiff_deflate")
    run("predict", model, path("vol4.tif"), "--out", path("pngs"))  # the per-page PNGs: what the stack must hold
    out = json.loads(run("predict", model, path("vol4.tif"), "--out", path("lstack"), "--label-stack", "--json").stdout)
    assert out["stacks"] == [{"stack": path("vol4.tif"), "pages": 4, "labels": path("lstack/vol4-labels.tif"), "pages_written": 4,
                              "void_pages": []}], out
    assert listed(path("lstack")) == ["vol4-labels.tif"], listed(path("lstack"))  # no PNG folder, no partial file
    labels = Image.open(path("lstack/vol4-labels.tif"))
    assert labels.n_frames == 4
    for k in range(4):
        labels.seek(k)
        assert labels.mode == "L", labels.mode
        assert (np.array(labels) == np.array(Image.open(path(f"pngs/vol4/{k:06d}.png")))).all(), k
    # Page 1's strip overwritten: reported, void in the stack, the other pages as before; exit code 1.
    data = bytearray(open(path("vol4.tif"), "rb").read())
    stack = Image.open(path("vol4.tif"))
    stack.seek(1)
    strip = stack.tag_v2[273][0]
    data[strip : strip + 40] = b"\xff" * 40
    open(path("vol4_bad.tif"), "wb").write(data)
    p = run("predict", model, path("vol4_bad.tif"), "--out", path("lbad"), "--label-stack", "--overlay", "--instances", ok=False)
    assert p.returncode == 1 and "vol4_bad.tif page 1: corrupt TIFF: " in p.stderr, p.stderr
    assert "1 of 4 page(s) could not be segmented and are void (255) there, the first page 1" in p.stderr, p.stderr
    assert sorted(listed(path("lbad/vol4_bad"))) == [f"{k:06d}-overlay.png" for k in (0, 2, 3)]  # overlays still per page
    objects = Image.open(path("lbad/vol4_bad-instances.tif"))  # --instances: the void page has no objects
    assert objects.n_frames == 4 and (objects.seek(1) or not np.array(objects).any()), objects.n_frames
    labels = Image.open(path("lbad/vol4_bad-labels.tif"))
    for k in range(4):
        labels.seek(k)
        expected = np.full(np.array(pages[1]).shape, 255) if k == 1 else np.array(Image.open(path(f"pngs/vol4/{k:06d}.png")))
        assert (np.array(labels) == expected).all(), k
    one_line_error(run("predict", model, scenes[0], "--out", path("x"), "--label-stack", ok=False),
                   "--label-stack: writes the labels of multi-page TIFF stacks, and no input is one")
    # Ctrl-C midway (once progress shows): the pages so far are in the label stack, named as such; exit code 130.
    long = [pages[k % 4] for k in range(3000)]
    long[0].save(path("long.tif"), save_all=True, append_images=long[1:])
    code, err = interrupted(["predict", model, path("long.tif"), "--out", path("llong"), "--label-stack", "--instances"], "long.err")
    assert code == 130, (code, err[-500:])
    labels = Image.open(path("llong/long-labels.tif"))
    written = labels.n_frames
    assert 0 < written < 3000 and f"stopped by Ctrl-C, it holds pages 0..{written - 1} of the 3000" in err, (written, err[-500:])
    assert sorted(listed(path("llong"))) == ["long-instances.tif", "long-labels.tif"], listed(path("llong"))  # no partial file
    assert Image.open(path("llong/long-instances.tif")).n_frames == written  # the objects of the pages done
    for k in (0, written - 1):
        labels.seek(k)
        assert (np.array(labels) == np.array(Image.open(path(f"pngs/vol4/{k % 4:06d}.png")))).all(), k
    # --skip-existing: the stopped stack's file holds too few pages, so the stack is segmented again, whole; a
    # second run then keeps it (and the per-page PNGs of a stack likewise).
    resumed = json.loads(run("predict", model, path("long.tif"), "--out", path("llong"), "--label-stack", "--skip-existing",
                             "--json").stdout)
    assert (resumed["kept"], resumed["stacks"][0]["pages_written"]) == (0, 3000), (resumed["kept"], resumed["stacks"])
    assert Image.open(path("llong/long-labels.tif")).n_frames == 3000
    again = json.loads(run("predict", model, path("long.tif"), "--out", path("llong"), "--label-stack", "--skip-existing",
                           "--json").stdout)
    assert (again["kept"], again["succeeded"], again["stacks"]) == (3000, 0, []), (again["kept"], again["succeeded"])
    pngs = json.loads(run("predict", model, path("vol4.tif"), "--out", path("pngs"), "--skip-existing", "--json").stdout)
    assert (pngs["kept"], pngs["succeeded"]) == (4, 0), pngs


def flood3d(labels, hops=3):
    """Each class's 26-connected components of a labels volume (0: none), by flood fill: ids 1..N. Neighbours at most
    `hops` unit steps away: 3 (26-connected), 2 (18: faces and edges) or 1 (6: faces)."""
    steps = [s for s in np.ndindex(3, 3, 3) if sum(abs(d - 1) for d in s) <= hops]
    flood, count = np.zeros(labels.shape, np.int64), 0
    for start in zip(*np.nonzero(labels)):
        if flood[start]:
            continue
        count += 1
        flood[start], todo = count, [start]
        while todo:
            at = todo.pop()
            for step in steps:
                n = tuple(int(a) + d - 1 for a, d in zip(at, step))
                if all(0 <= n[i] < labels.shape[i] for i in range(3)) and not flood[n] and labels[n] == labels[at]:
                    flood[n] = count
                    todo.append(n)
    return flood, count


@check("predict --label-stack --instances: a stack's objects through its pages, as a 26-connected 3-D flood fill per class finds them")
def _():
    model = rgb_model()  # random weights: labels in patches of every class, many objects
    rng = np.random.default_rng(6)
    base, pages = rng.integers(0, 256, (6, 8, 3)), []
    for k in range(4):  # each page the one before with a few patches changed: objects run through the pages
        base = base.copy()
        base[rng.integers(0, 6, 4), rng.integers(0, 8, 4)] = rng.integers(0, 256, (4, 3))
        pages.append(Image.fromarray(np.kron(base, np.ones((4, 4, 1))).astype(np.uint8)))
    pages[0].save(path("objvol.tif"), save_all=True, append_images=pages[1:])
    args = ["predict", model, path("objvol.tif"), "--out", path("objvol_out"), "--label-stack", "--instances"]
    out = json.loads(run(*args, "--json").stdout)
    stack = out["stacks"][0]
    assert stack["instances"] == path("objvol_out/objvol-instances.tif"), stack
    assert sorted(listed(path("objvol_out"))) == ["objvol-instances.tif", "objvol-labels.tif"]  # no PNG per page

    def read(file):
        image, planes = Image.open(file), []
        for k in range(image.n_frames):
            image.seek(k)
            planes.append(np.array(image).astype(np.int64))
        return np.stack(planes)

    labels, ids = read(path("objvol_out/objvol-labels.tif")), read(path("objvol_out/objvol-instances.tif"))
    flood, count = flood3d(labels)
    found = collections.Counter({int(r): int(c) for r, c in zip(flood[labels > 0], labels[labels > 0])}.values())  # objects per class
    inside = labels > 0
    assert (ids > 0).tolist() == inside.tolist() and ids.max() == count, (ids.max(), count)
    assert len(set(zip(ids[inside], flood[inside]))) == count, count  # one id per flood region, one region per id
    run("predict", model, path("objvol.tif"), "--out", path("objvol_6"), "--label-stack", "--instances", "--connectivity", 6)
    six, (flood6, count6) = read(path("objvol_6/objvol-instances.tif")), flood3d(labels, hops=1)  # faces only: more objects
    assert six.max() == count6 > count and len(set(zip(six[inside], flood6[inside]))) == count6, (six.max(), count6, count)
    per_page = sum(len(np.unique(components)) for components in [flood[k][inside[k]] for k in range(4)])
    assert count >= 10 and per_page > count, (count, per_page)  # objects through several pages: counted once
    assert sorted(stack["objects"].values()) == sorted(found.values()), (stack["objects"], found)
    assert set(np.unique(ids[0])) - {0} == set(range(1, len(np.unique(ids[0])))), "page 0's objects come first"
    sizes = np.bincount(flood.ravel())  # --min-object through the volume: regions of fewer voxels in all are 0, uncounted
    least = int(np.median(sizes[1:])) + 1
    big = sizes >= least
    big[0] = False
    run(*[path("objvol_min") if a == path("objvol_out") else a for a in args], "--min-object", least)
    few = read(path("objvol_min/objvol-instances.tif"))
    assert (few > 0).tolist() == big[flood].tolist() and few.max() == big.sum() < count, (few.max(), big.sum(), count)
    assert len(set(zip(few[few > 0], flood[few > 0]))) == big.sum()
    p = run(*args)
    assert p.stdout.startswith(path("objvol.tif") + " (4 pages) -> ") and f"objvol-instances.tif, {count} object(s)" in p.stdout, p.stdout
    kept = json.loads(run(*args, "--skip-existing", "--json").stdout)
    assert (kept["kept"], kept["succeeded"]) == (4, 0), kept
    os.remove(path("objvol_out/objvol-instances.tif"))
    again = json.loads(run(*args, "--skip-existing", "--json").stdout)
    assert (again["kept"], again["succeeded"]) == (0, 4) and os.path.exists(path("objvol_out/objvol-instances.tif")), again


def png16_pixels(file):
    """H x W x C samples of a 16-bit PNG of 1-4 samples (PIL reads none with alpha at 16 bits), unfiltered by hand
    (PNG's five row filters)."""
    data, at, idat = open(file, "rb").read(), 8, b""
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[at + 8:at + 18])
        idat += data[at + 8:at + 8 + size] if kind == b"IDAT" else b""
        at += 12 + size
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour]
    assert depth == 16, depth
    bpp, stride = 2 * channels, 2 * channels * width
    raw, rows, previous = zlib.decompress(idat), [], np.zeros(stride, np.int64)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        out = np.zeros(stride, np.int64)
        for i in range(stride):
            a, b = (out[i - bpp] if i >= bpp else 0), previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
            out[i] = (line[i] + [0, a, b, (a + b) // 2, paeth][kind]) % 256
        rows.append(out)
        previous = out
    samples = np.array(rows).reshape(height, width, channels, 2)
    return samples[..., 0] * 256 + samples[..., 1]


def nifti_bytes(volume, order="<", code=4, slope=0.0, inter=0.0, dims=None):
    """A single-file NIfTI-1 (.nii) laid out from nifti1.h: 348-byte header, extension flag, voxels (z, y, x) at 352,
    0.8 x 0.8 x 2.5 mm voxels and an sform, in byte order `order`."""
    dims = dims or (volume.shape[2], volume.shape[1], volume.shape[0])
    header = bytearray(352)
    struct.pack_into(order + "i", header, 0, 348)
    struct.pack_into(order + "8h", header, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into(order + "hh", header, 70, code, volume.dtype.itemsize * 8)
    struct.pack_into(order + "8f", header, 76, -1, 0.8, 0.8, 2.5, 1, 1, 1, 1)
    struct.pack_into(order + "fff", header, 108, 352, slope, inter)
    struct.pack_into(order + "hh", header, 252, 1, 1)  # qform_code, sform_code
    struct.pack_into(order + "12f", header, 280, -0.8, 0, 0, 90, 0, 0.8, 0, -120, 0, 0, 2.5, -60)  # srow_x, srow_y, srow_z
    header[344:348] = b"n+1\0"
    return bytes(header) + volume.astype(volume.dtype.newbyteorder(order)).tobytes()


def read_nifti_file(file):
    """(header bytes, byte order, voxels z x y x x) of a .nii or .nii.gz, read by hand from nifti1.h's layout."""
    data = open(file, "rb").read()
    data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    order = "<" if struct.unpack("<i", data[:4])[0] == 348 else ">"
    dims = struct.unpack(order + "8h", data[40:56])
    code, offset = struct.unpack(order + "h", data[70:72])[0], int(struct.unpack(order + "f", data[108:112])[0])
    dtype = np.dtype({2: "u1", 4: "i2", 8: "i4", 16: "f4", 512: "u2"}[code]).newbyteorder(order)
    voxels = np.frombuffer(data, dtype, dims[1] * dims[2] * dims[3], offset).reshape(dims[3], dims[2], dims[1])
    return data[:348], order, voxels


@check("NIfTI folders: data unstack DIR --masks DIR writes every volume's slices as NAME_NNN; --val holds whole volumes out")
def _():
    rng = np.random.default_rng(4)
    os.makedirs(path("imagesTr")), os.makedirs(path("labelsTr"))
    volumes = {}
    for name, slices, order, suffix in (("a", 3, "<", ".nii.gz"), ("b", 2, ">", ".nii"), ("c", 4, "<", ".nii.gz")):
        ct = rng.integers(-1000, 1000, (slices, 8, 10)).astype(np.int16)
        seg = rng.integers(0, 3, (slices, 8, 10)).astype(np.uint8)
        volumes[name] = (ct, seg)
        for folder, data in (("imagesTr", ct), ("labelsTr", seg)):
            raw = nifti_bytes(data, order, code={np.dtype("int16"): 4, np.dtype("uint8"): 2}[data.dtype])
            open(path(f"{folder}/{name}{suffix}"), "wb").write(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    open(path("imagesTr/._a.nii.gz"), "wb").write(b"\0\5\26\7 macOS resource fork")  # as some archives carry them: left out
    open(path("imagesTr/dataset.json"), "w").write("{}")
    p = run("data", "unstack", path("imagesTr"), "--masks", path("labelsTr"), "--val", 0.34, "--seed", 1, "--out", path("dec"))
    assert "9 slice(s) of 3 volume(s) as images/ + masks/" in p.stdout and "1 volume(s) held out whole" in p.stdout, p.stdout
    names = sorted(listed(path("dec/images")))
    assert names == [f"{n}_{k:03d}.png" for n in "abc" for k in range(len(volumes[n][0]))] == sorted(listed(path("dec/masks"))), names
    for n, (ct, seg) in volumes.items():  # each volume over its own range, as predict maps it without --window
        low, high = ct.min(), ct.max()
        for k in range(len(ct)):
            png = np.array(Image.open(path(f"dec/images/{n}_{k:03d}.png"))).astype(np.int64)
            assert np.abs(png - np.round((ct[k] - low) / (high - low) * 65535)).max() <= 1, (n, k)
            assert (np.array(Image.open(path(f"dec/masks/{n}_{k:03d}.png"))) == seg[k]).all(), (n, k)
    assert json.load(open(path("dec/classes.json")))["names"] == ["background", "label 1", "label 2"]
    lists = {s: open(path(f"dec/splits/{s}.txt")).read().split() for s in ("train", "val")}
    held = {i.rsplit("_", 1)[0] for i in lists["val"]}
    assert len(held) == 1 and not held & {i.rsplit("_", 1)[0] for i in lists["train"]}, lists
    assert sorted(lists["val"]) == [f"{n}_{k:03d}" for n in held for k in range(len(volumes[n][0]))], lists
    assert f"({held.pop()})" in p.stdout, p.stdout
    check = json.loads(run("data", "check", path("dec"), "--json").stdout)
    assert check["splits"] == ["train", "val"] and sum(check["sizes"]) == 9, check
    # data check on the volumes themselves: their headers' sizes, voxel sizes and orientations (LAS: the sform's -x first).
    p = run("data", "check", path("imagesTr"))
    assert "3 case(s) of NIfTI volumes" in p.stdout and "warning" not in p.stdout, p.stdout
    assert re.search(r"^b +1 +10 8 2 +0\.8 x 0\.8 x 2\.5 +LAS  axial$", p.stdout, re.M), p.stdout
    assert f"next: fcn data unstack {path('imagesTr')} --masks LABEL_VOLUMES --val 0.2 --out DATASET" in p.stdout, p.stdout
    # --window: one mapping for every volume; fcn data split --by-volume re-splits by volume.
    p = run("data", "unstack", path("imagesTr"), "--masks", path("labelsTr"), "--window", "-500,500", "--out", path("dec_w"))
    assert "voxels -500..500 as black..white" in p.stdout and "--by-volume" in p.stdout, p.stdout
    png = np.array(Image.open(path("dec_w/images/b_001.png"))).astype(np.int64)
    assert np.abs(png - np.round(np.clip((volumes["b"][0][1] + 500) / 1000, 0, 1) * 65535)).max() <= 1
    run("data", "split", path("dec_w"), "--val", 0.5, "--by-volume", "--seed", 3)
    val = open(path("dec_w/splits/val.txt")).read().split()
    assert len({i.rsplit("_", 1)[0] for i in val}) == 2 and len(val) in (3 + 2, 3 + 4, 2 + 4), val
    # eval --truth: fcn predict's label volumes against the truth, volume by volume (3-D Dice per class, mL), as numpy counts them.
    run("init", "--arch", "unet", "--depth", 2, "--base-channels", 4, "--classes", 3, "--in-channels", 1, "--out", path("gray3v.fcn"))
    run("predict", path("gray3v.fcn"), path("imagesTr"), "--out", path("dec_masks"), "--instances", "--quiet")
    json.dump({"labels": {"0": "background", "1": "left atrium", "2": "scar"}}, open(path("dataset.json"), "w"))  # a Decathlon task's
    r = json.loads(run("eval", "--predictions", path("dec_masks"), "--truth", path("labelsTr"), "--markdown", path("dec.md"), "--json").stdout)
    assert r["classes"] == ["background", "left atrium", "scar"] and [v["name"] for v in r["volumes"]] == ["a", "b", "c"], r["classes"]
    sums = {1: [], 2: []}
    for v in r["volumes"]:
        truth, predicted = volumes[v["name"]][1].astype(np.int64), read_nifti_file(path(f"dec_masks/{v['name']}-labels.nii.gz"))[2]
        for c in (0, 1, 2):
            p_c, t_c = predicted == c, truth == c
            expected = 2 * (p_c & t_c).sum() / (p_c.sum() + t_c.sum()) if p_c.sum() + t_c.sum() else None
            assert (v["dice"][c] is None) == (expected is None) and (expected is None or abs(v["dice"][c] - expected) < 1e-9), (v, c, expected)
            assert abs(v["true_ml"][c] - t_c.sum() * 0.8 * 0.8 * 2.5 / 1000) < 1e-6 * max(1, t_c.sum()), v  # pixdim in float32
            if c and expected is not None:
                sums[c].append(expected)
    assert all(abs(r["mean_dice"][c] - np.mean(sums[c])) < 1e-9 for c in (1, 2)), (r["mean_dice"], sums)
    assert all(v["misalignment"] is None for v in r["volumes"]), r["volumes"]  # predict writes over the scan's header
    # Labels whose header places them elsewhere than their scan (first voxel 5 mm off; an axis flipped): named on
    # stderr by eval --truth and unstack, scored and written voxel for voxel all the same.
    os.makedirs(path("labels_moved"))
    for name, (ct, seg) in volumes.items():
        raw = bytearray(nifti_bytes(seg, "<", code=2))
        if name == "b":
            struct.pack_into("<f", raw, 292, 95.0)  # srow_x's offset: 90 -> 95 mm
        open(path(f"labels_moved/{name}.nii"), "wb").write(bytes(raw))
    p = run("eval", "--predictions", path("dec_masks"), "--truth", path("labels_moved"), "--json")
    moved = json.loads(p.stdout)
    assert [v["misalignment"] for v in moved["volumes"]] == [None, f"its first voxel lies 5 mm from that of {path('labels_moved/b.nii')}: voxel for voxel, they do not pair the same places", None], moved["volumes"]
    assert f"fcn: warning: {path('dec_masks/b-labels.nii.gz')}: its first voxel lies 5 mm from that of" in p.stderr, p.stderr
    assert moved["volumes"][1]["dice"] == r["volumes"][1]["dice"]
    raw = bytearray(nifti_bytes(volumes["a"][1], "<", code=2))
    struct.pack_into("<f", raw, 280, 0.8)  # srow_x[0]: -0.8 -> 0.8, the i axis flipped
    open(path("labels_moved/a.nii"), "wb").write(bytes(raw))
    p = run("data", "unstack", path("imagesTr/a.nii.gz"), "--masks", path("labels_moved/a.nii"), "--out", path("dec_flipped"))
    assert f"fcn: warning: {path('labels_moved/a.nii')}: its i axis points another way than that of {path('imagesTr/a.nii.gz')}" in p.stderr, p.stderr
    assert (np.array(Image.open(path("dec_flipped/masks/001.png"))) == volumes["a"][1][1]).all()
    fingerprint = json.loads(run("data", "check", path("labels_moved"), "--json").stdout)
    assert [(c["name"], c["axes"], c["size"]) for c in fingerprint["cases"]] == [("a", "RAS", [10, 8, 3]), ("b", "LAS", [10, 8, 2]), ("c", "LAS", [10, 8, 4])]
    assert np.allclose(fingerprint["median_mm"], [0.8, 0.8, 2.5]) and len(fingerprint["warnings"]) == 1, fingerprint
    assert fingerprint["warnings"][0].startswith("the cases are stored in 2 orientations: 2 LAS (axial slices: b, c); 1 RAS (axial slices: a)")

    def surface_points(mask):  # voxels with a 6-neighbour outside (past the edge too), in mm (z 2.5, y 0.8, x 0.8)
        padded = np.pad(mask, 1)
        inner = np.ones_like(mask)
        for axis in range(3):
            for step in (-1, 1):
                inner &= np.roll(padded, step, axis)[1:-1, 1:-1, 1:-1]
        return np.argwhere(mask & ~inner) * np.array([2.5, 0.8, 0.8])

    # HD95: the larger directed 95th percentile of surface-to-surface distances; NSD: the share of both surfaces'
    # voxels within the tolerance of the other (2 mm by default, then 0.8: one in-plane voxel); brute force.
    r_tight = json.loads(run("eval", "--predictions", path("dec_masks"), "--truth", path("labelsTr"), "--nsd-tolerance", 0.8, "--json").stdout)
    assert r["nsd_tolerance_mm"] == 2 and r_tight["nsd_tolerance_mm"] == 0.8 and r_tight["volumes"][0]["dice"] == r["volumes"][0]["dice"]
    nsd_seen = []
    for v, v_tight in zip(r["volumes"], r_tight["volumes"]):
        truth, predicted = volumes[v["name"]][1].astype(np.int64), read_nifti_file(path(f"dec_masks/{v['name']}-labels.nii.gz"))[2]
        assert v["hd95_mm"][0] is None and v["nsd"][0] is None
        for c in (1, 2):
            sp, st = surface_points(predicted == c), surface_points(truth == c)
            if not len(sp) or not len(st):
                assert v["hd95_mm"][c] is None and v["nsd"][c] == (None if not len(sp) and not len(st) else 0), v
                continue
            d = np.sqrt(((sp[:, None, :] - st[None, :, :]) ** 2).sum(-1))
            expected = max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))
            assert abs(v["hd95_mm"][c] - expected) < 1e-4, (v["name"], c, v["hd95_mm"][c], expected)
            for got, tol in ((v, 2.0), (v_tight, 0.8)):
                near = ((d.min(1) <= tol + 1e-6).sum() + (d.min(0) <= tol + 1e-6).sum()) / (len(sp) + len(st))
                assert abs(got["nsd"][c] - near) < 1e-12, (v["name"], c, tol, got["nsd"][c], near)
                nsd_seen.append(near)
    assert any(0 < n < 1 for n in nsd_seen), nsd_seen  # the check can tell near from far
    assert all(abs(r["mean_nsd"][c] - np.nanmean([np.nan if v["nsd"][c] is None else v["nsd"][c] for v in r["volumes"]])) < 1e-12 for c in (1, 2)), r
    text = run("eval", "--predictions", path("dec_masks"), "--truth", path("labelsTr")).stdout
    assert "left atrium Dice" in text and "HD95 mm" in text and "mean of 3 volume(s)" in text and "foreground mean Dice" in text, text
    assert open(path("dec.md")).read().startswith("| volume | left atrium Dice | NSD 2 mm | HD95 mm | mL true / predicted | objects found | scar Dice |")

    def objects_of(mask):  # 26-connected components of a boolean volume, by a breadth-first flood fill: a list of voxel lists
        seen, found = np.zeros_like(mask), []
        for start in map(tuple, np.argwhere(mask)):
            if seen[start]:
                continue
            seen[start], todo, voxels = True, [start], []
            while todo:
                voxel = todo.pop()
                voxels.append(voxel)
                for step in np.ndindex(3, 3, 3):
                    n = tuple(np.array(voxel) + np.array(step) - 1)
                    if all(0 <= n[a] < mask.shape[a] for a in range(3)) and mask[n] and not seen[n]:
                        seen[n] = True
                        todo.append(n)
            found.append(voxels)
        return found

    r_large = json.loads(run("eval", "--predictions", path("dec_masks"), "--truth", path("labelsTr"), "--min-object", 3, "--json").stdout)
    assert r_large["objects"]["min_object"] == 3 and r["objects"]["min_object"] == 1
    for scored, least in ((r, 1), (r_large, 3)):  # lesion-wise: objects of `least` voxels or more, the smaller ones as background
        totals = {"true": [0] * 3, "found": [0] * 3, "predicted": [0] * 3, "false": [0] * 3}
        for v in scored["volumes"]:
            truth, predicted = volumes[v["name"]][1].astype(np.int64), read_nifti_file(path(f"dec_masks/{v['name']}-labels.nii.gz"))[2]
            expected = {"true": [0] * 3, "found": [0] * 3, "predicted": [0] * 3, "false": [0] * 3}
            for c in (1, 2):
                true_objects = [set(o) for o in objects_of(truth == c) if len(o) >= least]
                predicted_objects = [set(o) for o in objects_of(predicted == c) if len(o) >= least]
                expected["true"][c], expected["predicted"][c] = len(true_objects), len(predicted_objects)
                expected["found"][c] = sum(any(t & p for p in predicted_objects) for t in true_objects)
                expected["false"][c] = sum(not any(t & p for t in true_objects) for p in predicted_objects)
            assert v["objects"] == expected, (least, v["name"], v["objects"], expected)
            for key in totals:
                totals[key] = [a + b for a, b in zip(totals[key], expected[key])]
        assert sum(totals["true"]) > 0 and sum(totals["predicted"]) > 0, totals  # something to find
        assert {k: scored["objects"][k] for k in totals} == totals, (least, scored["objects"], totals)
        assert scored["objects"]["sensitivity"][1] == (totals["found"][1] / totals["true"][1] if totals["true"][1] else None), scored["objects"]
    assert r_large["objects"]["predicted"] != r["objects"]["predicted"], "--min-object 3 left no speck out: the check cannot tell"
    one_line_error(run("eval", "--predictions", path("dec_masks"), "--data", path("dec"), "--nsd-tolerance", 1, ok=False), "--nsd-tolerance", "--truth")
    # Files named without a folder, from the folder they are in: the working folder, whose parent holds dataset.json.
    shutil.copy(path("labelsTr/a.nii.gz"), path("dec_masks/a_truth.nii.gz"))
    assert "left atrium Dice" in run("eval", "--predictions", "a-labels.nii.gz", "--truth", "a_truth.nii.gz", cwd=path("dec_masks")).stdout
    p = run("data", "unstack", "a_truth.nii.gz", "--masks", "a_truth.nii.gz", "--out", "a_here", cwd=path("dec_masks"))
    assert "3 slice(s)" in p.stdout, p.stdout
    # A truth header without the slice spacing, a prediction over other voxel sizes: scored, each said once.
    labels = np.zeros((2, 3, 4), np.uint8)
    labels[0, 0, 0] = 1
    no_z = bytearray(nifti_bytes(labels, code=2))
    struct.pack_into("<f", no_z, 88, 0.0)  # pixdim[3]
    open(path("no_z.nii"), "wb").write(no_z)
    other = bytearray(nifti_bytes(labels, code=2))
    struct.pack_into("<f", other, 80, 1.6)  # pixdim[1]: 1.6 mm columns, the truth's 0.8
    open(path("other.nii"), "wb").write(other)
    p = run("eval", "--predictions", path("other.nii"), "--truth", path("no_z.nii"), "--json")
    x, y, z = json.loads(p.stdout)["volumes"][0]["voxel_mm"]
    assert abs(x - 0.8) < 1e-6 and abs(y - 0.8) < 1e-6 and z is None, p.stdout  # the truth's, pixdim in float32
    assert "no_z.nii: its header gives no voxel size along z: HD95 and NSD count one voxel as 1 mm there" in p.stderr, p.stderr
    assert "other.nii: its voxel sizes differ from its truth's" in p.stderr, p.stderr
    assert "differ" not in run("eval", "--predictions", path("no_z.nii"), "--truth", path("no_z.nii")).stderr
    one_line_error(run("eval", "--predictions", path("dec_masks"), "--truth", path("labelsTr"), "--data", path("dec"), ok=False),
                   "--truth: takes the ground truth as label volumes, in place of --data")
    one_line_error(run("eval", "--predictions", path("dec_masks"), "--truth", path("labelsTr/a.nii.gz"), ok=False), "dec_masks: is a folder and",
                   "score a folder against a folder")
    # Bad folders: one line naming the file, nothing left behind.
    os.remove(path("labelsTr/c.nii.gz"))
    one_line_error(run("data", "unstack", path("imagesTr"), "--masks", path("labelsTr"), "--out", path("dec_bad"), ok=False),
                   "c.nii.gz: has no label volume of its name in", "labelsTr")
    open(path("labelsTr/c.nii.gz"), "wb").write(gzip.compress(nifti_bytes(np.zeros((4, 8, 9), np.uint8), code=2)))
    one_line_error(run("data", "unstack", path("imagesTr"), "--masks", path("labelsTr"), "--out", path("dec_bad"), ok=False),
                   "labelsTr/c.nii.gz: is 9x8x4 voxels but", "c.nii.gz is 10x8x4")
    assert not os.path.exists(path("dec_bad")) or listed(path("dec_bad")) == [], listed(path("dec_bad"))
    one_line_error(run("data", "unstack", path("imagesTr/b.nii"), "--val", 0.2, "--out", path("dec_bad"), ok=False), "--val: holds whole volumes of a folder out")
    one_line_error(run("data", "unstack", path("imagesTr"), "--val", 0.2, "--out", path("dec_bad"), ok=False), "--val: holds labelled slices out", "--masks")
    os.makedirs(path("empty_vols"))
    one_line_error(run("data", "unstack", path("empty_vols"), "--out", path("dec_bad"), ok=False), "empty_vols: holds no NIfTI volume")


@check("NIfTI spacing: data unstack --spacing median resamples every case's slices (PyTorch's bilinear as the oracle); the model keeps the pixels and predict resamples volumes to them")
def _():
    import torch.nn.functional as F
    rng = np.random.default_rng(8)
    os.makedirs(path("sp/imagesTr")), os.makedirs(path("sp/labelsTr"))
    cases = {}
    for name, shape, mm in (("a", (3, 16, 20), 0.8), ("b", (2, 8, 10), 1.6), ("c", (2, 8, 10), 1.6)):
        ct = rng.integers(-1000, 1000, shape).astype(np.int16)
        seg = np.kron(rng.integers(0, 3, (shape[0], shape[1] // 2, shape[2] // 2)), np.ones((1, 2, 2))).astype(np.uint8)
        seg[:, 0, :3] = 2  # a run of three: a pair and a half-pixel's share at 2:1
        cases[name] = (ct, seg)
        for folder, data, code in (("imagesTr", ct, 4), ("labelsTr", seg, 2)):
            raw = bytearray(nifti_bytes(data, code=code))
            struct.pack_into("<ff", raw, 80, mm, mm)  # pixdim[1], pixdim[2]
            open(path(f"sp/{folder}/{name}.nii"), "wb").write(bytes(raw))
    p = run("data", "check", path("sp/imagesTr"))
    assert "in-plane voxel sides range 0.8 to 1.6 mm" in p.stdout and "--spacing median --val 0.2" in p.stdout, p.stdout
    # data check --masks reads the label volumes too: the labels of each case, their voxels (numpy's counts), every problem listed.
    checked = json.loads(run("data", "check", path("sp/imagesTr"), "--masks", path("sp/labelsTr"), "--json").stdout)
    assert [c["labels"] for c in checked["cases"]] == [[0, 1, 2]] * 3 and checked["errors"] == [], checked
    assert checked["label_voxels"] == np.bincount(np.concatenate([seg.ravel() for _, seg in cases.values()])).tolist(), checked["label_voxels"]
    assert re.search(r"^a +1 +20 16 3 +0\.8 x 0\.8 x 2\.5 +LAS  axial +0,1,2$", run("data", "check", path("sp/imagesTr"), "--masks", path("sp/labelsTr")).stdout, re.M)
    os.makedirs(path("sp/labels_bad"))
    shutil.copy(path("sp/labelsTr/a.nii"), path("sp/labels_bad/a.nii"))
    open(path("sp/labels_bad/b.nii"), "wb").write(nifti_bytes(np.zeros((2, 10, 8), np.uint8), code=2))  # 8 x 10 x 2: turned
    p = run("data", "check", path("sp/imagesTr"), "--masks", path("sp/labels_bad"), ok=False)
    assert p.returncode == 1 and "error: " + path("sp/labels_bad/b.nii") + ": is 8x10x2 voxels but" in p.stdout, p.stdout
    assert f"error: {path('sp/imagesTr/c.nii')}: has no label volume of its name in" in p.stdout and "2 problems found" in p.stdout, p.stdout
    one_line_error(run("data", "check", path("sp"), "--masks", path("sp/labelsTr"), ok=False), "--masks: checks the label volumes of a folder of NIfTI cases")
    p = run("data", "unstack", path("sp/imagesTr"), "--masks", path("sp/labelsTr"), "--spacing", "median", "--out", path("sp_ds"))
    assert "+ slicing.json (resampled to 1.6 mm pixels; fcn predict gives the net volumes alike)" in p.stdout, p.stdout
    assert np.allclose(json.load(open(path("sp_ds/slicing.json")))["pixel_mm"], [1.6, 1.6], atol=1e-6)
    assert "pixels: 1.6 mm (slicing.json" in run("data", "check", path("sp_ds")).stdout
    assert np.allclose(json.loads(run("data", "check", path("sp_ds"), "--json").stdout)["pixel_mm"], [1.6, 1.6], atol=1e-6)
    ct, seg = cases["a"]
    low, high = ct.min(), ct.max()
    for k in range(3):  # a: 16 x 20 voxels of 0.8 mm -> 8 x 10 pixels of 1.6 mm, as PyTorch's bilinear (half-pixel centres) resamples
        mapped = torch.tensor((ct[k].astype(np.float64) - low) / (high - low), dtype=torch.float32)[None, None]
        expected = F.interpolate(mapped, size=(8, 10), mode="bilinear", align_corners=False)[0, 0].numpy()
        png = np.array(Image.open(path(f"sp_ds/images/a_{k:03d}.png"))).astype(np.int64)
        assert png.shape == (8, 10) and np.abs(png - np.round(expected * 65535)).max() <= 1, (k, png.shape)
        values = np.unique(seg[k])  # labels: each value's indicator resampled, the largest taken (the lower value where tied)
        indicators = torch.tensor(np.stack([seg[k] == v for v in values]).astype(np.float32))[None]
        by_value = values[F.interpolate(indicators, size=(8, 10), mode="bilinear", align_corners=False)[0].argmax(0).numpy()]
        assert (np.array(Image.open(path(f"sp_ds/masks/a_{k:03d}.png"))) == by_value).all(), k
    for k in range(2):  # b's voxels are the pixels asked for: as stored
        assert (np.array(Image.open(path(f"sp_ds/masks/b_{k:03d}.png"))) == cases["b"][1][k]).all(), k
    # The model trained on them keeps the pixels (info, ONNX); predict resamples each slice to them and the scores back.
    run("train", "--data", path("sp_ds"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--batch", 7, "--out", path("sp0.fcn"))
    randomize_model_file(path("sp0.fcn"), path("sp.fcn"), 3)
    assert np.allclose(json.loads(torch.load(path("sp.fcn"))["meta"])["pixel_mm"], [1.6, 1.6], atol=1e-6)
    assert "pixels      1.6 mm (trained on slices resampled so" in run("info", path("sp.fcn")).stdout
    run("export", path("sp.fcn"), "--onnx", path("sp.onnx"), "--size", "16x16")
    assert b"fcn.pixel_mm" in open(path("sp.onnx"), "rb").read()
    p = run("predict", path("sp.fcn"), path("sp/imagesTr/a.nii"), "--out", path("sp_masks"), "--probs", "nii", "--json")
    entry = json.loads(p.stdout)["stacks"][0]
    assert entry["net_size"] == [10, 8] and np.allclose(entry["pixel_mm"], [1.6, 1.6], atol=1e-6), entry
    probs = np.frombuffer(gzip.decompress(open(path("sp_masks/a-probs.nii.gz"), "rb").read()), "<f4", 3 * 3 * 16 * 20, 352).reshape(3, 3, 16, 20)
    labels = read_nifti_file(path("sp_masks/a-labels.nii.gz"))[2]
    assert labels.shape == (3, 16, 20), labels.shape  # over the scan's voxels
    for k in range(3):  # the net on the resampled slice (fcn forward on the unstacked PNG), its logits resampled back, softmax
        run("forward", path("sp.fcn"), path(f"sp_ds/images/a_{k:03d}.png"), "--out", path("sp_logits.npy"))
        logits = F.interpolate(torch.tensor(np.load(path("sp_logits.npy"))), size=(16, 20), mode="bilinear", align_corners=False)[0]
        expected = torch.softmax(logits, 0).numpy()
        assert np.abs(probs[:, k] - expected).max() < 2e-3, (k, np.abs(probs[:, k] - expected).max())
        assert (labels[k] == expected.argmax(0)).mean() > 0.97, k
    stored = json.loads(run("predict", path("sp.fcn"), path("sp/imagesTr/a.nii"), "--out", path("sp_stored"), "--spacing", "none", "--probs", "nii", "--json").stdout)
    assert stored["stacks"][0]["net_size"] == [20, 16] and stored["stacks"][0]["pixel_mm"] is None, stored["stacks"][0]
    other = np.frombuffer(gzip.decompress(open(path("sp_stored/a-probs.nii.gz"), "rb").read()), "<f4", 3 * 3 * 16 * 20, 352).reshape(3, 3, 16, 20)
    assert np.abs(other - probs).max() > 1e-2, "as stored is not resampled"
    assert "(slices resampled to 1.6 mm pixels for the net: 10x8)" in run("predict", path("sp.fcn"), path("sp/imagesTr/a.nii"), "--out", path("sp_text")).stdout
    # Fine-tuned on slices as stored, the new model takes volumes as stored, and train says so.
    run("data", "unstack", path("sp/imagesTr/b.nii"), "--masks", path("sp/labelsTr/b.nii"), "--out", path("sp_b"))
    p = run("train", "--data", path("sp_b"), "--arch", "unet", "--weights", path("sp.fcn"), "--epochs", 1, "--out", path("sp_b.fcn"))
    assert "sp.fcn was trained on slices of 1.6 mm pixels, and" in p.stderr and "holds slices as stored (no slicing.json)" in p.stderr, p.stderr
    assert "pixel_mm" not in json.loads(torch.load(path("sp_b.fcn"))["meta"])
    one_line_error(run("data", "unstack", path("sp/imagesTr/a.nii"), "--spacing", "median", "--out", path("sp_bad"), ok=False),
                   "--spacing: median is the median voxel of a folder's cases;", "a.nii is one volume: give MM or X,Y")
    one_line_error(run("data", "unstack", path("sp/imagesTr"), "--spacing", "0,1", "--out", path("sp_bad"), ok=False),
                   "--spacing: '0,1': a pixel's sides must be 0.001..1000 mm (got 0 x 1)")
    one_line_error(run("data", "unstack", path("sp/imagesTr"), "--spacing", "1.6x", "--out", path("sp_bad"), ok=False),
                   "--spacing: '1.6x' is not MM (square pixels, e.g. 0.8), X,Y")
    one_line_error(run("data", "unstack", path("sp_ds/images/a_000.png"), "--spacing", "1", "--out", path("sp_bad"), ok=False),
                   "--spacing: resamples NIfTI volumes' slices by their voxel sizes, and", "a_000.png is not one")
    one_line_error(run("predict", path("sp.fcn"), path("sp_ds/images/a_000.png"), "--spacing", "1", "--out", path("sp_bad"), ok=False),
                   "--spacing: resamples the slices of NIfTI volumes (.nii, .nii.gz) by their voxel sizes, and no input is one")
    one_line_error(run("predict", path("sp.fcn"), path("sp/imagesTr/a.nii"), "--resize", 32, "--out", path("sp_bad"), ok=False),
                   "--resize: resizes images, and", "a.nii is a NIfTI volume whose slices are resampled to 1.6 mm pixels (", "sp.fcn's)")
    assert run("predict", path("sp.fcn"), path("sp/imagesTr/a.nii"), "--resize", 32, "--spacing", "none", "--out", path("sp_resized")).returncode == 0


@check("NIfTI orientation: data unstack --orient RAS cuts a case stored as sagittal slices into the axial slices of the same anatomy stored LAS; the model keeps it and predict puts the labels back where the voxels lie")
def _():
    rng = np.random.default_rng(12)
    anatomy = np.kron(rng.integers(-1000, 1000, (4, 6, 5)), np.ones((1, 4, 4))).astype(np.int16)  # z, y, x: 4 x 24 x 20, LAS
    seg = (anatomy > 0).astype(np.uint8)
    def sagittal(data, code):  # stored i along y (A), j along z (S), k along x (L): voxels [x][z][y]
        raw = bytearray(nifti_bytes(np.ascontiguousarray(np.transpose(data, (2, 0, 1))), code=code))
        struct.pack_into("<fff", raw, 80, 0.8, 2.5, 0.8)  # pixdim along i, j, k
        struct.pack_into("<12f", raw, 280, 0, 0, -0.8, 90, 0.8, 0, 0, -120, 0, 2.5, 0, -60)
        return bytes(raw)
    os.makedirs(path("or/imagesTr")), os.makedirs(path("or/labelsTr"))
    for folder, data, code in (("imagesTr", anatomy, 4), ("labelsTr", seg, 2)):
        open(path(f"or/{folder}/las.nii"), "wb").write(nifti_bytes(data, code=code))
        open(path(f"or/{folder}/sag.nii"), "wb").write(sagittal(data, code))
    p = run("data", "check", path("or/imagesTr"))
    assert "the cases are stored in 2 orientations: 1 ASL (sagittal slices: sag); 1 LAS (axial slices: las)" in p.stdout, p.stdout
    assert "--orient RAS" in p.stdout.splitlines()[-1], p.stdout
    assert "in-plane voxel sides" not in p.stdout and "--spacing" not in p.stdout, p.stdout  # as stored 0.8 x 2.5 against 0.8 x 0.8; cut alike, one scale
    cut = json.loads(run("data", "check", path("or/imagesTr"), "--orient", "ras", "--json").stdout)  # codes in any case
    assert [(c["size"], c["axes"]) for c in cut["cases"]] == [([20, 24, 4], "LAS"), ([20, 24, 4], "ASL")], cut  # sizes as cut, axes as stored
    assert np.allclose([c["voxel_mm"] for c in cut["cases"]] + [cut["median_mm"]], [0.8, 0.8, 2.5]), cut
    assert cut["orient"] == "RAS" and not cut["warnings"], cut
    assert "--orient RAS" in run("data", "check", path("or/imagesTr"), "--orient", "RAS").stdout.splitlines()[-1]
    p = run("data", "unstack", path("or/imagesTr"), "--masks", path("or/labelsTr"), "--orient", "Ras", "--window", "-1000,1000", "--out", path("or_ds"))
    assert "8 slice(s) of 2 volume(s)" in p.stdout and "slicing.json (cut as RAS slices;" in p.stdout, p.stdout
    assert json.load(open(path("or_ds/slicing.json"))) == {"axes": "RAS"}
    assert "slices: cut as RAS (slicing.json" in run("data", "check", path("or_ds")).stdout
    for k in range(4):  # the same anatomy, whichever way it was stored: axial slice k from the feet up, columns left to right
        las, sag = (np.array(Image.open(path(f"or_ds/images/{n}_{k:03d}.png"))).astype(np.int64) for n in ("las", "sag"))
        assert las.shape == (24, 20) and (las == sag).all(), k
        assert (las == np.round((anatomy[k, :, ::-1] + 1000) / 2000 * 65535)).all(), k  # LAS: columns reversed to run left to right
        assert (np.array(Image.open(path(f"or_ds/masks/sag_{k:03d}.png"))) == seg[k, :, ::-1]).all(), k
    run("train", "--data", path("or_ds"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--batch", 8, "--out", path("or0.fcn"))
    randomize_model_file(path("or0.fcn"), path("or.fcn"), 5)
    assert json.loads(torch.load(path("or.fcn"))["meta"])["axes"] == "RAS"
    assert "slices      cut as RAS" in run("info", path("or.fcn")).stdout
    r = json.loads(run("predict", path("or.fcn"), path("or/imagesTr"), "--window", "-1000,1000", "--probs", "nii", "--out", path("or_masks"), "--json").stdout)
    assert [v["axes"] for v in r["stacks"]] == ["RAS", "RAS"] and [v["pages"] for v in r["stacks"]] == [4, 4], r["stacks"]
    las, sag = (read_nifti_file(path(f"or_masks/{n}-labels.nii.gz"))[2] for n in ("las", "sag"))
    assert las.shape == (4, 24, 20) and sag.shape == (20, 4, 24), (las.shape, sag.shape)  # each over its own scan's voxels
    assert (sag == np.transpose(las, (2, 0, 1))).all(), "the same labels where the same anatomy lies"
    las_p, sag_p = (np.frombuffer(gzip.decompress(open(path(f"or_masks/{n}-probs.nii.gz"), "rb").read()), "<f4", 2 * 1920, 352) for n in ("las", "sag"))
    las_p, sag_p = las_p.reshape(2, 4, 24, 20), sag_p.reshape(2, 20, 4, 24)
    assert np.abs(sag_p - np.transpose(las_p, (0, 3, 1, 2))).max() < 1e-6 and las_p.std() > 1e-3, "the same probabilities, not all one"
    stored = json.loads(run("predict", path("or.fcn"), path("or/imagesTr/sag.nii"), "--orient", "Stored", "--out", path("or_stored"), "--json").stdout)
    assert stored["stacks"][0]["axes"] is None and stored["stacks"][0]["pages"] == 20, stored["stacks"][0]
    one_line_error(run("data", "unstack", path("or/imagesTr"), "--orient", "RAX", "--out", path("or_bad"), ok=False),
                   "--orient: 'RAX' is not an orientation: three letters, one of R/L, A/P and S/I each (e.g. RAS)")
    one_line_error(run("data", "check", path("or/imagesTr"), "--orient", "RAX", ok=False),
                   "--orient: 'RAX' is not an orientation: three letters, one of R/L, A/P and S/I each (e.g. RAS)")
    one_line_error(run("data", "check", path("or_ds"), "--orient", "RAS", ok=False), "--orient: cuts a folder of NIfTI cases, and")
    one_line_error(run("predict", path("or.fcn"), path("or_ds/images"), "--orient", "RAS", "--out", path("or_bad"), ok=False),
                   "--orient: cuts NIfTI volumes (.nii, .nii.gz) into slices by their orientation, and no input is one")


@check("NIfTI cases of several channels: nnU-Net's NAME_0000 + NAME_0001 and a 4-D volume unstack, train, predict and eval as one case; 2.5-D --context")
def _():
    rng = np.random.default_rng(12)
    os.makedirs(path("mc/imagesTr")), os.makedirs(path("mc/labelsTr")), os.makedirs(path("mc4/imagesTr"))
    cases = {}
    for name in ("p", "q", "r"):
        t2 = np.kron(rng.integers(0, 800, (3, 4, 5)), np.ones((1, 4, 4))).astype(np.int16)  # 3 slices of 16 x 20
        adc = (2000 - t2 * 2 + rng.integers(0, 50, t2.shape)).astype(np.int16)
        labels = (t2 > 300).astype(np.uint8) + (adc < 800).astype(np.uint8)  # 2 where T2 is bright and ADC dark
        cases[name] = (t2, adc, labels)
        open(path(f"mc/imagesTr/{name}_0000.nii.gz"), "wb").write(gzip.compress(nifti_bytes(t2)))
        open(path(f"mc/imagesTr/{name}_0001.nii"), "wb").write(nifti_bytes(adc, order=">"))  # each channel file as it comes
        open(path(f"mc/labelsTr/{name}.nii.gz"), "wb").write(gzip.compress(nifti_bytes(labels, code=2)))
        both = np.stack([t2, adc])  # the Decathlon's layout: x, y, z, channel (numpy: channel, z, y, x)
        open(path(f"mc4/imagesTr/{name}.nii.gz"), "wb").write(gzip.compress(nifti_bytes(both, dims=(20, 16, 3, 2))))
    json.dump({"channel_names": {"0": "T2", "1": "ADC"}, "labels": {"background": 0, "bright": 1, "both": 2}}, open(path("mc/dataset.json"), "w"))
    p = run("data", "unstack", path("mc/imagesTr"), "--masks", path("mc/labelsTr"), "--val", 0.34, "--out", path("mc_ds"))
    assert "+ channels.json (2 channels a slice" in p.stdout and "9 slice(s) of 3 volume(s)" in p.stdout, p.stdout
    assert json.load(open(path("mc_ds/channels.json"))) == {"names": ["T2", "ADC"]}
    assert json.load(open(path("mc_ds/classes.json")))["names"] == ["background", "bright", "both"]  # the task's names, into the model
    assert sorted(listed(path("mc_ds/images")))[:3] == ["p_000.png", "p_001.png", "p_002.png"], listed(path("mc_ds/images"))
    png = open(path("mc_ds/images/p_001.png"), "rb").read()
    assert png[24:26] == bytes([16, 4]), png[24:26]  # IHDR: 16-bit, colour type 4 (gray + alpha): T2 and ADC
    check = json.loads(run("data", "check", path("mc_ds"), "--json").stdout)
    assert check["channels"] == ["T2", "ADC"] and not check["errors"], check
    run("data", "unstack", path("mc4/imagesTr"), "--masks", path("mc/labelsTr"), "--out", path("mc4_ds"))
    for channel in ("0000.nii.gz", "0001.nii"):  # one case's file, either channel named: the case's two channels
        p = run("data", "unstack", path(f"mc/imagesTr/q_{channel}"), "--masks", path("mc/labelsTr/q.nii.gz"), "--out", path(f"mc_q{channel[:4]}"))
        assert sorted(listed(path(f"mc_q{channel[:4]}/images"))) == ["000.png", "001.png", "002.png"], p.stdout
        assert open(path(f"mc_q{channel[:4]}/images/002.png"), "rb").read() == open(path("mc_ds/images/q_002.png"), "rb").read(), channel
        assert ("is a later channel of case q: its 2 channels are unstacked" in p.stderr) == (channel == "0001.nii"), p.stderr
    for name in ("p_000.png", "q_002.png"):  # the 4-D layout gives the same slices
        assert open(path(f"mc4_ds/images/{name}"), "rb").read() == open(path(f"mc_ds/images/{name}"), "rb").read(), name
    # A new net takes the channels channels.json names; one of another count is refused before training.
    train = ["train", "--data", path("mc_ds"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--batch", 4]
    run(*train, "--out", path("mc.fcn"))
    assert json.loads(torch.load(path("mc.fcn"))["config"])["in_channels"] == 2
    one_line_error(run(*train, "--in-channels", 3, "--out", path("mc3.fcn"), ok=False), "--in-channels: takes 3 input channel(s) but",
                   "channels.json names 2")
    # predict: the case as one (p-labels.nii.gz; nothing for p_0001), the same labels from either layout; eval pairs p with p.
    run("predict", path("mc.fcn"), path("mc/imagesTr"), "--out", path("mc_masks"), "--quiet")
    assert sorted(listed(path("mc_masks"))) == ["p-labels.nii.gz", "q-labels.nii.gz", "r-labels.nii.gz"], listed(path("mc_masks"))
    run("predict", path("mc.fcn"), path("mc4/imagesTr"), "--out", path("mc4_masks"), "--quiet")
    # A later channel named alone, or with its case's other files (a glob), stands for its case, segmented once.
    run("predict", path("mc.fcn"), path("mc/imagesTr/p_0001.nii"), path("mc/imagesTr/p_0000.nii.gz"), "--out", path("mc_one"), "--quiet")
    assert listed(path("mc_one")) == ["p-labels.nii.gz"], listed(path("mc_one"))
    assert (read_nifti_file(path("mc_one/p-labels.nii.gz"))[2] == read_nifti_file(path("mc_masks/p-labels.nii.gz"))[2]).all()
    for name in ("p", "q", "r"):
        a, b = read_nifti_file(path(f"mc_masks/{name}-labels.nii.gz"))[2], read_nifti_file(path(f"mc4_masks/{name}-labels.nii.gz"))[2]
        assert a.shape == (3, 16, 20) and (a == b).all(), name
    volume_example = os.path.join(os.path.dirname(EXAMPLE), "segment_volume_example")  # the library API reads the case the same way
    p = subprocess.run([volume_example, path("mc.fcn"), path("mc/imagesTr/q_0000.nii.gz"), path("mc_api")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (read_nifti_file(path("mc_api-labels.nii.gz"))[2] == read_nifti_file(path("mc_masks/q-labels.nii.gz"))[2]).all()
    r = json.loads(run("eval", "--predictions", path("mc_masks"), "--truth", path("mc/labelsTr"), "--json").stdout)
    assert [v["name"] for v in r["volumes"]] == ["p", "q", "r"] and r["classes"] == ["background", "bright", "both"], r["classes"]
    # --window pLOW,pHIGH: each channel's own percentiles (numpy's), in unstack and predict alike.
    p = run("data", "unstack", path("mc/imagesTr"), "--masks", path("mc/labelsTr"), "--window", "p1,p99", "--out", path("mc_p"))
    assert "own percentiles p1,p99 as black..white: predict with --window p1,p99" in p.stdout, p.stdout
    t2, adc, _ = cases["q"]
    low, high = np.percentile(adc, 1), np.percentile(adc, 99)
    mapped = np.round(np.clip((adc[2].astype(np.float64) - low) / (high - low), 0, 1) * 65535)
    pixels = png16_pixels(path("mc_p/images/q_002.png"))  # 16 x 20 x (T2, ADC)
    assert pixels.shape == (16, 20, 2) and np.abs(pixels[..., 1] - mapped).max() <= 1, "ADC by its own 1st..99th percentile"
    t2_low, t2_high = np.percentile(t2, 1), np.percentile(t2, 99)
    assert np.abs(pixels[..., 0] - np.round(np.clip((t2[2] - t2_low) / (t2_high - t2_low), 0, 1) * 65535)).max() <= 1, "T2 by its own"
    out = json.loads(run("predict", path("mc.fcn"), path("mc/imagesTr/q_0000.nii.gz"), "--window", "p1,p99", "--out", path("mc_pm"),
                         "--json").stdout)
    windows = out["stacks"][0]["windows"]
    assert np.allclose(windows, [[np.percentile(t2, 1), np.percentile(t2, 99)], [low, high]], rtol=0, atol=1e-9), windows
    one_line_error(run("predict", path("mc.fcn"), path("mc/imagesTr"), "--window", "p50,p20", "--out", path("mc_bad"), ok=False),
                   "--window: 'p50,p20': the percentiles must be 0 <= low < high <= 100 (got 50, 20)")
    # --largest: each class's largest object (26-connected through a volume, 8-connected in an image), the rest background.
    def largest_by_hand(labels, components):
        ids, count = components(labels)
        out = labels.copy()
        for c in np.unique(labels[labels > 0]):
            sizes = {i: (ids == i).sum() for i in range(1, count + 1) if (labels[ids == i] == c).all() and (ids == i).any()}
            best = max(sorted(sizes), key=lambda i: sizes[i])
            out[(labels == c) & (ids != best)] = 0
        return out

    def flood2d(labels):  # each class's 8-connected components of an image, numbered 1..N
        ids, count = np.zeros(labels.shape, np.int64), 0
        for c in np.unique(labels[labels > 0]):
            for component in components8(labels == c):
                count += 1
                for at in component:
                    ids[at] = count
        return ids, count

    # Each slice's overlay and --json counts show the labels kept (made once the volume is whole); its
    # probabilities stay as the net gave them.
    outputs = ("--overlay", "--probs", "npy", "--json")
    largest = json.loads(run("predict", path("mc.fcn"), path("mc/imagesTr/r_0000.nii.gz"), "--largest", "all", *outputs,
                             "--out", path("mc_largest")).stdout)
    unfiltered = json.loads(run("predict", path("mc.fcn"), path("mc/imagesTr/r_0000.nii.gz"), *outputs, "--out", path("mc_unfiltered")).stdout)
    kept, plain = read_nifti_file(path("mc_largest/r-labels.nii.gz"))[2], read_nifti_file(path("mc_masks/r-labels.nii.gz"))[2]
    assert (kept == largest_by_hand(plain, flood3d)).all() and (kept != plain).any(), "the largest object of each class in 3-D"
    assert (read_nifti_file(path("mc_unfiltered/r-labels.nii.gz"))[2] == plain).all()
    slices = [e for e in largest["images"] if " slice " in e["image"]]
    assert len(slices) == kept.shape[0], largest
    names = json.load(open(path("mc_ds/classes.json")))["names"] if os.path.exists(path("mc_ds/classes.json")) else None
    for k, entry in enumerate(slices):
        assert entry["image"].endswith(f"slice {k}"), entry
        counts = {(names[c] if names else str(c)): int((kept[k] == c).sum()) for c in range(3) if (kept[k] == c).any()}
        assert entry["class_pixels"] == counts, (k, entry["class_pixels"], counts)
        assert sorted(os.path.basename(f) for f in entry["files"]) == ["000%03d-overlay.png" % k, "000%03d-probs.npy" % k], entry["files"]
        ours, theirs = (np.array(Image.open(path(f"{d}/r/000{k:03d}-overlay.png"))) for d in ("mc_largest", "mc_unfiltered"))
        assert (ours == theirs).all() == (kept[k] == plain[k]).all(), f"slice {k}: the overlay shows the labels kept"
        assert (np.load(path(f"mc_largest/r/000{k:03d}-probs.npy")) == np.load(path(f"mc_unfiltered/r/000{k:03d}-probs.npy"))).all()
    run("predict", path("mc.fcn"), path("mc_ds/images/r_001.png"), "--largest", "both", "--out", path("mc_largest_png"), "--quiet")
    run("predict", path("mc.fcn"), path("mc_ds/images/r_001.png"), "--out", path("mc_plain_png"), "--quiet")
    kept, plain = (np.array(Image.open(path(f"{d}/r_001.png"))) for d in ("mc_largest_png", "mc_plain_png"))
    expected = largest_by_hand(plain, flood2d)
    expected[(plain == 1)] = 1  # only class 2 ("both") filtered
    assert (kept == expected).all(), "class 2's largest 8-connected object in the image"
    # eval --largest scores a model's labels as predict --largest writes them: the same confusion as scoring those files.
    run("predict", path("mc.fcn"), path("mc_ds/images"), "--largest", "all", "--out", path("mc_largest_all"), "--quiet")
    files = json.loads(run("eval", "--predictions", path("mc_largest_all"), "--data", path("mc_ds"), "--json").stdout)
    model = json.loads(run("eval", path("mc.fcn"), "--data", path("mc_ds"), "--largest", "all", "--json").stdout)
    raw = json.loads(run("eval", path("mc.fcn"), "--data", path("mc_ds"), "--json").stdout)
    files, model, raw = (r[0] if isinstance(r, list) else r for r in (files, model, raw))
    assert files["confusion"] == model["confusion"] != raw["confusion"], (files["confusion"], model["confusion"], raw["confusion"])
    one_line_error(run("predict", path("mc.fcn"), path("mc/imagesTr"), "--largest", "0", "--out", path("mc_bad"), ok=False),
                   "--largest: '0' is not a class of the model other than background")
    # 2.5-D: each slice with its neighbours as RGB (--context 1); the net remembers it and predict gives volumes so.
    os.makedirs(path("ctx/imagesTr"))
    for name in ("p", "q", "r"):
        shutil.copy(path(f"mc/imagesTr/{name}_0000.nii.gz"), path(f"ctx/imagesTr/{name}.nii.gz"))
    p = run("data", "unstack", path("ctx/imagesTr"), "--masks", path("mc/labelsTr"), "--context", 1, "--val", 0.34, "--out", path("ctx_ds"))
    assert "2.5-D: slices k-1..k+1" in p.stdout, p.stdout
    assert json.load(open(path("ctx_ds/channels.json"))) == {"names": ["slice -1", "slice 0", "slice +1"], "context": 1}
    rgb = np.array(Image.open(path("ctx_ds/images/q_000.png")))  # 8-bit view of the 16-bit RGB: slices 0, 0, 1
    assert rgb.shape == (16, 20, 3) and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] != rgb[..., 2]).any()
    run("train", "--data", path("ctx_ds"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--batch", 4, "--out", path("ctx.fcn"))
    assert json.loads(torch.load(path("ctx.fcn"))["meta"])["slice_context"] == 1
    assert "2.5-D       a volume's slices k-1..k+1" in run("info", path("ctx.fcn")).stdout
    run("export", path("ctx.fcn"), "--onnx", path("ctx.onnx"), "--size", "16x16")
    assert b"fcn.slice_context" in open(path("ctx.onnx"), "rb").read()
    run("predict", path("ctx.fcn"), path("ctx/imagesTr/r.nii.gz"), "--out", path("ctx_masks"), "--quiet")
    run("predict", path("ctx.fcn"), path("ctx_ds/images"), "--out", path("ctx_png"), "--quiet")
    volume = read_nifti_file(path("ctx_masks/r-labels.nii.gz"))[2]
    for k in range(3):  # the volume's slice k as the net saw the unstacked PNG (16-bit rounding aside)
        same = (volume[k] == np.array(Image.open(path(f"ctx_png/r_{k:03d}.png")))).mean()
        assert same > 0.97, (k, same)
    run("data", "unstack", path("ctx/imagesTr"), "--masks", path("mc/labelsTr"), "--out", path("ctx_plain"))
    one_line_error(run("predict", path("ctx.fcn"), path("ctx_plain/images/r_001.png"), "--out", path("ctx_bad"), "--quiet", ok=False),
                   "r_001.png: has 1 channel(s), and the model is a 2.5-D net")  # not three equal slices without a word
    one_line_error(run("train", "--data", path("ctx_plain"), "--arch", "unet", "--weights", path("ctx.fcn"), "--epochs", 1, "--out", path("ctx2.fcn"), ok=False),
                   "ctx.fcn: was trained on 3 slice(s) a sample but", "holds 1 (fcn data unstack --context)")
    # Past a PNG's 4 planes: each channel's slices k-N..k+N, channel after channel, as uint16 C x H x W .npy arrays (numpy's
    # window by hand), a net of that many inputs, and predict giving it volumes so (the centre slice of T2 in its overlays).
    p = run("data", "unstack", path("mc/imagesTr"), "--masks", path("mc/labelsTr"), "--context", 2, "--val", 0.34, "--out", path("ctx5_ds"))
    assert "2.5-D: slices k-2..k+2 as each image's channels" in p.stdout, p.stdout
    assert json.load(open(path("ctx5_ds/channels.json"))) == {
        "names": [f"{c} slice {d:+d}".replace("+0", "0") for c in ("T2", "ADC") for d in range(-2, 3)], "context": 2}
    assert sorted(listed(path("ctx5_ds/images")))[:3] == ["p_000.npy", "p_001.npy", "p_002.npy"]
    t2, adc, _ = cases["q"]
    planes = np.load(path("ctx5_ds/images/q_000.npy"))
    assert planes.dtype == np.uint16 and planes.shape == (10, 16, 20), (planes.dtype, planes.shape)
    for c, volume in enumerate((t2, adc)):
        low, high = float(volume.min()), float(volume.max())
        for d, z in enumerate((0, 0, 0, 1, 2)):  # slices 0-2..0+2, the first repeated
            assert np.abs(planes[5 * c + d] - np.round((volume[z] - low) / (high - low) * 65535)).max() <= 1, (c, d)
    run("train", "--data", path("ctx5_ds"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--batch", 4, "--out", path("ctx5.fcn"))
    saved = torch.load(path("ctx5.fcn"))
    assert json.loads(saved["meta"])["slice_context"] == 2 and json.loads(saved["config"])["in_channels"] == 10
    assert "2.5-D       a volume's slices k-2..k+2 of each of its 2 channels as its inputs" in run("info", path("ctx5.fcn")).stdout
    run("predict", path("ctx5.fcn"), path("mc/imagesTr/r_0000.nii.gz"), "--overlay", "--out", path("ctx5_masks"), "--quiet")
    run("predict", path("ctx5.fcn"), path("ctx5_ds/images"), "--out", path("ctx5_npy"), "--quiet")
    volume = read_nifti_file(path("ctx5_masks/r-labels.nii.gz"))[2]
    for k in range(3):  # the volume's slice k as the net saw the unstacked array (16-bit rounding aside)
        same = (volume[k] == np.array(Image.open(path(f"ctx5_npy/r_{k:03d}.png")))).mean()
        assert same > 0.97, (k, same)
    overlay = np.array(Image.open(path("ctx5_masks/r/000001-overlay.png")).convert("RGB"))[::16, ::16][:16, :20].astype(int)  # enlarged 16x
    t2r = cases["r"][0]
    centre = np.round((t2r[1] - float(t2r.min())) / float(t2r.max() - t2r.min()) * 255)  # T2 slice 1, under the labels' colours
    background = volume[1] == 0
    if background.any():
        assert np.abs(overlay[background][:, 0] - np.round(centre[background] * 0.5)).max() <= 2, "the centre slice in gray"
    one_line_error(run("predict", path("ctx5.fcn"), path("ctx/imagesTr/r.nii.gz"), "--out", path("ctx_bad"), "--quiet", ok=False),
                   "r.nii.gz: is a case of 1 channel(s), but the model takes 2 channel(s)' slice with 2 neighbour(s) on either side")
    one_line_error(run("data", "unstack", path("mc/imagesTr"), "--context", 9, "--out", path("ctx_bad"), ok=False), "--context")
    # A one-channel net on a case of two: one line naming the case.
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 4, "--classes", 3, "--in-channels", 1, "--out", path("mc1.fcn"))
    p = run("predict", path("mc1.fcn"), path("mc/imagesTr/p_0000.nii.gz"), "--out", path("mc_bad"), "--quiet", ok=False)
    one_line_error(p, "p_0000.nii.gz: is a case of 2 channel(s) but the model takes 1")


def planar_float_tiff(planes, claim=None, extras=None):
    """A little-endian TIFF of C x H x W float32 planes, one strip a plane (PlanarConfiguration 2), gray + C-1 extra samples
    (ExtraSamples `extras`, default all 0: data); `claim` (H, W): the size its header gives instead (a bomb)."""
    c, h, w = planes.shape
    h, w = claim or (h, w)
    entries = []  # (tag, type, count, value or bytes)
    data = planes.astype("<f4").tobytes()
    plane = planes.shape[1] * planes.shape[2] * 4
    shorts = lambda values: struct.pack("<%dH" % len(values), *values)
    longs = lambda values: struct.pack("<%dI" % len(values), *values)
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [32] * c), (259, 3, [1]), (262, 3, [1]), (273, 4, None), (277, 3, [c]),
            (278, 4, [h]), (279, 4, [plane] * c), (284, 3, [2]), (338, 3, extras or [0] * (c - 1)), (339, 3, [3] * c)]
    ifd_size = 2 + 12 * len(tags) + 4
    extra_at = 8 + ifd_size  # values too long for their field, then the pixels
    blobs, out_entries = b"", []
    pixels_at = extra_at + sum(len(shorts(v) if t == 3 else longs(v)) for _, t, v in tags if v is not None and len(v) * (2 if t == 3 else 4) > 4) + 4 * c
    for tag, kind, values in tags:
        if values is None:
            values = [pixels_at + k * plane for k in range(c)]
        raw = shorts(values) if kind == 3 else longs(values)
        if len(raw) <= 4:
            out_entries.append(struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\0"))
        else:
            out_entries.append(struct.pack("<HHII", tag, kind, len(values), extra_at + len(blobs)))
            blobs += raw
    assert extra_at + len(blobs) == pixels_at
    return b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + b"".join(out_entries) + struct.pack("<I", 0) + blobs + data


@check("images as .npy arrays (and a multispectral TIFF): numpy's C x H x W bands and integer masks check, train, predict and eval; each bad array named")
def _():
    rng = np.random.default_rng(21)
    os.makedirs(path("bands/images")), os.makedirs(path("bands/masks"))
    for i in range(8):  # six bands; the object shows in band 3 alone
        image = (rng.random((6, 24, 28)) * 0.2).astype(np.float32)
        mask = np.zeros((24, 28), np.int64)
        y, x = rng.integers(2, 14, 2)
        mask[y:y + 8, x:x + 10] = 1
        image[3][mask == 1] += 0.7
        np.save(path(f"bands/images/s{i}.npy"), image), np.save(path(f"bands/masks/s{i}.npy"), mask)
    check = json.loads(run("data", "check", path("bands"), "--json").stdout)
    assert not check["errors"] and check["image_channels"] == {"6": 8}, check
    run("data", "split", path("bands"), "--val", 0.25)
    run("train", "--data", path("bands"), "--arch", "unet", "--depth", 1, "--base-channels", 8, "--epochs", 8, "--batch", 2,
        "--optimizer", "adamw", "--lr", 0.01, "--out", path("bands.fcn"))
    assert json.loads(torch.load(path("bands.fcn"))["config"])["in_channels"] == 6  # every band, none taken for alpha
    one_line_error(run("train", "--data", path("bands"), "--arch", "unet", "--depth", 1, "--in-channels", 3, "--epochs", 1,
                       "--out", path("bands3.fcn"), ok=False), ".npy: has 6 channels (a .npy array: each one data", "the model takes 3")
    run("predict", path("bands.fcn"), path("bands/images"), "--out", path("bands_masks"), "--quiet")
    confusion = np.zeros((2, 2), np.int64)
    for i in range(8):
        predicted = np.array(Image.open(path(f"bands_masks/s{i}.png")))
        confusion += np.bincount(np.load(path(f"bands/masks/s{i}.npy")).ravel() * 2 + predicted.ravel(), minlength=4).reshape(2, 2)
    r = json.loads(run("eval", path("bands.fcn"), "--data", path("bands"), "--split", "all", "--json").stdout)
    r = r[0] if isinstance(r, list) else r
    assert r["confusion"] == confusion.tolist(), (r["confusion"], confusion)
    assert confusion[1, 1] > confusion[1].sum() * 0.5, confusion  # it learned the band
    bad = {"hwc.npy": (np.zeros((24, 28, 3), np.uint8), "channels last (H x W x C) by the look of it"),
           "int32.npy": (np.zeros((6, 24, 28), np.int32), "holds int32 values"),
           "nan.npy": (np.full((6, 24, 28), np.nan, np.float32), "that are not finite"),
           "four.npy": (np.zeros((4, 24, 28), np.uint16), "has 4 channels (a .npy array: each one data, none dropped or mixed), the model takes 6")}
    for name, (array, words) in bad.items():
        np.save(path(name), array)
        one_line_error(run("predict", path("bands.fcn"), path(name), "--out", path("bands_bad"), "--quiet", ok=False), name + ": ", words)
    # The same bands as a multispectral TIFF (float32, a plane a sample; written by hand): every band read, the same labels.
    planes = np.load(path("bands/images/s0.npy"))
    open(path("s0.tif"), "wb").write(planar_float_tiff(planes))
    run("predict", path("bands.fcn"), path("s0.tif"), "--out", path("bands_tif"), "--quiet")
    assert (np.array(Image.open(path("bands_tif/s0.png"))) == np.array(Image.open(path("bands_masks/s0.png")))).all()
    open(path("bomb.tif"), "wb").write(planar_float_tiff(planes, claim=(16384, 16384)))  # 6 GiB of samples claimed in 17 KB
    one_line_error(run("predict", path("bands.fcn"), path("bomb.tif"), "--out", path("bands_bad"), "--quiet", ok=False),
                   "bomb.tif: TIFF page of 6 samples of 16384x16384 pixels (6144 MiB) in a file of", "truncated, or a bomb")
    np.save(path("bands/masks/s0.npy"), np.full((24, 28), -1, np.int64))  # another library's ignore index
    check = json.loads(run("data", "check", path("bands"), "--json", ok=False).stdout)
    assert any("s0.npy: label -1 at (0,0) is not a class" in e for e in check["errors"]), check["errors"]


@check("RGB + near-infrared TIFFs (ExtraSamples: data): a new net takes the 4th band and learns from it; RGBA TIFFs keep alpha's meaning and read as stored; gray + alpha: one input; gray + bands: the gray; gray + band + alpha: gray with alpha")
def _():
    rng = np.random.default_rng(22)
    for kind in ("rgbn", "rgba"):
        os.makedirs(path(f"{kind}/images")), os.makedirs(path(f"{kind}/masks"))
    for i in range(8):  # the object shows in the 4th band alone
        pixels = (rng.random((24, 28, 4)) * 50).astype(np.uint8)
        mask = np.zeros((24, 28), np.uint8)
        y, x = rng.integers(2, 14, 2)
        mask[y:y + 8, x:x + 10] = 1
        pixels[..., 3][mask == 1] += 180
        Image.frombytes("RGBX", (28, 24), pixels.tobytes()).save(path(f"rgbn/images/s{i}.tif"))  # PIL: ExtraSamples 0
        Image.fromarray(pixels, "RGBA").save(path(f"rgba/images/s{i}.tif"))  # PIL: ExtraSamples 2, unassociated alpha
        for kind in ("rgbn", "rgba"):
            Image.fromarray(mask).save(path(f"{kind}/masks/s{i}.png"))
    inputs = {}
    for kind in ("rgbn", "rgba"):
        said = run("data", "check", path(kind)).stdout  # the check says what train will do
        assert ("images: 4 channels each (a new net takes all of them" in said) == (kind == "rgbn"), (kind, said)
        assert ("images: RGB + alpha, the alpha dropped (a new net takes RGB); a band, not alpha?" in said) == (kind == "rgba"), (kind, said)
        run("data", "split", path(kind), "--val", 0.25)
        run("train", "--data", path(kind), "--arch", "unet", "--depth", 1, "--base-channels", 8, "--epochs", 8, "--batch", 2,
            "--optimizer", "adamw", "--lr", 0.01, "--out", path(f"{kind}.fcn"))
        inputs[kind] = json.loads(torch.load(path(f"{kind}.fcn"))["config"])["in_channels"]
    assert inputs == {"rgbn": 4, "rgba": 3}, inputs  # the band is data, alpha is dropped as a PNG's
    json.dump({"names": ["R", "G", "B", "NIR"]}, open(path("rgba/channels.json"), "w"))  # as the check's line says: a band after all
    run("train", "--data", path("rgba"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--out", path("rgba4.fcn"))
    assert json.loads(torch.load(path("rgba4.fcn"))["config"])["in_channels"] == 4
    r = json.loads(run("eval", path("rgbn.fcn"), "--data", path("rgbn"), "--split", "all", "--json").stdout)
    r = r[0] if isinstance(r, list) else r
    assert r["confusion"][1][1] > sum(r["confusion"][1]) * 0.5, r["confusion"]  # it learned the band
    one_line_error(run("train", "--data", path("rgbn"), "--arch", "unet", "--depth", 1, "--in-channels", 3, "--epochs", 1,
                       "--out", path("rgbn3.fcn"), ok=False), "--in-channels: takes 3 input channel(s) but", ".tif holds 4, each one data")
    # An RGB net given the RGB + band TIFFs sees their RGB, and says the band went unused; the 4-input net says nothing.
    p = run("predict", path("rgba.fcn"), path("rgbn/images"), "--out", path("rgbn_by_rgb"), "--quiet")
    assert "warning: 8 image(s) hold more channels of data than the 3 the model takes (" in p.stderr and "s0.tif: 4 channels" in p.stderr, p.stderr
    assert "warning" not in run("predict", path("rgbn.fcn"), path("rgbn/images"), "--out", path("rgbn_by_rgbn"), "--quiet").stderr
    # A GeoTIFF's tags libtiff does not know print no libtiff warning; a corrupt strip is fcn's one line, no libtiff line beside it.
    pixels = np.array(Image.open(path("rgbn/images/s0.tif")))
    Image.frombytes("RGBX", (28, 24), pixels.tobytes()).save(path("geo.tif"), tiffinfo={33550: (0.5, 0.5, 0.0)})
    assert run("predict", path("rgbn.fcn"), path("geo.tif"), "--out", path("geo_out"), "--quiet").stderr == ""
    Image.frombytes("RGBX", (28, 24), pixels.tobytes()).save(path("broken.tif"), compression="tiff_deflate")
    broken = bytearray(open(path("broken.tif"), "rb").read())
    broken[8:40] = bytes(range(32))  # the deflated strip starts after the 8-byte header
    open(path("broken.tif"), "wb").write(bytes(broken))
    p = run("predict", path("rgbn.fcn"), path("broken.tif"), "--out", path("geo_out"), "--quiet", ok=False)
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("fcn: error: ") and "broken.tif: corrupt TIFF: " in p.stderr, p.stderr
    # RGBA as stored (OpenCV's path multiplied the colours by alpha): predict on the TIFF equals predict on the PNG.
    Image.open(path("rgba/images/s0.tif")).save(path("s0_rgba.png"))
    run("predict", path("rgba.fcn"), path("rgba/images/s0.tif"), path("s0_rgba.png"), "--out", path("rgba_out"), "--probs", "npy", "--quiet")
    assert (np.load(path("rgba_out/s0-probs.npy")) == np.load(path("rgba_out/s0_rgba-probs.npy"))).all()
    # Gray + alpha PNGs: a new net of one input, the gray (it was given the gray three times over).
    os.makedirs(path("la/images")), os.makedirs(path("la/masks"))
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16, 2)).astype(np.uint8), "LA").save(path(f"la/images/s{i}.png"))
        Image.fromarray(rng.integers(0, 2, (16, 16)).astype(np.uint8)).save(path(f"la/masks/s{i}.png"))
    assert "images: gray + alpha, the alpha dropped (a new net takes the gray)" in run("data", "check", path("la")).stdout
    run("train", "--data", path("la"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--out", path("la.fcn"))
    assert json.loads(torch.load(path("la.fcn"))["config"])["in_channels"] == 1
    # Gray + 3 bands (a float TIFF of gray photometric, its extra samples declared data): the gray net sees the gray alone,
    # as the same gray in a .npy gives (the bands were mixed in as if RGB), and says the bands went unused; an RGB net
    # refuses the image (one band is not copied into three inputs), without the warning.
    planes = rng.random((4, 16, 16)).astype(np.float32)
    open(path("gray_bands.tif"), "wb").write(planar_float_tiff(planes))
    np.save(path("gray_only.npy"), planes[:1])
    p = run("predict", path("la.fcn"), path("gray_bands.tif"), path("gray_only.npy"), "--out", path("gb_out"), "--probs", "npy", "--quiet")
    assert "warning: 1 image(s) hold more channels of data than the 1 the model takes (" in p.stderr, p.stderr
    assert (np.load(path("gb_out/gray_bands-probs.npy")) == np.load(path("gb_out/gray_only-probs.npy"))).all()
    one_line_error(run("predict", path("rgba.fcn"), path("gray_bands.tif"), "--out", path("gb_out3"), "--quiet", ok=False),
                   "gray_bands.tif: has 4 channels of data (gray and 3 band(s), as the TIFF declares its samples), the model takes 3")
    # Gray + a band + alpha (ExtraSamples 0 and 2: the first value alone read as data before): gray with alpha, the check
    # says so, a new net takes the gray, and an RGB net is given the gray three times, never the alpha as blue.
    os.makedirs(path("lba/images")), os.makedirs(path("lba/masks"))
    for i in range(4):
        open(path(f"lba/images/s{i}.tif"), "wb").write(planar_float_tiff(rng.random((3, 16, 16)).astype(np.float32), extras=[0, 2]))
        Image.fromarray(rng.integers(0, 2, (16, 16)).astype(np.uint8)).save(path(f"lba/masks/s{i}.png"))
    said = run("data", "check", path("lba")).stdout
    assert "images: gray + 2 extra samples (alpha among them), the extra samples dropped (a new net takes the gray); bands" in said, said
    run("train", "--data", path("lba"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--out", path("lba.fcn"))
    assert json.loads(torch.load(path("lba.fcn"))["config"])["in_channels"] == 1
    gray = planes[:1]
    open(path("lba.tif"), "wb").write(planar_float_tiff(np.concatenate([gray, planes[1:3]]), extras=[0, 2]))
    np.save(path("lba_gray3.npy"), np.repeat(gray, 3, axis=0))
    run("predict", path("rgba.fcn"), path("lba.tif"), path("lba_gray3.npy"), "--out", path("lba_out"), "--probs", "npy", "--quiet")
    assert (np.load(path("lba_out/lba-probs.npy")) == np.load(path("lba_out/lba_gray3-probs.npy"))).all()


@check("a net trained on a case's two channels learns a label that needs both; one trained on one channel cannot")
def _():
    rng = np.random.default_rng(3)
    for folder in ("two/imagesTr", "two/labelsTr", "one/imagesTr"):
        os.makedirs(path(folder))
    for i in range(6):
        t2, adc = (np.kron(rng.integers(0, 1000, (8, 4, 4)), np.ones((1, 4, 4))).astype(np.int16) for _ in range(2))
        t2[0, 0, :2] = adc[0, 0, :2] = (0, 999)  # one range in every volume: its own min..max maps alike
        labels = ((t2 > 500) & (adc > 500)).astype(np.uint8)
        for name, data in ((f"two/imagesTr/v{i}_0000", t2), (f"two/imagesTr/v{i}_0001", adc), (f"one/imagesTr/v{i}", t2)):
            open(path(name + ".nii.gz"), "wb").write(gzip.compress(nifti_bytes(data)))
        open(path(f"two/labelsTr/v{i}.nii.gz"), "wb").write(gzip.compress(nifti_bytes(labels, code=2)))
    best = {}
    for name in ("two", "one"):
        run("data", "unstack", path(f"{name}/imagesTr"), "--masks", path("two/labelsTr"), "--val", 0.34, "--out", path(f"{name}_ds"))
        r = json.loads(run("train", "--data", path(f"{name}_ds"), "--arch", "unet", "--depth", 1, "--base-channels", 8, "--epochs", 15,
                           "--batch", 8, "--optimizer", "adamw", "--lr", 0.01, "--seed", 1, "--json", "--out", path(f"{name}.fcn")).stdout)
        best[name] = r["best_val_mean_iu"]
    assert best["two"] > 0.8 and best["one"] < 0.7, best  # measured 0.92 and 0.50: the second channel is used, not dropped


@check("NIfTI volumes: predict segments every slice into NAME-labels.nii.gz over the scan's header; unstack, eval, 3-D objects")
def _():
    run("init", "--arch", "unet", "--depth", 2, "--base-channels", 4, "--classes", 3, "--in-channels", 1, "--out", path("gray3.fcn"))
    model = path("gray3.fcn")  # random weights: labels in patches of every class
    rng = np.random.default_rng(8)
    ct = np.kron(rng.integers(-1000, 1000, (4, 6, 8)), np.ones((1, 4, 4))).astype(np.int16)  # 4 slices of 24 x 32, like HU
    open(path("ct.nii"), "wb").write(nifti_bytes(ct))
    open(path("ct_be.nii.gz"), "wb").write(gzip.compress(nifti_bytes(ct, ">")))  # big-endian, gzipped: the same volume
    out = json.loads(run("predict", model, path("ct.nii"), path("ct_be.nii.gz"), "--out", path("nii_out"), "--instances", "--json").stdout)
    assert [v["pages_written"] for v in out["stacks"]] == [4, 4] and out["succeeded"] == 8, out["stacks"]
    assert sorted(listed(path("nii_out"))) == sorted(f"{n}-{k}.nii.gz" for n in ("ct", "ct_be") for k in ("labels", "instances"))
    header, order, labels = read_nifti_file(path("nii_out/ct-labels.nii.gz"))
    _, order_be, labels_be = read_nifti_file(path("nii_out/ct_be-labels.nii.gz"))
    assert order == "<" and order_be == ">" and (labels == labels_be).all() and labels.shape == ct.shape
    scan = nifti_bytes(ct)
    assert header[76:92] == scan[76:92] and header[252:256] == scan[252:256] and header[280:328] == scan[280:328]  # pixdim, codes, sform
    assert struct.unpack("<3h", header[68:74]) == (1002, 2, 8), struct.unpack("<3h", header[68:74])  # label intent, uint8
    # Each slice as an image: the voxels over the volume's range as 0..1; unstack writes those as 16-bit PNGs,
    # and predict on the PNGs gives the volume's labels slice for slice.
    run("data", "unstack", path("ct.nii"), "--masks", path("nii_out/ct-labels.nii.gz"), "--out", path("ct_ds"))
    low, high = ct.min(), ct.max()
    for k in range(4):
        png = np.array(Image.open(path(f"ct_ds/images/{k:03d}.png"))).astype(np.int64)
        assert np.abs(png - np.round((ct[k] - low) / (high - low) * 65535)).max() <= 1, k
        assert (np.array(Image.open(path(f"ct_ds/masks/{k:03d}.png"))) == labels[k]).all(), k
    run("predict", model, path("ct_ds/images"), "--out", path("ct_pngs"))
    for k in range(4):
        assert (np.array(Image.open(path(f"ct_pngs/{k:03d}.png"))) == labels[k]).all(), k
    assert json.load(open(path("ct_ds/classes.json")))["names"] == ["background", "label 1", "label 2"]
    # --overlay: one picture of the slices (4 here, in a row), each as the net saw it with its labels blended in.
    run("predict", model, path("ct.nii"), "--out", path("nii_pic"), "--overlay")
    picture = np.array(Image.open(path("nii_pic/ct-overlay.png"))).astype(np.float64)
    palette = np.array(Image.open(path("ct_pngs/000.png")).getpalette()[:9], np.float64).reshape(3, 3)
    f = 6  # 24 x 32 slices enlarged so the shorter side is at least 128
    assert picture.shape[0] == 24 * f and picture.shape[1] > 4 * 32 * f + 3 * 4, picture.shape  # a row of 4 + the legend
    for k in range(4):
        gray = np.round((ct[k] - low) / (high - low) * 255)[..., None]
        expected = np.kron(0.5 * gray + 0.5 * palette[labels[k]], np.ones((f, f, 1)))
        tile = picture[:, k * (32 * f + 4) : k * (32 * f + 4) + 32 * f]
        assert np.abs(tile - expected).max() <= 2, (k, np.abs(tile - expected).max())
    os.remove(path("nii_pic/ct-overlay.png"))  # the volume's picture missing, the slices' overlays there: done again
    again = json.loads(run("predict", model, path("ct.nii"), "--out", path("nii_pic"), "--overlay", "--skip-existing", "--json").stdout)
    assert (again["kept"], again["succeeded"]) == (0, 4) and os.path.exists(path("nii_pic/ct-overlay.png")), again
    # --instances: the objects through the volume, as a 3-D flood fill per class finds them.
    _, _, ids = read_nifti_file(path("nii_out/ct-instances.nii.gz"))
    flood, count = flood3d(labels.astype(np.int64))
    inside = labels > 0
    assert ids.max() == count and ((ids > 0) == inside).all() and len(set(zip(ids[inside], flood[inside]))) == count, (ids.max(), count)
    assert sum(out["stacks"][0]["objects"].values()) == count >= 10, (out["stacks"][0]["objects"], count)
    counts = {26: count}  # --connectivity 18 and 6: by faces and edges, by faces alone, as the flood fills of 2 and 1 steps
    for connectivity, hops in ((18, 2), (6, 1)):
        run("predict", model, path("ct.nii"), "--out", path(f"nii_{connectivity}"), "--instances", "--connectivity", connectivity)
        _, _, ids_c = read_nifti_file(path(f"nii_{connectivity}/ct-instances.nii.gz"))
        flood_c, counts[connectivity] = flood3d(labels.astype(np.int64), hops)
        assert ids_c.max() == counts[connectivity] and len(set(zip(ids_c[inside], flood_c[inside]))) == counts[connectivity], connectivity
    assert counts[26] < counts[18] < counts[6], counts
    scored = json.loads(run("eval", "--predictions", path("nii_6/ct-labels.nii.gz"), "--truth", path("nii_out/ct-labels.nii.gz"),
                            "--connectivity", 6, "--json").stdout)
    assert scored["objects"]["connectivity"] == 6 and sum(scored["objects"]["true"]) == counts[6], (scored["objects"], counts)
    one_line_error(run("predict", model, path("ct.nii"), "--out", path("nii_c"), "--connectivity", 6, ok=False),
                   "--connectivity: says how --instances and --largest join pixels into objects, and neither is given")
    sizes = np.bincount(flood.ravel())  # --min-object: objects of fewer voxels through the volume left out
    least = int(np.median(sizes[1:])) + 1
    big = sizes >= least
    big[0] = False
    few_run = json.loads(run("predict", model, path("ct.nii"), "--out", path("nii_min"), "--instances", "--min-object", least, "--json").stdout)
    _, _, few = read_nifti_file(path("nii_min/ct-instances.nii.gz"))
    assert ((few > 0) == big[flood]).all() and few.max() == big.sum() == sum(few_run["stacks"][0]["objects"].values()) < count
    # eval --predictions VOLUME: slice k against image k of the folder unstack made; another window's labels against these.
    run("predict", model, path("ct.nii"), "--out", path("nii_window"), "--window", "-500,500")
    _, _, windowed = read_nifti_file(path("nii_window/ct-labels.nii.gz"))
    assert (windowed != labels).any(), "the window changes what the net sees"
    r = json.loads(run("eval", "--predictions", path("nii_window/ct-labels.nii.gz"), "--data", path("ct_ds"), "--split", "all", "--json").stdout)
    expected = np.zeros((3, 3), np.int64)
    np.add.at(expected, (labels.ravel().astype(np.int64), windowed.ravel().astype(np.int64)), 1)
    assert (np.array(r["confusion"]) == expected).all(), (r["confusion"], expected)
    # examples/segment_volume: the library API (segment_volume) writes what fcn predict writes for a volume.
    run("predict", model, path("ct.nii"), "--out", path("nii_window_obj"), "--window", "-500,500", "--instances", "--overlay")
    volume_example = os.path.join(os.path.dirname(EXAMPLE), "segment_volume_example")
    p = subprocess.run([volume_example, model, path("ct.nii"), path("ct_api"), "-500", "500"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("4 slices, "), p.stdout + p.stderr
    for kind in ("labels", "instances"):
        api, cli = read_nifti_file(path(f"ct_api-{kind}.nii.gz")), read_nifti_file(path(f"nii_window_obj/ct-{kind}.nii.gz"))
        assert api[0] == cli[0] and (api[2] == cli[2]).all(), kind
    assert (np.array(Image.open(path("ct_api-overlay.png"))) == np.array(Image.open(path("nii_window_obj/ct-overlay.png")))).all()
    kept = json.loads(run("predict", model, path("ct.nii"), "--out", path("nii_out"), "--instances", "--skip-existing", "--json").stdout)
    assert (kept["kept"], kept["succeeded"]) == (4, 0), kept
    # --probs nii: one 4-D float32 volume (x, y, z, class) over the scan's header, the slices' probabilities as the
    # PNGs' (16-bit quantized input: within 1e-3), their argmax the labels.
    probs_run = json.loads(run("predict", model, path("ct.nii"), "--out", path("nii_out"), "--instances", "--probs", "nii", "--skip-existing",
                               "--json").stdout)
    assert (probs_run["kept"], probs_run["succeeded"]) == (0, 4), probs_run  # the probabilities were not there yet
    data = gzip.decompress(open(path("nii_out/ct-probs.nii.gz"), "rb").read())
    assert struct.unpack("<8h", data[40:56]) == (4, 32, 24, 4, 3, 1, 1, 1) and struct.unpack("<2h", data[70:74]) == (16, 32)
    assert data[76:92] == scan[76:92] and data[280:328] == scan[280:328]  # the scan's voxel sizes and sform
    probs = np.frombuffer(data, "<f4", 3 * 4 * 24 * 32, 352).reshape(3, 4, 24, 32)
    assert np.abs(probs.sum(0) - 1).max() < 1e-5 and (probs.argmax(0) == labels).mean() > 0.99, np.abs(probs.sum(0) - 1).max()
    run("predict", model, path("ct_ds/images"), "--out", path("ct_png_probs"), "--probs", "npy")
    for k in range(4):
        assert np.abs(np.load(path(f"ct_png_probs/{k:03d}-probs.npy")) - probs[:, k]).max() < 1e-3, k
    one_line_error(run("predict", model, path("ct.nii"), path("ct_ds/images/000.png"), "--out", path("nii_bad"), "--probs", "nii", ok=False),
                   "--probs: nii writes the probabilities of NIfTI volumes, and", "000.png is not one")
    # Ctrl-C midway: the volume's labels are not written (a part would pass for the whole), and it says so.
    open(path("long.nii"), "wb").write(nifti_bytes(np.tile(ct, (500, 1, 1))))
    code, err = interrupted(["predict", model, path("long.nii"), "--out", path("nii_long")], "nii_long.err")
    assert code == 130 and "long.nii: stopped by Ctrl-C at slice " in err and listed(path("nii_long")) == [], (code, err[-300:])
    # What fcn does not read, and flags that do not fit a volume: one line each, naming the file.
    open(path("series.nii"), "wb").write(nifti_bytes(ct, dims=(32, 24, 2, 2)))  # a 4-D volume: channels to predict, a series to the model's 1
    p = run("predict", model, path("series.nii"), "--out", path("nii_bad"), "--quiet", ok=False)
    one_line_error(p, "series.nii: is a case of 2 channel(s) but the model takes 1")
    open(path("series5.nii"), "wb").write(nifti_bytes(np.zeros((6, 1, 1), np.int16), dims=(1, 1, 2, 1, 3)))  # dim[5]: never channels
    one_line_error(run("predict", model, path("series5.nii"), "--out", path("nii_bad"), "--quiet", ok=False),
                   "series5.nii: holds 3 volumes along dimension 5 (a 4-D series, or channels)")
    one_line_error(run("predict", model, path("ct.nii"), "--out", path("nii_bad"), "--probs", "tif", ok=False), "--probs: tif writes TIFF stacks, and", "--probs nii")
    one_line_error(run("forward", model, path("ct.nii"), "--out", path("x.npy"), ok=False), "ct.nii: is a NIfTI volume, not one image")
    z, y, x = [int(i[0]) for i in np.nonzero(ct < 0)]  # the first voxel in file order that is no class index
    one_line_error(run("data", "unstack", path("ct.nii"), "--masks", path("ct.nii"), "--out", path("ct_bad"), ok=False),
                   f"ct.nii: voxel ({x},{y},{z}) holds {ct[z, y, x]}: a label volume holds class indices 0..65535")
    assert not os.path.exists(path("ct_bad/images")), "nothing written"
    one_line_error(run("predict", model, path("ct_ds/images"), "--out", path("nii_bad"), "--window", "0,1", ok=False),
                   "--window: maps the voxels of NIfTI volumes (.nii, .nii.gz), and no input is one")


@check("predict --probs tif: K float32 pages an image; a stack's in one hyperstack beside its labels, calibrated as the input")
def _():
    model = scenes_model()  # run after the --label-stack check: vol4.tif, vol4_bad.tif and pngs/ are its
    volume, pages = Image.open(path("vol4.tif")), []
    for k in range(4):
        volume.seek(k)
        pages.append(volume.copy())
    description = "ImageJ=1.53t\nimages=4\nslices=4\nunit=micron\nspacing=0.5\nloop=false\n"
    pages[0].save(path("cal.tif"), save_all=True, append_images=pages[1:], description=description,
                  tiffinfo={282: 4.0, 283: 4.0, 296: 1})
    out = json.loads(run("predict", model, path("cal.tif"), "--out", path("ptif"), "--label-stack", "--probs", "tif", "--json").stdout)
    assert out["stacks"] == [{"stack": path("cal.tif"), "pages": 4, "labels": path("ptif/cal-labels.tif"), "probs": path("ptif/cal-probs.tif"),
                              "pages_written": 4, "void_pages": []}], out
    assert sorted(listed(path("ptif"))) == ["cal-labels.tif", "cal-probs.tif"], listed(path("ptif"))
    run("predict", model, path("cal.tif"), "--out", path("pnpy"), "--probs", "npy")  # per page: what the stack must hold
    probs = Image.open(path("ptif/cal-probs.tif"))
    assert probs.n_frames == 4 * 11 and probs.mode == "F", (probs.n_frames, probs.mode)
    for k in range(4):
        expected = np.load(path(f"pnpy/cal/{k:06d}-probs.npy"))
        for c in range(11):
            probs.seek(k * 11 + c)  # ImageJ's order: channel fastest, then slice
            assert np.abs(np.array(probs) - expected[c]).max() < 1e-6, (k, c)
    probs.seek(0)
    assert probs.tag_v2[270] == "ImageJ=1.11a\nimages=44\nchannels=11\nslices=4\nhyperstack=true\nmode=grayscale\nunit=micron\n" \
                               "spacing=0.5\nmin=0\nmax=1\n", probs.tag_v2[270]
    labels = Image.open(path("ptif/cal-labels.tif"))
    assert labels.tag_v2[270] == "ImageJ=1.11a\nimages=4\nslices=4\nunit=micron\nspacing=0.5\n", labels.tag_v2[270]
    for image in (probs, labels):
        for k in (0, image.n_frames - 1):
            image.seek(k)
            assert (float(image.tag_v2[282]), float(image.tag_v2[283]), image.tag_v2[296]) == (4.0, 4.0, 1), k
    # A page that fails is NaN in the probabilities (every channel), as it is void in the labels.
    p = run("predict", model, path("vol4_bad.tif"), "--out", path("pbad"), "--probs", "tif", ok=False)
    assert p.returncode == 1 and "pbad/vol4_bad-probs.tif: 1 of 4 page(s) could not be segmented and are NaN there" in p.stderr, p.stderr
    probs = Image.open(path("pbad/vol4_bad-probs.tif"))
    for k in (0, 1, 2):
        probs.seek(k * 11 + 5)
        assert np.isnan(np.array(probs)).all() == (k == 1), k
    assert sorted(listed(path("pbad/vol4_bad"))) == [f"{k:06d}.png" for k in (0, 2, 3)]  # labels still per page
    # One image: its K channels as K pages.
    scene = sorted(glob.glob(path("scenes/JPEGImages/val_*.png")))[0]
    run("predict", model, scene, "--out", path("pone"), "--probs", "tif")
    run("predict", model, scene, "--out", path("pone"), "--probs", "npy")
    stem = os.path.splitext(os.path.basename(scene))[0]
    expected, probs = np.load(path(f"pone/{stem}-probs.npy")), Image.open(path(f"pone/{stem}-probs.tif"))
    assert probs.n_frames == 11 and "channels=11" in probs.tag_v2[270]
    for c in range(11):
        probs.seek(c)
        assert np.abs(np.array(probs) - expected[c]).max() < 1e-6, c


@check("predict --skip-existing keeps an input only where every output its flags ask for is there; the rest is written")
def _():
    model = scenes_model()
    scenes = sorted(glob.glob(path("scenes/JPEGImages/val_*.png")))[:3]
    pages = [Image.open(f).convert("L") for f in scenes]
    pages[0].save(path("vol3.tif"), save_all=True, append_images=pages[1:])
    first = json.loads(run("predict", model, *scenes, "--out", path("more"), "--json").stdout)
    assert (first["kept"], first["succeeded"]) == (0, 3), first
    flags = ["--overlay", "--instances", "--probs", "png", "--skip-existing", "--json"]
    added = json.loads(run("predict", model, *scenes, "--out", path("more"), *flags).stdout)  # masks there, the rest not
    assert (added["kept"], added["succeeded"]) == (0, 3), (added["kept"], added["succeeded"])
    classes = len(added["images"][0]["files"]) - 3
    stems = [os.path.splitext(os.path.basename(s))[0] for s in scenes]
    expected = {f"{s}{suffix}" for s in stems for suffix in [".png", "-overlay.png", "-instances.png"] + [f"-prob{c}.png" for c in range(classes)]}
    assert classes == 11 and set(listed(path("more"))) == expected, sorted(set(listed(path("more"))) ^ expected)
    os.remove(path(f"more/{stems[1]}-prob7.png"))  # one file of one image missing: that image alone again
    again = json.loads(run("predict", model, *scenes, "--out", path("more"), *flags).stdout)
    assert (again["kept"], again["succeeded"], again["images"][0]["image"]) == (2, 1, scenes[1]), again
    assert set(listed(path("more"))) == expected
    # A stack: its label stack there, its --probs tif not yet: segmented again; then both there: kept.
    run("predict", model, path("vol3.tif"), "--out", path("more_stack"), "--label-stack")
    stack = json.loads(run("predict", model, path("vol3.tif"), "--out", path("more_stack"), "--label-stack", "--probs", "tif",
                           "--skip-existing", "--json").stdout)
    assert (stack["kept"], stack["succeeded"]) == (0, 3) and Image.open(path("more_stack/vol3-probs.tif")).n_frames == 3 * 11, stack
    kept = json.loads(run("predict", model, path("vol3.tif"), "--out", path("more_stack"), "--label-stack", "--probs", "tif",
                          "--overlay", "--skip-existing", "--json").stdout)
    assert (kept["kept"], kept["succeeded"]) == (0, 3), kept  # the per-page overlays were not there
    assert sorted(listed(path("more_stack/vol3"))) == [f"{k:06d}-overlay.png" for k in range(3)]
    kept = json.loads(run("predict", model, path("vol3.tif"), "--out", path("more_stack"), "--label-stack", "--probs", "tif",
                          "--overlay", "--skip-existing", "--json").stdout)
    assert (kept["kept"], kept["succeeded"]) == (3, 0), kept


@check("predict --tile on a large image equals whole-image prediction almost everywhere")
def _():
    model = scenes_model()
    tiles = [np.array(Image.open(f)) for f in sorted(glob.glob(path("scenes/JPEGImages/*.png")))]
    big = np.concatenate([np.concatenate(tiles[r * 7:(r + 1) * 7], 1) for r in range(4)], 0)  # 128 x 224
    big = np.tile(big, (4, 4))  # 512 x 896
    save(path("big.png"), big)
    run("predict", model, path("big.png"), "--out", path("whole"))
    run("predict", model, path("big.png"), "--out", path("tiled"), "--tile", 256, "--overlap", 64, "--batch", 2)
    whole, tiled = np.array(Image.open(path("whole/big.png"))), np.array(Image.open(path("tiled/big.png")))
    assert whole.shape == (512, 896)
    assert (whole == tiled).mean() >= 0.99, (whole == tiled).mean()


@check("heatmap: the convolutionalized classifier's class map on a scene, as a picture and .npy")
def _():
    run("init", "--arch", "classifier", "--backbone", "vgg11-w0.0625", "--fc-channels", 8, "--classes", 3,
        "--input-size", 32, "--in-channels", 1, "--out", path("cls.fcn"))
    save(path("scene96.png"), np.random.default_rng(1).integers(0, 256, (96, 128)))
    p = run("heatmap", path("cls.fcn"), path("scene96.png"), "--class", "class_2", "--out", path("heat.png"),
            "--npy", path("heat.npy"))
    assert np.load(path("heat.npy")).shape == (3, 4), p.stdout
    picture = Image.open(path("heat.png"))
    assert picture.mode == "RGB" and picture.size[1] >= 256
    one_line_error(run("heatmap", path("cls.fcn"), path("scene96.png"), "--class", "dog", "--out", path("h.png"), ok=False),
                   "--class", "class_0")


@check("export --pth: torch.load + the PyTorch definition (nets.py) give fcn's logits")
def _():
    run("init", "--arch", "fcn16s", "--backbone", "vgg16-w0.125", "--fc-channels", 16, "--classes", 3,
        "--geometry", "same", "--out", path("same16.fcn"))
    randomize_model_file(path("same16.fcn"), path("same16_random.fcn"), 4)
    run("export", path("same16_random.fcn"), "--pth", path("same16.pth"))
    net = nets.SameFCN(16, 3, width=0.125, fc_channels=16, fc_kernel=7)
    net.load_state_dict(torch.load(path("same16.pth")))
    net.eval()
    x = np.random.default_rng(2).standard_normal((1, 3, 50, 70)).astype(np.float32)
    np.save(path("x.npy"), x)
    run("forward", path("same16_random.fcn"), path("x.npy"), "--out", path("y.npy"))
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = np.load(path("y.npy"))
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


@check("export --onnx: a checked ONNX file with the preprocessing in its metadata")
def _():
    p = run("export", path("same16_random.fcn"), "--onnx", path("same16.onnx"), "--size", "64x96")
    assert "onnx::checker" in p.stdout and "logits 1x3x64x96" in p.stdout, p.stdout
    p = run("export", path("same16_random.fcn"), "--onnx", path("dyn.onnx"), "--dynamic")
    assert "input ?x3x?x?" in p.stdout, p.stdout
    raw = open(path("same16.onnx"), "rb").read()
    for key in (b"fcn.mean", b"fcn.class_names", b"fcn.palette", b"fcn.preprocessing"):
        assert key in raw, key
    run("init", "--arch", "fcn8s", "--backbone", "vgg16-w0.125", "--fc-channels", 16, "--classes", 3,
        "--geometry", "reference", "--out", path("ref8.fcn"))
    one_line_error(run("export", path("ref8.fcn"), "--onnx", path("r.onnx"), "--dynamic", ok=False), "--dynamic")
    one_line_error(run("export", path("cls.fcn"), "--onnx", path("r.onnx"), ok=False), "classifier")
    assert not os.path.exists(path("r.onnx"))


@check("report: an HTML page that headless Chromium renders (screenshot not blank)")
def _():
    scenes_model()
    run("report", path("s8.run"), "--out", path("report.html"), "--examples", 3)
    html = open(path("report.html")).read()
    for needle in ("<svg", "mean IU", "Confusion matrix", "data:image/png;base64,", "T-shirt/top"):
        assert needle in html, needle
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    # Which epoch best.fcn is, as fcn train chose it: the first of the highest validation mean IU.
    lines = [json.loads(line) for line in open(path("s8.run/metrics.jsonl"))]
    best = max(lines, key=lambda e: (e["val"]["mean_iu"], -e["epoch"]))
    summary = f"2 epochs trained; best.fcn is epoch {best['epoch']} (validation mean IU {100 * best['val']['mean_iu']:.2f}%)"
    assert summary in html, (summary, re.findall(r"epochs trained[^<]*", html))
    assert "<p>Command: <code>fcn train --data " + path("scenes") + " --arch fcn8s" in html  # how the run was started
    # The page's metrics are fcn eval's on the same model and split (both score as fcn predict segments).
    cells = re.search(r"<th>f\.w\. IU</th></tr><tr><td>([\d.]+)%</td><td>([\d.]+)%</td><td>([\d.]+)%</td>", html)
    scored = json.loads(run("eval", path("s8.run/best.fcn"), "--data", path("scenes"), "--json").stdout)
    assert cells and abs(float(cells.group(3)) - 100 * scored["mean_iu"]) < 0.006, (cells and cells.group(3), scored["mean_iu"])
    # With predict's inference flags, the page scores as fcn eval does with them, and says how.
    run("report", path("s8.run"), "--out", path("report-flip.html"), "--examples", 1, "--tta", "flip")
    flipped = open(path("report-flip.html")).read()
    assert "<p>Inference: whole image; test-time augmentation: flip</p>" in flipped
    cells = re.search(r"<th>f\.w\. IU</th></tr><tr><td>([\d.]+)%</td><td>([\d.]+)%</td><td>([\d.]+)%</td>", flipped)
    scored = json.loads(run("eval", path("s8.run/best.fcn"), "--data", path("scenes"), "--json", "--tta", "flip").stdout)
    assert cells and abs(float(cells.group(3)) - 100 * scored["mean_iu"]) < 0.006, (cells and cells.group(3), scored["mean_iu"])
    # The examples are the images fcn eval --worst lists, in its order, with their mean IU.
    worst = json.loads(run("eval", path("s8.run/best.fcn"), "--data", path("scenes"), "--json", "--worst", 3).stdout)["worst"]
    shown = re.findall(r"<br><code>([^<]+)</code> mean IU ([\d.]+)%", html)
    assert [name for name, _ in shown] == [os.path.basename(w["image"]) for w in worst], (shown, worst)
    assert all(abs(float(m) - 100 * w["mean_iu"]) < 0.006 for (_, m), w in zip(shown, worst)), (shown, worst)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (scripts/install-deps.sh installs it)"
    shot = path("report.png")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1100,1800", "file://" + path("report.html")],
                   capture_output=True, timeout=120)
    pixels = np.array(Image.open(shot).convert("RGB")).reshape(-1, 3)
    colours = len(np.unique(pixels, axis=0))
    non_white = (pixels.min(1) < 250).mean()
    assert colours > 50 and non_white > 0.05, (colours, non_white)
    one_line_error(run("report", path("scenes"), "--out", path("r.html"), ok=False), "metrics.jsonl")
    # The model file instead of its run folder: the folder fcn train wrote beside it is named.
    one_line_error(run("report", path("s8.fcn"), "--out", path("r.html"), ok=False),
                   "s8.fcn: is a file, not the run directory", "try " + path("s8.run"))


@check("examples/segment: the C++ API in 40 lines gives fcn predict's labels")
def _():
    model = scenes_model()
    image = sorted(glob.glob(path("scenes/JPEGImages/*.png")))[0]
    p = subprocess.run([EXAMPLE, model, image, path("example")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "segmented in" in p.stdout and " px" in p.stdout, p.stdout
    run("predict", model, image, "--out", path("example_cli"))
    ours = np.array(Image.open(path("example-labels.png")))
    cli = np.array(Image.open(os.path.join(path("example_cli"), os.path.basename(image))))
    assert (ours == cli).all()
    lines = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "segment.cpp")).read()
    assert len(lines.splitlines()) <= 40


@check("examples/train: the C++ API trains the weights fcn train trains with the same settings (1e-6)")
def _():
    scenes_model()  # its dataset
    p = subprocess.run([TRAIN_EXAMPLE, path("scenes"), path("example.run"), path("example-unet.fcn")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "best epoch" in p.stdout, p.stdout + p.stderr
    run("train", "--data", path("scenes"), "--arch", "unet", "--depth", 2, "--base-channels", 8, "--epochs", 2, "--batch", 4,
        "--run-dir", path("cli-unet.run"), "--out", path("cli-unet.fcn"))
    ours, cli = torch.load(path("example-unet.fcn")), torch.load(path("cli-unet.fcn"))
    assert sorted(ours["state_dict"]) == sorted(cli["state_dict"])
    worst = max((ours["state_dict"][k] - cli["state_dict"][k]).abs().max().item() for k in cli["state_dict"])
    assert worst < 1e-6, worst
    run("init", "--arch", "unet", "--depth", 2, "--base-channels", 8, "--classes", 11, "--in-channels", 1,
        "--out", path("unet-start.fcn"))  # the same initial weights (seed 0): training moved them
    start = torch.load(path("unet-start.fcn"))["state_dict"]
    moved = max((start[k] - cli["state_dict"][k]).abs().max().item() for k in start)
    assert 1e-5 < moved < 1e-2, moved  # two epochs at lr 1e-3 from the same start (another seed: ~0.1 away)
    assert len(open(path("example.run/metrics.jsonl")).read().splitlines()) == 2
    assert json.loads(ours["meta"])["normalization"] == json.loads(cli["meta"])["normalization"]
    lines = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "train.cpp")).read()
    assert len(lines.splitlines()) <= 45


@check("bench: a note where OpenBLAS runs kernels older than the CPU, none where they fit")
def _():
    def bench(core):
        env = dict(os.environ, OPENBLAS_CORETYPE=core)
        args = ["bench", "--backbone", "vgg16-w0.0625", "--geometry", "same", "--size", "32", "--runs", "1", "--threads", "1"]
        text = subprocess.run([FCN, *args], capture_output=True, text=True, timeout=300, env=env, check=True).stdout
        out = json.loads(subprocess.run([FCN, *args, "--json"], capture_output=True, text=True, timeout=300, env=env,
                                        check=True).stdout)
        return text, out["blas"]["openblas_core"]
    text, core = bench("Prescott")  # OpenBLAS's SSE3 kernels, what an OpenBLAS older than the CPU falls back to
    if core == "":
        print("  (skipped: LibTorch's BLAS here is not OpenBLAS)")
        return
    assert core == "Prescott", core
    assert "note: OpenBLAS, LibTorch's BLAS, runs its Prescott kernels on this CPU" in text, text
    assert "OPENBLAS_CORETYPE=" in text, text
    text, core = bench("Haswell")
    assert core == "Haswell" and "note: OpenBLAS" not in text, (core, text)


@check("bench --peers --json: every figure, PyTorch-Python and OpenCV DNN peers on the same model")
def _():
    out = json.loads(run("bench", "--backbone", "vgg16-w0.0625", "--geometry", "same", "--size", 64, "--runs", 2,
                         "--threads", "1,2", "--peers", "--json").stdout)
    for key in ("ms_per_image", "gflops_per_s", "sgemm_gflops_per_s", "conv_gflops_per_s", "fraction_of_conv_peak",
                "peak_rss_mib"):
        assert out[key] > 0, (key, out)
    assert [r["threads"] for r in out["runs"]] == [1, 2]
    # The SGEMM peak is the faster of LibTorch's BLAS and oneDNN's sgemm; the BLAS's own and OpenBLAS's kernels beside.
    assert 0 < out["blas"]["sgemm_gflops_per_s"] <= out["sgemm_gflops_per_s"], out["blas"]
    assert isinstance(out["blas"]["openblas_core"], str), out["blas"]
    for peer in ("pytorch", "pytorch_tuned_malloc", "opencv_dnn"):
        p = out["peers"][peer]
        assert p["ms_per_image"] > 0 and abs(p["ratio"] - out["ms_per_image"] / p["ms_per_image"]) < 1e-9, (peer, p)
        for r in out["runs"]:  # every peer at every thread count, ratios like with like
            mine, theirs = r["ms_per_image"], p["by_threads"][str(r["threads"])]
            assert abs(r["ratio"][peer] - mine / theirs) < 1e-9, (peer, r)
    assert out["cpu_allocator"].startswith("fcn"), out["cpu_allocator"]
    # An FCN on a ResNet: PyTorch's is nets.SameFCN on nets.ResNet, loaded from fcn's export (strict names).
    out = json.loads(run("bench", "--backbone", "resnet18-w0.125", "--size", 64, "--runs", 1, "--threads", "1", "--peers",
                         "--json").stdout)
    assert out["peers"]["pytorch"]["ms_per_image"] > 0 and "pytorch" not in out.get("peers_skipped", {}), out
    # A net no peer runs (a classifier: no PyTorch definition in bench/peers, no ONNX export): each peer is skipped
    # with its reason and fcn's own time stands (the bench once stopped at the peer's traceback, later at the export).
    out = json.loads(run("bench", "--arch", "classifier", "--backbone", "vgg11-w0.125", "--fc-channels", 16, "--classes", 5,
                         "--size", 64, "--runs", 1, "--threads", "1", "--peers", "--json").stdout)
    skipped = out["peers_skipped"]
    assert "no PyTorch definition of arch classifier" in skipped["pytorch"], skipped
    for peer in ("opencv_dnn", "onnxruntime"):
        assert "only fcn, unet and torchvision-fcn models export to ONNX, not 'classifier'" in skipped[peer], skipped
    assert out["peers"] == {} and out["ms_per_image"] > 0, out
    train = json.loads(run("bench", "--arch", "unet", "--size", 32, "--batch", 2, "--mode", "train", "--runs", 1,
                           "--classes", 3, "--json").stdout)
    assert train["mode"] == "train" and train["ms_per_image"] > 0


@check("eval scores exactly the labels predict writes, with predict's --tta/--tile/--resize, valid U-Net; --worst images")
def _():
    root = path("unet_data")
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(7)
    sizes = [(30, 41), (36, 36), (25, 50)]  # none of them a legal valid-U-Net input
    for i, (h, w) in enumerate(sizes):
        save(os.path.join(root, "JPEGImages", f"u{i}.png"), rng.integers(0, 256, (h, w)))
        save(os.path.join(root, "SegmentationClass", f"u{i}.png"), rng.integers(0, 3, (h, w)))
    open(os.path.join(root, "ImageSets/Segmentation/val.txt"), "w").write("u0\nu1\nu2\n")
    json.dump({"names": ["a", "b", "c"]}, open(os.path.join(root, "classes.json"), "w"))
    run("init", "--arch", "unet", "--padding", "valid", "--depth", 2, "--base-channels", 4, "--in-channels", 1,
        "--classes", 3, "--out", path("vunet.fcn"))
    randomize_model_file(path("vunet.fcn"), path("vunet_random.fcn"), 5)
    # Whole images, and as predict runs with test-time augmentation, overlapping tiles or a resize:
    # eval takes the same flags and scores what predict writes with them.
    for k, flags in enumerate([[], ["--tta", "flip,rot90"], ["--tile", 60, "--overlap", 4, "--batch", 2],
                               ["--resize", "40x48", "--tta", "flip"], ["--scales", "0.5,1,1.5", "--tta", "flip"]]):
        result = json.loads(run("eval", path("vunet_random.fcn"), "--data", root, "--json", *flags).stdout)
        said = json.loads(run("predict", path("vunet_random.fcn"), os.path.join(root, "JPEGImages"), "--out",
                              path(f"vunet_masks{k}"), "--json", *flags).stdout)["inference"]
        assert said == result["inference"]["text"], (said, result["inference"])
        confusion = np.zeros((3, 3), dtype=np.int64)
        for i, (h, w) in enumerate(sizes):
            labels = np.asarray(Image.open(path(f"vunet_masks{k}/u{i}.png")))
            truth = np.asarray(Image.open(os.path.join(root, "SegmentationClass", f"u{i}.png")))
            assert labels.shape == truth.shape == (h, w), (flags, labels.shape, truth.shape)
            np.add.at(confusion, (truth.ravel(), labels.ravel()), 1)
        assert np.array_equal(np.array(result["confusion"]), confusion), (flags, result["confusion"], confusion.tolist())
        inference = result["inference"]
        assert (inference["flip"], inference["rot90"]) == ("--tta" in flags, "flip,rot90" in flags), (flags, inference)
        assert inference["tile"] == (60 if "--tile" in flags else 0) and (inference["overlap"] == 4) == ("--tile" in flags)
        assert inference["resize"] == ([40, 48] if "--resize" in flags else None), inference
        assert inference["scales"] == ([0.5, 1, 1.5] if "--scales" in flags else [1]), inference
        if k == 0:
            whole = confusion
        elif "--tile" in flags:  # valid padding: the paper's overlap-tile strategy is seamless, tiles = whole
            assert np.array_equal(confusion, whole), (confusion.tolist(), whole.tolist())
        else:  # test-time augmentation, resizing and scales segment differently (else the check above proves little)
            assert not np.array_equal(confusion, whole), flags
    one_line_error(run("eval", path("vunet_random.fcn"), "--data", root, "--scales", "0", ok=False), "--scales", "between")
    one_line_error(run("predict", path("vunet_random.fcn"), root, "--out", path("x"), "--scales", "0.5", "--resize", "32x32",
                       ok=False), "--scales", "not both")
    # --worst: the images with the lowest mean IU, each scored on its own (numpy over predict's masks).
    worst = json.loads(run("eval", path("vunet_random.fcn"), "--data", root, "--json", "--worst", 2).stdout)["worst"]
    own = []
    for i in range(len(sizes)):
        labels = np.asarray(Image.open(path(f"vunet_masks0/u{i}.png"))).ravel()
        truth = np.asarray(Image.open(os.path.join(root, "SegmentationClass", f"u{i}.png"))).ravel()
        ious = [((labels == c) & (truth == c)).sum() / ((labels == c) | (truth == c)).sum()
                for c in range(3) if ((labels == c) | (truth == c)).any()]
        own.append((np.mean(ious), i))
    expected = sorted(own)[:2]
    assert [os.path.basename(w["image"]) for w in worst] == [f"u{i}.png" for _, i in expected], (worst, own)
    assert all(abs(w["mean_iu"] - m) < 1e-9 for w, (m, _) in zip(worst, expected)), (worst, own)
    assert len({round(m, 9) for m, _ in own}) == 3, own  # distinct scores: the order is the check's, not a tie-break's
    assert len(np.unique(confusion.argmax(1))) > 1 or confusion.sum() > 0


@check("eval --predictions scores masks made elsewhere as it scores a model: numpy's confusion over random masks")
def _():
    root = path("unet_data")  # the check above's data: 3 classes, void-free masks u0..u2
    rng = np.random.default_rng(8)
    os.makedirs(path("elsewhere"), exist_ok=True)
    confusion = np.zeros((3, 3), dtype=np.int64)
    for i in range(3):
        truth = np.asarray(Image.open(os.path.join(root, "SegmentationClass", f"u{i}.png")))
        labels = rng.integers(0, 3, truth.shape)
        save(path(f"elsewhere/u{i}.png"), labels)  # gray index PNGs, as another tool would write them
        np.add.at(confusion, (truth.ravel(), labels.ravel()), 1)
    result = json.loads(run("eval", "--predictions", path("elsewhere"), "--data", root, "--json").stdout)
    assert np.array_equal(np.array(result["confusion"]), confusion), (result["confusion"], confusion.tolist())
    iu = np.diag(confusion) / (confusion.sum(0) + confusion.sum(1) - np.diag(confusion))
    assert abs(result["mean_iu"] - iu.mean()) < 1e-12 and result["inference"] is None, result
    # Beside a model in one table: the same numbers as scoring predict's own masks of that model.
    both = json.loads(run("eval", "--predictions", path("vunet_masks0"), path("vunet_random.fcn"), "--data", root, "--json").stdout)
    assert both[0]["confusion"] == both[1]["confusion"] and both[1]["model"] == path("vunet_masks0"), both
    os.remove(path("elsewhere/u1.png"))
    p = run("eval", "--predictions", path("elsewhere"), "--data", root, ok=False)
    assert p.returncode == 1 and "elsewhere/u1.png: missing: no prediction for " in p.stderr, p.stderr
    one_line_error(run("eval", "--data", root, ok=False), "MODEL: give model files to evaluate, or --predictions folders")
    # Without a model, a flag that says how a model segments goes unread: one line (--tta did nothing here).
    for flag in (["--tta", "flip"], ["--tile", 64], ["--dtype", "bf16"], ["--largest", "all"]):
        one_line_error(run("eval", "--predictions", path("elsewhere"), "--data", root, *flag, ok=False),
                       flag[0] + ": says how a model segments, and no model is given")



@check("eval --predictions STACK.tif: a label stack scored page k against image k of the folder unstack made; numpy's confusion")
def _():
    rng = np.random.default_rng(9)
    shape = (5, 20, 24)
    volume = rng.integers(0, 256, shape).astype(np.uint8)
    truth = np.where(rng.random(shape) < 0.4, 255, 0).astype(np.uint8)  # ISBI-style 0/255 labels: a binary dataset
    predicted = rng.integers(0, 2, shape).astype(np.uint8)  # class indices, as fcn predict --label-stack writes them

    def stack(file, pages, mode=None):
        images = [Image.fromarray(p if mode is None else p.astype(np.uint16), mode) for p in pages]
        images[0].save(path(file), save_all=True, append_images=images[1:])

    stack("ev_volume.tif", volume)
    stack("ev_truth.tif", truth)
    stack("ev_pred.tif", predicted)
    stack("ev_pred16.tif", predicted, "I;16")  # 16-bit pages: the same class indices
    run("data", "unstack", path("ev_volume.tif"), "--masks", path("ev_truth.tif"), "--out", path("ev_data"))
    confusion = np.zeros((2, 2), dtype=np.int64)
    np.add.at(confusion, ((truth // 255).ravel(), predicted.ravel()), 1)
    for file in ("ev_pred.tif", "ev_pred16.tif"):
        result = json.loads(run("eval", "--predictions", path(file), "--data", path("ev_data"), "--json").stdout)
        assert np.array_equal(np.array(result["confusion"]), confusion), (file, result["confusion"], confusion.tolist())
    # The same masks as PNGs named as unstack names the pages: the same numbers.
    os.makedirs(path("ev_pngs"), exist_ok=True)
    for k in range(5):
        save(path(f"ev_pngs/{k:03d}.png"), predicted[k])
    pngs = json.loads(run("eval", "--predictions", path("ev_pngs"), "--data", path("ev_data"), "--json").stdout)
    assert pngs["confusion"] == confusion.tolist() and abs(pngs["mean_iu"] - result["mean_iu"]) < 1e-12
    # A void page (predict could not segment it) is an error for its image; a stack too short names the page asked.
    voided = predicted.copy()
    voided[2] = 255
    stack("ev_void.tif", voided)
    p = run("eval", "--predictions", path("ev_void.tif"), "--data", path("ev_data"), ok=False)
    assert p.returncode == 1 and "ev_void.tif page 2: is 255 throughout: the void page fcn predict --label-stack writes" in p.stderr, p.stderr
    stack("ev_short.tif", predicted[:4])
    p = run("eval", "--predictions", path("ev_short.tif"), "--data", path("ev_data"), ok=False)
    assert p.returncode == 1 and "ev_short.tif: has no page 4 (pages 0..3)" in p.stderr, p.stderr
    shutil.copytree(path("ev_data"), path("ev_named"))
    for folder in ("images", "masks"):
        os.rename(path(f"ev_named/{folder}/001.png"), path(f"ev_named/{folder}/cell.png"))
    one_line_error(run("eval", "--predictions", path("ev_pred.tif"), "--data", path("ev_named"), ok=False),
                   "ev_pred.tif: a label stack is scored against the dataset fcn data unstack makes", "image ID 'cell' is not a page number")
    one_line_error(run("eval", "--predictions", path("ev_nothing"), "--data", path("ev_data"), ok=False),
                   "ev_nothing: is neither a folder of predicted masks")

summary()
