"""Hostile and broken input through the `fcn` command line (issue 13; docs/reliability.md).

Every case is crafted here (nothing binary is committed): a crash (negative exit code), a hang, a
multi-line message or a silent success fails the test.
Usage: /usr/bin/python3 hostile_test.py PATH/TO/fcn
"""
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import zipfile
import zlib

import numpy as np
import torch
from torchvision.io import encode_jpeg

from harness import FCN, check, listed, one_line_error, path, run, summary, write_gray_png  # noqa: E402


def pickle_archive(file, program):
    """A torch.save-style zip whose data.pkl is the given (protocol 2) pickle program."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + program)
        z.writestr("archive/version", b"3\n")


def unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">II", width, height) + b"\x08\x00\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def no_crash(p):
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {p.stderr[-300:]}"
    return p


def one_line(p, *needles):
    no_crash(p)
    one_line_error(p, *needles)


@check("pickles that held themselves or nested 200,000 lists deep are errors, not SIGSEGV")
def _():
    pickle_archive(path("selfref.pth"), b"}q\x00" + unicode("state_dict") + b"h\x00s.")
    one_line(run("import", "torchvision-vgg16", path("selfref.pth"), "--out", path("x.fcn"), ok=False),
             "selfref.pth", "is not a tensor")
    depth = 200000
    pickle_archive(path("deep.pth"), b"}" + unicode("k") + b"]" * depth + b"a" * (depth - 1) + b"s.")
    one_line(run("import", "torchvision-vgg16", path("deep.pth"), "--out", path("x.fcn"), ok=False),
             "deep.pth", "entry 'k' is not a tensor")
    assert not os.path.exists(path("x.fcn"))


@check("a .npy with a 60,000-character shape, or a negative one, is one line naming the file")
def _():
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--in-channels", 1, "--classes", 2,
        "--out", path("tiny_unet.fcn"))
    for name, shape in (("long.npy", "1, " * 20000), ("negative.npy", "-1, 1, 8, 8")):
        header = ("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }\n" % shape).encode()
        with open(path(name), "wb") as f:
            f.write(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + b"\x00" * 256)
        one_line(run("forward", path("tiny_unet.fcn"), path(name), "--out", path("y.npy"), ok=False), name, "shape")


@check("bombs: a 2 KB PNG claiming 100000x100000 is refused before decoding; predict goes on to the next image")
def _():
    folder = path("bomb_folder")
    os.makedirs(folder)
    with open(os.path.join(folder, "a_bomb.png"), "wb") as f:
        f.write(png_header_only(100000, 100000))
    with open(os.path.join(folder, "b_lie.png"), "wb") as f:
        f.write(png_header_only(16000, 16000))
    write_gray_png(os.path.join(folder, "c_good.png"), np.zeros((20, 20)))
    os.symlink("d_loop.png", os.path.join(folder, "d_loop.png"))  # a symlink loop
    write_gray_png(os.path.join(folder, "e_good.png"), np.zeros((20, 20)))
    os.mkfifo(os.path.join(folder, "f_pipe.tif"))  # never opened: reading a pipe would block
    with open(os.path.join(folder, "g_bomb.tif"), "wb") as f:  # a TIFF directory claiming 100000x100000, no pixels
        f.write(b"II*\0" + struct.pack("<IH", 8, 2) + struct.pack("<HHII", 256, 4, 1, 100000) +
                struct.pack("<HHII", 257, 4, 1, 100000) + struct.pack("<I", 0))
    p = no_crash(run("predict", path("tiny_unet.fcn"), folder, "--out", path("bomb_out"), ok=False))
    assert p.returncode == 1, p.returncode
    assert "a_bomb.png: image is 100000x100000" in p.stderr and "(skipped)" in p.stderr, p.stderr
    assert "b_lie.png: declares 16000x16000 pixels, more than its" in p.stderr, p.stderr
    assert "d_loop.png" in p.stderr, p.stderr
    assert "f_pipe.tif: is not a regular file" in p.stderr and "g_bomb.tif: image is 100000x100000" in p.stderr, p.stderr
    assert "2 image(s) segmented" in p.stdout and "5 failed" in p.stdout, p.stdout
    assert sorted(listed(path("bomb_out"))) == ["c_good.png", "e_good.png"]
    # The limit is the user's: --max-pixels names itself in the message.
    p = run("predict", path("tiny_unet.fcn"), os.path.join(folder, "c_good.png"), "--out", path("bomb_out2"),
            "--max-pixels", 399, ok=False)
    assert "over the limit of 399 (raise it with --max-pixels)" in p.stderr, p.stderr
    one_line(run("info", path("tiny_unet.fcn"), "--size", 100000, ok=False), "--size", "over the limit")
    one_line(run("bench", path("tiny_unet.fcn"), "--batch", 0, ok=False), "--batch", "at least 1")


@check("safetensors and model files that declare more than they hold are one line naming the file")
def _():
    header = json.dumps({"w": {"dtype": "F32", "shape": [100000, 1000000], "data_offsets": [0, 16]}}).encode()
    with open(path("big.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    one_line(run("import", "torchvision-vgg16", path("big.safetensors"), "--out", path("x.fcn"), ok=False),
             "big.safetensors", "do not fit")
    d = torch.load(path("tiny_unet.fcn"))
    config = json.loads(d["config"])
    config["num_classes"] = 10**12
    d["config"] = json.dumps(config)
    torch.save(d, path("trillion.fcn"))
    one_line(run("info", path("trillion.fcn"), ok=False), "trillion.fcn", "'num_classes' is 1000000000000, outside 1..65536")
    d = torch.load(path("tiny_unet.fcn"))
    d["version"] = "1"
    torch.save(d, path("stringversion.fcn"))
    one_line(run("info", path("stringversion.fcn"), ok=False), "stringversion.fcn", "'version' is not an integer")
    os.makedirs(path("folder.fcn"))
    one_line(run("info", path("folder.fcn"), ok=False), "folder.fcn", "is a folder")
    one_line(run("import", "torchvision-vgg16", path("folder.fcn"), "--out", path("x.fcn"), ok=False), "folder.fcn", "is a folder")


@check("a file name with a newline or an escape sequence cannot forge a line of output")
def _():
    evil = path("evil\nfcn: error: forged\x1b[2J.fcn")
    with open(evil, "wb") as f:
        f.write(b"not a model")
    p = run("info", evil, ok=False)
    one_line(p, "evil\\nfcn: error: forged\\x1b[2J.fcn")
    assert "\x1b" not in p.stderr


@check("nonsense flags are refused with one line naming the flag")
def _():
    for classes in (0, -5):
        one_line(run("init", "--arch", "fcn8s", "--classes", classes, "--out", path("x.fcn"), ok=False), "--classes")
    run("data", "fashion-scenes", "--out", path("scenes"), "--train", 4, "--val", 2, "--size", 32)
    base = ["train", "--data", path("scenes"), "--arch", "fcn32s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8,
            "--epochs", 1, "--out", path("nonsense.fcn")]
    for flags, needle in ((["--momentum", -1], "--momentum"), (["--weight-decay", "nan"], "--weight-decay"),
                          (["--crop", -5], "--crop"), (["--scale-min", 0, "--scale-max", 0], "--scale-min"),
                          (["--scale-min", 2, "--scale-max", 0.5], "min_scale <= max_scale"),
                          # read by no part of the training chosen: each trained without it, without a word
                          (["--optimizer", "adamw", "--momentum", 0.5], "--momentum: is SGD's, and --optimizer adamw does not read it"),
                          (["--loss", "dice", "--weight-map", "paper"], "--weight-map: weighs the cross-entropy, and --loss dice has none"),
                          (["--loss", "dice", "--class-weights", "median-freq"], "--class-weights: weighs the cross-entropy")):
        one_line(run(*base, *flags, ok=False), needle)
    assert not os.path.exists(path("nonsense.fcn"))
    # googlenet's input step asked of another net: it was imported without it, without a word
    one_line(run("import", "torchvision-resnet18", path("tiny_unet.fcn"), "--transform-input", "--out", path("x.fcn"), ok=False),
             "--transform-input: is torchvision-googlenet's, and torchvision-resnet18 has no such step")
    # and GoogLeNet imported without it: torchvision's pretrained weights want it, and the file cannot say (a note, not an error)
    import torchvision
    torch.save(torchvision.models.googlenet(num_classes=3, aux_logits=False, init_weights=False).state_dict(), path("googlenet.pth"))
    p = run("import", "auto", path("googlenet.pth"), "--out", path("googlenet.fcn"))
    assert "fcn: note: imported without --transform-input: torchvision's pretrained GoogLeNet weights want it" in p.stderr, p.stderr
    p = run("import", "torchvision-googlenet", path("googlenet.pth"), "--transform-input", "--out", path("googlenet-ti.fcn"))
    assert "note" not in p.stderr, p.stderr


def voc(name, ids, masks=None, names=("a", "b")):
    root = path(name)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i, stem in enumerate(ids):
        write_gray_png(os.path.join(root, "JPEGImages", stem + ".png"), np.full((16, 16), 40 * i))
        mask = masks[i] if masks is not None else np.arange(256).reshape(16, 16) % len(names)
        write_gray_png(os.path.join(root, "SegmentationClass", stem + ".png"), mask)
    with open(os.path.join(root, "ImageSets/Segmentation/train.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    json.dump({"names": list(names)}, open(os.path.join(root, "classes.json"), "w"))
    return root


@check("classes.json colour 300 is an error; split ids keep their inner spaces")
def _():
    root = voc("colour300", ["im0", "im1"])
    json.dump({"names": ["a", "b"], "colors": [[0, 0, 0], [300, 0, 0]]}, open(os.path.join(root, "classes.json"), "w"))
    p = run("data", "check", root, ok=False)
    assert p.returncode == 1 and "classes.json" in p.stdout and "[300,0,0]" in p.stdout, p.stdout
    root = voc("spaces", ["my scene", "other"])
    report = json.loads(run("data", "check", root, "--json").stdout)
    assert report["errors"] == [] and report["sizes"] == [2], report


@check("all-void masks: data check reports it, train refuses, eval says undefined")
def _():
    root = voc("all_void", ["im0", "im1", "im2"], masks=[np.full((16, 16), 255)] * 3)
    p = run("data", "check", root, ok=False)
    assert p.returncode == 1 and "every mask pixel is void (255)" in p.stdout, p.stdout
    p = no_crash(run("train", "--data", root, "--arch", "fcn32s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8,
                     "--in-channels", 1, "--epochs", 1, "--out", path("void.fcn"), ok=False))
    one_line_error(p, "void (255)")
    p = no_crash(run("train", "--data", root, "--arch", "fcn32s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8,
                     "--in-channels", 1, "--epochs", 1, "--no-check", "--out", path("void.fcn"), ok=False))
    # --no-check skips reading the data first: the epoch's progress line comes before the error.
    assert p.returncode == 1 and "nothing to learn from" in p.stderr.strip().splitlines()[-1], p.stderr
    assert not os.path.exists(path("void.fcn"))
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--in-channels", 1, "--classes", 2,
        "--out", path("void_unet.fcn"))
    result = json.loads(run("eval", path("void_unet.fcn"), "--data", root, "--split", "train", "--json").stdout)
    assert result["pixel_acc"] is None and result["mean_iu"] is None, result


@check("a half-truncated JPEG is an error (skipped in a folder), not a grey-bottomed mask with exit 0")
def _():
    folder = path("jpegs")
    os.makedirs(folder)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    jpeg = encode_jpeg(image).numpy().tobytes()
    open(os.path.join(folder, "cut.jpg"), "wb").write(jpeg[: len(jpeg) // 2])
    open(os.path.join(folder, "whole.jpg"), "wb").write(jpeg)
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--classes", 2, "--out", path("rgb_unet.fcn"))
    p = no_crash(run("predict", path("rgb_unet.fcn"), folder, "--out", path("jpeg_out"), ok=False))
    assert p.returncode == 1 and "cut.jpg: truncated JPEG" in p.stderr, p.stderr
    assert "Premature end" not in p.stderr and "WARN" not in p.stderr, p.stderr
    assert listed(path("jpeg_out")) == ["whole.png"], listed(path("jpeg_out"))


@check("data check lists every problem of a dataset in one pass")
def _():
    root = voc("many_problems", ["im0", "im1", "im2", "im3"])
    os.remove(os.path.join(root, "SegmentationClass", "im0.png"))
    os.remove(os.path.join(root, "SegmentationClass", "im2.png"))
    open(os.path.join(root, "JPEGImages", "im3.png"), "r+b").truncate(40)
    with open(os.path.join(root, "ImageSets/Segmentation/train.txt"), "a") as f:
        f.write("ghost\n")
    p = run("data", "check", root, ok=False)
    assert p.returncode == 1, p.returncode
    for needle in ("SegmentationClass/im0.png: missing mask", "SegmentationClass/im2.png: missing mask", "im3.png",
                   "lists 'ghost'", "4 problems found"):
        assert needle in p.stdout, (needle, p.stdout)


@check("two trainers on one run folder: the second fails at once naming the first's pid; no silent overwrite")
def _():
    args = [FCN, "train", "--data", path("scenes"), "--arch", "fcn32s", "--backbone", "vgg16-w0.0625", "--fc-channels", "8",
            "--batch", "1", "--out", path("busy.fcn")]
    first = subprocess.Popen(args + ["--epochs", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        if os.path.exists(path("busy.run/.lock")) and open(path("busy.run/.lock")).read().strip():
            break
        time.sleep(0.05)
    second = run(*args[1:], "--epochs", 1, ok=False)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    one_line(second, "busy.run", f"in use by another fcn train (pid {first.pid})")
    # The first left a checkpoint: a fresh run without --resume or --overwrite refuses to replace it.
    one_line(run(*args[1:], "--epochs", 1, ok=False), "holds an earlier run", "--resume", "--overwrite")
    run(*args[1:], "--epochs", 1, "--overwrite")
    assert os.path.exists(path("busy.fcn"))




@check("an output file's folder is made before the work, or the file in its way named; the work is not lost")
def _():
    # fcn pretrain trained for its whole run, then could not write the classifier into a folder that did not exist
    # (so did fcn report after scoring the split, fcn export between its two files); train and predict made theirs.
    p = run("pretrain", "--backbone", "vgg16-w0.0625", "--fc-channels", 16, "--train-images", 64, "--batch", 32,
            "--out", path("new/folder/c.fcn"))
    assert os.path.isfile(path("new/folder/c.fcn")), p.stdout
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--classes", 2, "--out", path("out_unet.fcn"))
    run("export", path("out_unet.fcn"), "--pth", path("exports/a/u.pth"), "--onnx", path("exports/b/u.onnx"), "--size", 32)
    assert os.path.isfile(path("exports/a/u.pth")) and os.path.isfile(path("exports/b/u.onnx"))
    open(path("a_file"), "w").write("x")
    for args in (["export", path("out_unet.fcn"), "--pth", path("u2.pth"), "--onnx", path("a_file/b/u.onnx")],
                 ["forward", path("out_unet.fcn"), path("a_file"), "--out", path("a_file/l.npy")],
                 ["init", "--arch", "unet", "--out", path("a_file/x.fcn")]):
        one_line(run(*args, ok=False), path("a_file") + ": is a file, not a folder (" + path("a_file/"))
    assert not os.path.exists(path("u2.pth"))  # refused before either file was written
    # A flag refused after --out made its folder, or work that failed before writing, leaves no empty folder behind;
    # a folder that was there, or one that holds what the run wrote (a checkpoint), is kept.
    os.makedirs(path("there/before"), exist_ok=True)
    for args in (["pretrain", "--out", path("fresh/a/c.fcn"), "--backbone", "nonsense"],
                 ["init", "--out", path("fresh/m.fcn"), "--arch", "unet", "--classes", "x"],
                 ["export", path("no_such.fcn"), "--onnx", path("fresh/b/u.onnx"), "--pth", path("there/before/new/u.pth")]):
        assert run(*args, ok=False).returncode != 0
        assert not os.path.exists(path("fresh")) and listed(path("there")) == ["before"], args


@check("an output that would replace an input is refused before any work, naming both; predict's --out among the images too")
def _():
    # fcn export m.fcn --pth m.fcn wrote a state_dict over the model; fcn predict m.fcn photos/ --out photos wrote
    # each mask over its PNG photo; forward and heatmap --out over their image: all without a word.
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--classes", 2, "--out", path("own.fcn"))
    os.makedirs(path("own_photos"), exist_ok=True)
    write_gray_png(path("own_photos/a.png"), np.full((16, 16), 7, np.uint8))
    write_gray_png(path("own_photos/b-overlay.png"), np.full((16, 16), 9, np.uint8))
    before = {name: open(path("own_photos/" + name), "rb").read() for name in listed(path("own_photos"))}
    model = open(path("own.fcn"), "rb").read()
    for args, flag, named in ((["export", path("own.fcn"), "--onnx", path("own.onnx"), "--pth", path("./own.fcn")], "--pth", path("./own.fcn")),
                              (["forward", path("own.fcn"), path("own_photos/a.png"), "--out", path("own_photos/a.png")], "--out", path("own_photos/a.png")),
                              (["heatmap", path("own.fcn"), path("own_photos/a.png"), "--class", 1, "--out", path("own.fcn")], "--out", path("own.fcn")),
                              (["import", "torchvision-resnet18", path("own.fcn"), "--out", path("own.fcn")], "--out", path("own.fcn")),
                              (["convolutionalize", path("own.fcn"), "--out", path("own.fcn")], "--out", path("own.fcn")),
                              (["eval", path("own.fcn"), "--data", path("own_photos"), "--markdown", path("own.fcn")], "--markdown", path("own.fcn"))):
        one_line(run(*args, ok=False), named + ": " + flag + " names ", ", the file this command reads, and would replace it")
    assert not os.path.exists(path("own.onnx"))  # refused before either file was written
    # fcn report RUN --out RUN/best.fcn wrote its HTML over the run's best model; --out on a folder failed at the
    # rename, after the split was scored.
    run("data", "fashion-scenes", "--out", path("own_scenes"), "--train", 2, "--val", 1, "--size", 32)
    run("train", "--data", path("own_scenes"), "--arch", "unet", "--depth", 1, "--base-channels", 2, "--epochs", 1, "--out", path("own_run.fcn"))
    best = open(path("own_run.run/best.fcn"), "rb").read()
    one_line(run("report", path("own_run.run"), "--out", path("own_run.run/best.fcn"), ok=False),
             "--out names " + path("own_run.run/best.fcn") + ", the file this command reads")
    assert open(path("own_run.run/best.fcn"), "rb").read() == best
    # Staged training's slip: --from fcn32s.fcn --out fcn32s.fcn wrote the finer net over the coarser one at the end.
    trained = open(path("own_run.fcn"), "rb").read()
    for flag in ("--weights", "--from"):
        p = run("train", "--data", path("own_scenes"), "--arch", "unet", flag, path("own_run.fcn"), "--epochs", 1,
                "--out", path("./own_run.fcn"), "--run-dir", path("own_again.run"), ok=False)
        one_line(p, path("./own_run.fcn") + ": --out names " + path("own_run.fcn") + ", the file this command reads")
    assert open(path("own_run.fcn"), "rb").read() == trained and not os.path.exists(path("own_again.run"))
    for args, flag in ((["report", path("own_run.run"), "--out", path("own_run.run")], "--out"),
                       (["export", path("own.fcn"), "--onnx", path("own_photos")], "--onnx"),
                       (["init", "--arch", "unet", "--out", path("own_photos")], "--out")):
        one_line(run(*args, ok=False), ": is a folder, and " + flag + " names a file to write")
    for inputs in ([path("own_photos")], [path("own_photos/a.png")], [path("own_photos/../own_photos/b-overlay.png"), path("own_photos/b.jpg")]):
        if len(inputs) == 2:
            write_gray_png(inputs[1], np.zeros((16, 16), np.uint8))  # b.jpg's mask b.png, with --overlay b-overlay.png
        p = run("predict", path("own.fcn"), *inputs, "--out", path("own_photos/"), "--overlay", ok=False)
        one_line(p, "is in --out ", "under a name this run writes there, so it would be overwritten by an output: give --out a folder of its own")
    assert {name: open(path("own_photos/" + name), "rb").read() for name in before} == before and open(path("own.fcn"), "rb").read() == model
    # Images whose outputs take other names may share the folder, as before: a JPEG's mask beside it.
    os.makedirs(path("own_jpegs"), exist_ok=True)
    open(path("own_jpegs/c.jpg"), "wb").write(encode_jpeg(torch.full((3, 16, 16), 90, dtype=torch.uint8)).numpy().tobytes())
    run("predict", path("own.fcn"), path("own_jpegs"), "--out", path("own_jpegs"), "--overlay")
    assert sorted(listed(path("own_jpegs"))) == ["c-overlay.png", "c.jpg", "c.png"]


@check("--skip-existing keeps an earlier run's masks only where the same model and flags made them")
def _():
    # Before, a retrained model (or --tta flip) with --skip-existing kept the old masks beside new ones, without a word.
    for name, seed in (("skip_a.fcn", 1), ("skip_b.fcn", 2)):
        run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--classes", 2, "--seed", seed, "--out", path(name))
    os.makedirs(path("skip_images"), exist_ok=True)
    for i in range(3):
        write_gray_png(path(f"skip_images/{i}.png"), np.full((16, 16), 60 * i, np.uint8))
    images = [path(f"skip_images/{i}.png") for i in range(3)]
    run("predict", path("skip_a.fcn"), *images[:2], "--out", path("skip_masks"), "--dtype", "fp32")
    p = run("predict", path("skip_a.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", "--json")  # the same: goes on
    assert json.loads(p.stdout)["kept"] == 2, p.stdout
    # A number written another way is the same flag (it was "--scales: 1 before, 1.0 now").
    p = run("predict", path("skip_a.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", "--scales", "1.0", "--json")
    assert json.loads(p.stdout)["kept"] == 3, p.stdout
    # Scales in another order are the same average (it was "--scales: 1,0.5 before, 0.5,1 now").
    run("predict", path("skip_a.fcn"), *images[:1], "--out", path("skip_scales"), "--scales", "1,0.5")
    p = run("predict", path("skip_a.fcn"), *images, "--out", path("skip_scales"), "--skip-existing", "--scales", "0.5,1", "--json")
    assert json.loads(p.stdout)["kept"] == 1, p.stdout
    one_line(run("predict", path("skip_b.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", ok=False),
             "skip_masks: holds the outputs of another model (", "skip_a.fcn, ", "and this run's is " + path("skip_b.fcn"),
             "--skip-existing would keep them beside masks of another kind")
    one_line(run("predict", path("skip_a.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", "--tta", "flip", ok=False),
             "skip_masks: holds outputs made with other flags (--tta: none before, flip now)")
    run("predict", path("skip_a.fcn"), *images[:1], "--out", path("skip_tta"), "--tta", "rot90,flip")
    run("predict", path("skip_a.fcn"), *images, "--out", path("skip_tta"), "--tta", "flip", "--tta", "rot90", "--skip-existing")
    run("predict", path("skip_b.fcn"), *images, "--out", path("skip_masks"))  # without --skip-existing: all remade, recorded
    p = run("predict", path("skip_b.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", "--json")
    assert json.loads(p.stdout)["kept"] == 3, p.stdout
    open(path("skip_masks/.fcn-predict.json"), "w").write('{"model": 3}')
    one_line(run("predict", path("skip_a.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", ok=False),
             ".fcn-predict.json: is not a record fcn predict wrote (", "): remove it, or write into a new --out")
    os.remove(path("skip_masks/.fcn-predict.json"))  # a folder an earlier fcn wrote, without the record: goes on as before
    assert json.loads(run("predict", path("skip_a.fcn"), *images, "--out", path("skip_masks"), "--skip-existing", "--json").stdout)["kept"] == 3


@check("a dataset naming the model's classes in another order is refused by eval and by train --resume, naming the first")
def _():
    # Before, eval scored each class against another's truth, and a resumed run trained on the new order under the
    # old names, without a word.
    run("data", "fashion-scenes", "--out", path("order_a"), "--train", 2, "--val", 1, "--size", 32)
    shutil.copytree(path("order_a"), path("order_b"))
    classes = json.load(open(path("order_b/classes.json")))
    classes["names"][1], classes["names"][2] = classes["names"][2], classes["names"][1]
    json.dump(classes, open(path("order_b/classes.json"), "w"))
    run("train", "--data", path("order_a"), "--arch", "unet", "--depth", 1, "--base-channels", 2, "--epochs", 1, "--out", path("order.fcn"))
    run("eval", path("order.fcn"), "--data", path("order_a"))
    refused = (path("order_b") + ": names the model's classes in another order (its class 1 is 'Trouser', the model's is 'T-shirt/top'): "
               "fcn pairs classes by index")
    one_line(run("eval", path("order.fcn"), "--data", path("order_b"), ok=False), refused)
    p = run("train", "--data", path("order_b"), "--resume", path("order.run"), "--epochs", 2, "--out", path("order.fcn"), ok=False)
    one_line(p, refused)
    # Masks fcn predict wrote carry their model's classes (its record): eval --predictions checks them alike.
    val = [path("order_a/JPEGImages/" + i.strip() + ".png") for i in open(path("order_a/ImageSets/Segmentation/val.txt"))]
    run("predict", path("order.fcn"), *val, "--out", path("order_masks"))
    run("eval", "--predictions", path("order_masks"), "--data", path("order_a"))
    one_line(run("eval", "--predictions", path("order_masks"), "--data", path("order_b"), ok=False),
             path("order_masks") + ": holds the masks of " + path("order.fcn") + ", and " + refused)


def on_a_small_disk(kib, script):
    """A shell script run where $SMALL is a file system of KIB KiB of its own (a tmpfs, in a mount namespace that ends
    with the script), $FCN the binary; None where this machine cannot make one (no user or mount namespaces)."""
    small = path("small_disk")
    os.makedirs(small, exist_ok=True)
    mount = f'mount -t tmpfs -o size={kib}k tmpfs "$SMALL" 2>/dev/null || exit 77\n'
    for unshare in (["unshare", "-rm"], ["unshare", "-m"]):
        try:
            p = subprocess.run([*unshare, "sh", "-c", mount + script], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "SMALL": small, "FCN": FCN, "TMP": path("")})
        except FileNotFoundError:
            return None
        if p.returncode != 77 and not p.stderr.startswith("unshare:"):
            return p
    return None


@check("a full disk: predict stops at the first write that fails, saying how to go on; train keeps its last checkpoint")
def _():
    run("data", "fashion-scenes", "--out", path("full_scenes"), "--train", 12, "--val", 2, "--size", 32)
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 2, "--classes", 11, "--out", path("full_unet.fcn"))
    # Each image's probabilities are 45 KB: the disk is full at the third. Every later write would fail too, and
    # wrote one "(skipped)" line per image; now the run stops there, and no temporary file is left.
    p = on_a_small_disk(128, '"$FCN" predict "$TMP/full_unet.fcn" "$TMP/full_scenes/JPEGImages" --out "$SMALL/masks" --probs npy '
                             '--quiet >/dev/null; echo "rc $?"; ls -a "$SMALL/masks"')
    if p is None:
        print("  (no mount namespace here: the full-disk check was not run)")
        return
    lines = p.stderr.strip().splitlines()
    stopped = "-probs.npy: cannot write: No space left on device; stopped: free some space, then the same command with --skip-existing"
    assert len(lines) == 1 and stopped in lines[0], p.stderr
    assert p.stdout.splitlines()[0] == "rc 1" and not any(".tmp." in name for name in p.stdout.splitlines()), p.stdout
    # Training: the disk fills between epochs; the checkpoint before stays whole, and --resume goes on from it.
    train = '"$FCN" train --data "$TMP/full_scenes" --arch unet --depth 1 --base-channels 2 --out "$SMALL/t.fcn"'
    p = on_a_small_disk(256, train + ' --epochs 1 >/dev/null 2>&1 || exit 3\n'
                             'free=$(df -B1 --output=avail "$SMALL" | tail -1)\n'
                             'dd if=/dev/zero of="$SMALL/filler" bs=1024 count=$(( (free - 16384) / 1024 )) 2>/dev/null\n' +
                             train + ' --epochs 3 --resume "$SMALL/t.run" >/dev/null; echo "rc $?"\n'
                             'rm "$SMALL/filler"\n' + train + ' --epochs 3 --resume "$SMALL/t.run" --json')
    lines = [line for line in p.stderr.splitlines() if not line.startswith("epoch ")]  # its progress lines, then the error
    assert p.returncode == 0 and len(lines) == 1 and p.stdout.startswith("rc 1"), (p.returncode, p.stdout, p.stderr)
    kept = "t.run/checkpoint.pt, the run's last checkpoint, is as it was: free some space, then --resume"
    assert "No space left on device" in lines[0] and kept in lines[0], lines[0]
    assert json.loads(p.stdout[p.stdout.index("{"):])["epochs_done"] == 3, p.stdout
    # A disk without room for the run's checkpoint is named before the first step (pretraining gave the bare error
    # after its first epoch, training after its first epoch too), with the room needed and free.
    p = on_a_small_disk(16, '"$FCN" pretrain --backbone vgg16-w0.0625 --fc-channels 16 --train-images 64 --batch 32 '
                            '--out "$SMALL/c.fcn"; echo "rc $?"\n' + train.replace("t.fcn", "f.fcn").replace("--base-channels 2", "--base-channels 16")
                            + '; echo "rc $?"')
    assert p.stdout.split() == ["rc", "1", "rc", "1"], (p.stdout, p.stderr)
    lines = p.stderr.splitlines()  # no progress line: no step was taken
    assert len(lines) == 2 and re.search(r"c\.run: needs about \d+ KiB free for the run's checkpoint, and its file system has \d+ KiB; "
                                         r"no checkpoint of this run was written yet$", lines[0]), p.stderr
    assert re.search(r"f\.run: needs about \d+ KiB free for the run's checkpoint and model files, and its file system has", lines[1]), p.stderr


@check("a read-only folder is named before any work; a file system gone read-only midway stops predict at once")
def _():
    run("init", "--arch", "unet", "--depth", 3, "--base-channels", 16, "--classes", 2, "--out", path("ro_unet.fcn"))
    os.makedirs(path("ro_images"), exist_ok=True)
    for i in range(200):  # ~20 ms each: seconds of work for the file system to go read-only in
        write_gray_png(path(f"ro_images/{i:03d}.png"), np.random.default_rng(i).integers(0, 255, (256, 256)))
    # Before, predict segmented every image and wrote one "cannot write" line per image; pretrain ran to the end
    # before its first write failed.
    predict = '"$FCN" predict "$TMP/ro_unet.fcn" "$TMP/ro_images" --out "$SMALL" --quiet'
    p = on_a_small_disk(4096, 'mount -o remount,ro "$SMALL" || exit 77\n' + predict + '; echo "rc $?"\n'
                              '"$FCN" pretrain --backbone vgg16-w0.0625 --out "$SMALL/new/c.fcn"; echo "rc $?"\n'
                              'mount -o remount,rw "$SMALL"\n' + predict + ' >/dev/null & pid=$!\n'
                              'while [ -z "$(ls "$SMALL")" ]; do sleep 0.01; done\n'  # a disk error remounts it read-only
                              'until mount -o remount,ro "$SMALL" 2>/dev/null; do sleep 0.01; done\n'
                              'wait $pid; echo "rc $?"; ls "$SMALL" | wc -l')
    if p is None:
        print("  (no mount namespace here: the check was not run)")
        return
    small = path("small_disk")
    assert p.stdout.split()[:6] == ["rc", "1", "rc", "1", "rc", "1"] and int(p.stdout.split()[6]) < 200, (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert lines[:2] == [f"fcn: error: {small}: cannot write the masks there: Read-only file system",
                         f"fcn: error: {small}/new: cannot create the folder for {small}/new/c.fcn: Read-only file system"], p.stderr
    assert len(lines) == 3 and lines[2].endswith(": cannot write: Read-only file system; stopped: every later write there would fail "
                                                 "too (after a disk error, see dmesg); once it takes writes again, the same command "
                                                 "with --skip-existing goes on where this one stopped"), p.stderr


@check("models and checkpoints reach the disk (fsync) before they replace the old file, and their folder after; masks do not wait")
def _():
    # A rename alone is atomic while the machine runs; after a power cut a file renamed before its data reached the
    # disk can be empty, on file systems without ext4's rename heuristics: the run's one checkpoint, lost.
    if subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True).returncode != 0:
        print("  (strace cannot trace here: the check was not run)")
        return
    run("data", "fashion-scenes", "--out", path("sync_scenes"), "--train", 2, "--val", 1, "--size", 32)
    log = path("sync_strace.log")
    calls = ["strace", "-f", "-y", "-o", log, "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", FCN]
    subprocess.run(calls + ["train", "--data", path("sync_scenes"), "--arch", "unet", "--depth", "1", "--base-channels", "2",
                            "--epochs", "1", "--out", path("sync.fcn")], check=True, capture_output=True, timeout=300)
    trace = open(log).read()
    for name in ("sync.run/checkpoint.pt", "sync.run/best.fcn", "sync.fcn"):
        synced = re.search(re.escape(name) + r"\.tmp\.\d+>\) += 0", trace)
        renamed = re.search(r"rename\w*\(.*" + re.escape(name) + r"\.tmp\.\d+\", .*" + re.escape(name) + r"\"", trace)
        assert synced and renamed and synced.start() < renamed.start(), (name, trace)
        folder = re.search(r"fsync\(\d+<" + re.escape(os.path.dirname(path(name))) + r">\) += 0", trace[renamed.end():])
        assert folder, (name, trace[renamed.end():])
    assert not re.search(r"fsync\(\d+<[^>]*metrics\.jsonl", trace), trace  # the log is rewritten each epoch: atomic only
    subprocess.run(calls + ["predict", path("sync.fcn"), path("sync_scenes/JPEGImages"), "--out", path("sync_masks"), "--quiet"],
                   check=True, capture_output=True, timeout=300)
    assert "fsync" not in open(log).read() and len(listed(path("sync_masks"))) == 3, open(log).read()


summary()
