"""End-to-end tests of the `fcn` command line, with PyTorch (oracle/nets.py) as the oracle.

Usage: /usr/bin/python3 cli_test.py PATH/TO/fcn
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import re
import shlex
import signal
import shutil
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import nets  # noqa: E402

from harness import FCN, check, listed, one_line_error, path, randomize_model_file, run, summary, write_gray_png  # noqa: E402


def write_ppm(file, image):
    h, w, _ = image.shape
    with open(file, "wb") as f:
        f.write(f"P6\n{w} {h}\n255\n".encode() + image.astype(np.uint8).tobytes())


@check("help lists the verbs with examples")
def _():
    out = run("--help").stdout
    for verb in ("init", "info", "import", "convolutionalize", "forward"):
        assert verb in out, verb
    assert "example" in run("forward", "--help").stdout


@check("init + forward on an image equals the PyTorch definition (FCN-8s reference)")
def _():
    run("init", "--arch", "fcn8s", "--backbone", "vgg16-w0.125", "--fc-channels", "16", "--classes", "4",
        "--geometry", "reference", "--out", path("fcn8s.fcn"))
    d, sd = randomize_model_file(path("fcn8s.fcn"), path("fcn8s_random.fcn"), 1)
    config, meta = json.loads(d["config"]), json.loads(d["meta"])
    assert config["stride"] == 8 and config["geometry"] == "reference"
    image = np.random.default_rng(0).integers(0, 256, (37, 29, 3))
    write_ppm(path("image.ppm"), image)
    run("forward", path("fcn8s_random.fcn"), path("image.ppm"), "--out", path("logits.npy"))
    net = nets.CaffeFCN(8, 4, width=0.125, fc_channels=16)
    net.load_state_dict(sd)
    net.eval()
    mean, std = np.array(meta["normalization"]["mean"]), np.array(meta["normalization"]["std"])
    x = torch.tensor(((image / 255.0 - mean) / std).transpose(2, 0, 1)[None], dtype=torch.float32)
    with torch.no_grad():
        expected = net(x).numpy()
    got = np.load(path("logits.npy"))
    assert got.shape == (1, 4, 37, 29), got.shape
    err = np.abs(got - expected).max() / np.abs(expected).max()
    assert err <= 1e-4, err


@check("forward on an N x C x H x W .npy feeds it as is, on a .npy image as on its PNG; info --json counts parameters and FLOPs")
def _():
    run("init", "--arch", "unet", "--padding", "valid", "--depth", "2", "--base-channels", "4", "--in-channels", "1",
        "--classes", "3", "--out", path("unet.fcn"))
    d, sd = randomize_model_file(path("unet.fcn"), path("unet_random.fcn"), 2)
    x = np.random.default_rng(1).standard_normal((2, 1, 44, 60)).astype(np.float32)
    np.save(path("x.npy"), x)
    run("forward", path("unet_random.fcn"), path("x.npy"), "--out", path("y.npy"))
    net = nets.UNet(2, 4, 1, 3, "valid", "transposed", False)
    net.load_state_dict(sd)
    net.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = np.load(path("y.npy"))
    assert got.shape == expected.shape == (2, 3, 4, 20), got.shape
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    # An image as a .npy array (H x W uint8) is preprocessed as the same image as a PNG is.
    pixels = np.random.default_rng(2).integers(0, 256, (44, 60)).astype(np.uint8)
    np.save(path("gray.npy"), pixels), Image.fromarray(pixels).save(path("gray.png"))
    run("forward", path("unet_random.fcn"), path("gray.npy"), "--out", path("y_npy.npy"))
    run("forward", path("unet_random.fcn"), path("gray.png"), "--out", path("y_png.npy"))
    assert (np.load(path("y_npy.npy")) == np.load(path("y_png.npy"))).all() and np.load(path("y_npy.npy")).shape == (1, 3, 4, 20)
    info = json.loads(run("info", path("unet_random.fcn"), "--size", "44x60", "--json").stdout)
    assert info["parameters"] == sum(v.numel() for k, v in sd.items() if "running" not in k and "num_batches" not in k)
    # FLOPs by hand: 2 * MACs of every conv at its output size.
    assert info["gflops"] > 0 and info["size"] == [44, 60]


@check("import a torchvision-layout VGG16, convolutionalize it, get a heatmap")
def _():
    from make_goldens import small_torchvision_vgg16  # noqa: E402
    model = small_torchvision_vgg16(3)
    torch.save(model.state_dict(), path("vgg.pth"))
    run("import", "torchvision-vgg16", path("vgg.pth"), "--out", path("vgg.fcn"))
    # torch.save's legacy format (before PyTorch 1.6: torchvision's 2017 VGG files) gives the same model file.
    torch.save(model.state_dict(), path("vgg-legacy.pth"), _use_new_zipfile_serialization=False)
    run("import", "torchvision-vgg16", path("vgg-legacy.pth"), "--out", path("vgg-legacy.fcn"))
    assert open(path("vgg-legacy.fcn"), "rb").read() == open(path("vgg.fcn"), "rb").read()
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.save(path("x64.npy"), x)
    run("forward", path("vgg.fcn"), path("x64.npy"), "--out", path("logits64.npy"))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(path("logits64.npy")) - expected).max() <= 1e-4 * np.abs(expected).max()
    run("convolutionalize", path("vgg.fcn"), "--out", path("vgg-conv.fcn"))
    run("forward", path("vgg-conv.fcn"), path("x64.npy"), "--out", path("heat64.npy"))
    heat = np.load(path("heat64.npy"))
    assert heat.shape == (1, 10, 1, 1) and np.abs(heat.reshape(1, 10) - expected).max() <= 1e-4 * np.abs(expected).max()
    np.save(path("x_big.npy"), np.zeros((1, 3, 96, 160), np.float32))
    run("forward", path("vgg-conv.fcn"), path("x_big.npy"), "--out", path("heat_big.npy"))
    assert np.load(path("heat_big.npy")).shape == (1, 10, 2, 4)
    # torchvision's VGG with batch norm (vgg11_bn's layout): told by its keys, torchvision's logits after import.
    bn = small_torchvision_vgg16(4, depth=11, batch_norm=True)
    with torch.no_grad():
        for name, b in bn.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    torch.save(bn.state_dict(), path("vgg11_bn.pth"))
    p = run("import", "auto", path("vgg11_bn.pth"), "--out", path("vgg11_bn.fcn"))
    assert "its keys are those of torchvision-vgg11_bn" in p.stdout, p.stdout
    run("forward", path("vgg11_bn.fcn"), path("x64.npy"), "--out", path("logits_bn.npy"))
    with torch.no_grad():
        expected = bn.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(path("logits_bn.npy")) - expected).max() <= 1e-4 * np.abs(expected).max()
    one_line_error(run("import", "torchvision-vgg11", path("vgg11_bn.pth"), "--out", path("wrong.fcn"), ok=False),
                   "vgg11_bn.pth", "its keys are those of torchvision-vgg11_bn")


@check("import torchvision ResNet-18 and AlexNet: fcn's logits are torchvision's; a wrong family is one line")
def _():
    import torchvision
    x = torch.randn(1, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    np.save(path("x_tv.npy"), x.numpy())
    for name, model in (("resnet18", torchvision.models.resnet18(num_classes=7)),
                        ("alexnet", torchvision.models.alexnet(num_classes=7))):
        torch.save(model.state_dict(), path(f"{name}.pth"))
        run("import", f"torchvision-{name}", path(f"{name}.pth"), "--out", path(f"{name}.fcn"))
        if name == "alexnet":
            x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(4))
            np.save(path("x_tv.npy"), x.numpy())
        run("forward", path(f"{name}.fcn"), path("x_tv.npy"), "--out", path(f"{name}_logits.npy"))
        with torch.no_grad():
            expected = model.eval()(x).numpy()
        got = np.load(path(f"{name}_logits.npy"))
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), name
    p = run("import", "torchvision-alexnet", path("vgg.pth"), "--out", path("wrong.fcn"), ok=False)
    assert p.returncode == 1
    one_line_error(p, "vgg.pth", "missing key 'classifier.1.weight' (torchvision alexnet); its keys are those of torchvision-vgg16")
    one_line_error(run("import", path("vgg.pth"), "torchvision-vgg16", "--out", path("wrong.fcn"), ok=False),
                   "(the format comes first: fcn import torchvision-vgg16 " + path("vgg.pth"))
    # auto: the model the keys show, the same file as named; fcn info of a weights file says which and lists the tensors.
    p = run("import", "auto", path("resnet18.pth"), "--out", path("resnet18-auto.fcn"))
    assert "its keys are those of torchvision-resnet18" in p.stdout, p.stdout
    assert open(path("resnet18-auto.fcn"), "rb").read() == open(path("resnet18.fcn"), "rb").read()
    info = json.loads(run("info", path("resnet18.pth"), "--json").stdout)
    assert info["torchvision_format"] == "torchvision-resnet18" and len(info["tensors"]) == len(torchvision.models.resnet18().state_dict())
    assert info["tensors"][0] == {"name": "conv1.weight", "shape": [64, 3, 7, 7], "dtype": "Float"}, info["tensors"][0]
    # torchvision's ResNeXt layout (grouped 3x3 convs, here 8 groups of 8 channels): auto tells it, torchvision's logits.
    resnext = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], groups=8, width_per_group=8,
                                               num_classes=5).eval()
    torch.save(resnext.state_dict(), path("resnext.pth"))
    p = run("import", "auto", path("resnext.pth"), "--out", path("resnext.fcn"))
    assert "its keys are those of torchvision-resnext50_8x8d" in p.stdout, p.stdout
    run("forward", path("resnext.fcn"), path("x_tv.npy"), "--out", path("resnext_logits.npy"))
    with torch.no_grad():
        expected = resnext(torch.from_numpy(np.load(path("x_tv.npy")))).numpy()
    assert np.abs(np.load(path("resnext_logits.npy")) - expected).max() <= 1e-4 * np.abs(expected).max()
    one_line_error(run("import", "torchvision-resnet50", path("resnext.pth"), "--out", path("wrong.fcn"), ok=False),
                   "resnext.pth", "its keys are those of torchvision-resnext50_8x8d")
    # A torchvision model fcn does not import is named, not "none of those fcn imports".
    torch.save(torchvision.models.squeezenet1_0(num_classes=3).state_dict(), path("squeezenet.pth"))
    one_line_error(run("import", "auto", path("squeezenet.pth"), "--out", path("wrong.fcn"), ok=False),
                   "squeezenet.pth: holds torchvision's squeezenet (by its keys), which fcn does not import")
    assert json.loads(run("info", path("squeezenet.pth"), "--json").stdout)["torchvision_unimported"] == "squeezenet"
    one_line_error(run("import", "torchvision-resnet50", path("resnet18.pth"), "--out", path("wrong.fcn"), ok=False),
                   "resnet18.pth", "key 'layer1.0.conv1.weight' has shape", "(torchvision resnet50)")
    assert not os.path.exists(path("wrong.fcn"))
    # torchvision's segmentation FCN: fcn predict's labels are torchvision's argmax.
    # 21 classes, as torchvision's pretrained FCNs: named as PASCAL VOC's unless --class-names says otherwise.
    seg = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    torch.save(seg.state_dict(), path("fcn_resnet50.pth"))
    p = run("import", "torchvision-fcn-resnet50", path("fcn_resnet50.pth"), "--out", path("tvfcn.fcn"))
    assert "PASCAL VOC's 21" in p.stdout, p.stdout
    classes = json.loads(run("info", path("tvfcn.fcn"), "--json").stdout)["classes"]
    assert classes[0] == "background" and classes[15] == "person" and classes[20] == "tvmonitor", classes
    names = [f"part {i}" for i in range(21)]
    with open(path("tv_classes.json"), "w") as f:
        json.dump({"names": names, "colors": [[i, 2 * i, 3 * i] for i in range(21)]}, f)
    run("import", "auto", path("fcn_resnet50.pth"), "--out", path("tvfcn-named.fcn"), "--class-names", path("tv_classes.json"))
    assert json.loads(torch.load(path("tvfcn-named.fcn"))["meta"])["palette"][20] == [20, 40, 60]
    assert json.loads(run("info", path("tvfcn-named.fcn"), "--json").stdout)["classes"] == names
    one_line_error(run("import", "auto", path("fcn_resnet50.pth"), "--out", path("wrong.fcn"), "--class-names", "sky, road", ok=False),
                   "--class-names: gives 2 names, and the net has 21 classes")
    one_line_error(run("import", "auto", path("resnet18.pth"), "--out", path("wrong.fcn"), "--class-names", "a,,b", ok=False),
                   "--class-names: has an empty name")
    p = run("import", "auto", path("resnext.pth"), "--out", path("resnext-named.fcn"), "--class-names", " a, b ,c,d,e")
    assert "PASCAL VOC" not in p.stdout
    assert json.loads(run("info", path("resnext-named.fcn"), "--json").stdout)["classes"] == ["a", "b", "c", "d", "e"]
    image = np.random.default_rng(5).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    write_ppm(path("tv.ppm"), image)
    run("predict", path("tvfcn.fcn"), path("tv.ppm"), "--out", path("tv_masks"), "--probs", "npy")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = torch.tensor(((image / 255.0 - mean) / std).transpose(2, 0, 1)[None], dtype=torch.float32)
    with torch.no_grad():
        expected = torch.softmax(seg.eval()(x)["out"], 1)[0].numpy()
    got = np.load(path("tv_masks/tv-probs.npy"))
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4, np.abs(got - expected).max()
    # The imported ResNet is the transfer source of an FCN-8s on it, fresh from the same recipe flags.
    run("convolutionalize", path("resnet18.fcn"), "--out", path("resnet18-conv.fcn"))
    run("init", "--arch", "fcn8s", "--backbone", "resnet18-w0.125", "--classes", 3, "--out", path("r8.fcn"))
    config = json.loads(torch.load(path("r8.fcn"))["config"])
    assert config["fc_channels"] == 0 and config["backbone"]["name"] == "resnet18-w0.125", config


@check("bad input: one-line errors naming the file or flag, non-zero exit")
def _():
    data = open(path("fcn8s.fcn"), "rb").read()
    open(path("cut.fcn"), "wb").write(data[: len(data) // 2])
    one_line_error(run("info", path("cut.fcn"), ok=False), path("cut.fcn"), "truncated")
    one_line_error(run("info", path("absent.fcn"), ok=False), "absent.fcn")
    one_line_error(run("init", "--arch", "fcn9s", "--out", path("x.fcn"), ok=False), "--arch", "fcn9s")
    one_line_error(run("init", "--arch", "fcn8s", "--backbone", "lenet5", "--out", path("x.fcn"), ok=False), "--backbone", "lenet5")
    one_line_error(run("info", path("fcn8s.fcn"), "--size", "abc", ok=False), "--size")
    np.save(path("wrong.npy"), np.zeros((1, 2, 8, 8), np.float32))
    one_line_error(run("forward", path("fcn8s.fcn"), path("wrong.npy"), "--out", path("o.npy"), ok=False),
                   "wrong.npy", "N x 3 x H x W")
    open(path("empty.png"), "wb").close()
    one_line_error(run("forward", path("fcn8s.fcn"), path("empty.png"), "--out", path("o.npy"), ok=False),
                   "empty.png")
    # Thread counts: below 1 and absurd ones (100,000 threads never got going) are one line; more than the CPUs
    # this process may use runs, with a one-line warning.
    write_gray_png(path("small.png"), np.zeros((8, 8)))
    for threads, needle in (("0", ">= 1"), ("100000", "more than 1024")):
        one_line_error(run("predict", path("fcn8s.fcn"), path("small.png"), "--out", path("t"), "--threads", threads,
                           ok=False), "--threads", needle)
    one_line_error(run("predict", path("fcn8s.fcn"), path("small.png"), "--out", path("t"), "--max-pixels", 0, ok=False),
                   "--max-pixels: must be positive, got 0")
    one_line_error(run("predict", path("fcn8s.fcn"), path("small.png"), "--out", path("t"), "--overlap", 10, ok=False),
                   "--overlap: is the overlap of --tile's tiles, and --tile is not given")
    one_line_error(run("export", path("fcn8s.fcn"), "--pth", path("x.pth"), "--dynamic", ok=False),
                   "--dynamic: shapes the ONNX graph, and no --onnx FILE is written")
    # Whole numbers CLI11 alone would wrap (-1 as 2^64 - 1 for --seed) or clamp to 64 bits, silently.
    one_line_error(run("init", "--arch", "fcn8s", "--out", path("x.fcn"), "--seed", -1, ok=False),
                   "--seed: must not be negative, got -1")
    for verb in (["init", "--arch", "fcn8s", "--out", path("x.fcn"), "--seed"],
                 ["predict", path("fcn8s.fcn"), path("small.png"), "--out", path("t"), "--max-pixels"]):
        one_line_error(run(*verb, "9" * 25, ok=False), verb[-1] + ": " + "9" * 25 + " is out of range")
    # Sizes asked for are images too: over the limits they are one line naming the flag, not a huge allocation.
    one_line_error(run("data", "fashion-scenes", "--out", path("huge"), "--size", 100000, ok=False), "--size", "65536 px a side")
    one_line_error(run("data", "fashion-cells", "--out", path("huge"), "--size", 20000, ok=False), "--size",
                   "raise it with --max-pixels")
    one_line_error(run("pretrain", "--out", path("huge.fcn"), "--input-size", 100000, ok=False), "--input-size", "65536")
    # A flag's size is quoted as typed (height x width), not turned round into an image's width x height.
    one_line_error(run("info", path("fcn8s.fcn"), "--size", "70000x10", ok=False), "--size: image is '70000x10' (height x width)")
    one_line_error(run("export", path("fcn8s.fcn"), "--onnx", path("huge.onnx"), "--size", "20000x20000", ok=False),
                   "'20000x20000' (height x width) = 400000000 pixels", "raise it with --max-pixels")
    # An output folder where a file is: the file named, said as fcn says errors (not libstdc++'s "filesystem error: ...").
    open(path("a_file"), "w").close()
    one_line_error(run("predict", path("fcn8s.fcn"), path("small.png"), "--out", path("a_file"), ok=False),
                   path("a_file") + ": is a file, not a folder (--out names the folder the masks go to)")
    p = run("data", "fashion-scenes", "--out", path("a_file"), "--train", 2, "--val", 1, ok=False)
    one_line_error(p, path("a_file/JPEGImages") + ": cannot create directories: Not a directory")
    assert "filesystem error" not in p.stderr, p.stderr
    # A file on an output's way is named as the flag is read, before any work (output_file).
    one_line_error(run("data", "fashion-scenes", "--out", path("a_file/scenes"), "--train", 2, "--val", 1, ok=False),
                   path("a_file") + ": is a file, not a folder (" + path("a_file/scenes") + " would go under it)")
    cpus = len(os.sched_getaffinity(0))
    p = run("predict", path("fcn8s.fcn"), path("small.png"), "--out", path("t"), "--threads", cpus + 1, "--quiet")
    assert f"warning: --threads {cpus + 1} is more than the" in p.stderr, p.stderr
    missing = dict(torch.load(path("vgg.pth")))
    del missing["classifier.3.bias"]
    torch.save(missing, path("missing.pth"))
    one_line_error(run("import", "torchvision-vgg16", path("missing.pth"), "--out", path("x.fcn"), ok=False),
                   "missing.pth", "classifier.3.bias")
    one_line_error(run("convolutionalize", path("fcn8s.fcn"), "--out", path("x.fcn"), ok=False), "not a classifier")
    # A model whose weights hold NaN (a diverged training's) is refused by name, not segmented as class 0.
    broken = torch.load(path("fcn8s.fcn"))
    broken["state_dict"]["score_fr.weight"][1, 0, 0, 0] = float("nan")
    torch.save(broken, path("nan.fcn"))
    one_line_error(run("predict", path("nan.fcn"), path("small.png"), "--out", path("t"), ok=False),
                   "nan.fcn: key 'score_fr.weight' holds 1 NaN and 0 infinite value(s)")
    assert not os.path.exists(path("x.fcn")), "a failed command left an output behind"
    # The command line: a mistyped flag is named first (CLI11 alone said "--arch is required" for `init --bogus`),
    # with the nearest flag the verb has; usage errors exit 2, an input that fails 1, --help 0.
    p = run("init", "--bogus", ok=False)
    one_line_error(p, "fcn init has no flag --bogus (see fcn init --help)")
    assert p.returncode == 2, p.returncode
    p = run("data", "split", path("x"), "--vall", "0.2", ok=False)
    one_line_error(p, "fcn data split has no flag --vall (did you mean --val?)")
    assert p.returncode == 2, p.returncode
    p = run("train", "--data", path("x"), "--arch", "fcn8s", "--epoch=3", ok=False)
    one_line_error(p, "fcn train has no flag --epoch (did you mean --epochs?)")
    one_line_error(run("data", "bogus", ok=False), "fcn data has no verb 'bogus' (fashion-scenes, fashion-cells, check")
    one_line_error(run("init", "--arch", "fcn8s", "--out", path("x.fcn"), "extra", ok=False), "fcn init takes no argument 'extra'")
    for args in (["init", "--out", path("x.fcn")], ["train", "--data", path("x"), "--epochs", 1],
                 ["init", "--arch", "fcn8s", "--classes", 0, "--out", path("x.fcn")]):
        p = run(*args, ok=False)
        one_line_error(p, "(see fcn " + args[0] + " --help)")
        assert p.returncode == 2, (args, p.returncode, p.stderr)
    # A value that is no whole number is said so, ahead of a range check ("Value 1.5 not in range 1 to 65536").
    one_line_error(run("init", "--arch", "fcn8s", "--classes", "1.5", "--out", path("x.fcn"), ok=False),
                   "--classes: '1.5' is not a whole number (see fcn init --help)")
    one_line_error(run("train", "--data", path("x"), "--arch", "fcn8s", "--epochs", "ten", "--out", path("x.fcn"), ok=False),
                   "--epochs: 'ten' is not a whole number")
    assert run("info", path("absent.fcn"), ok=False).returncode == 1
    assert run("train", "--help").returncode == 0


def tiny_voc(name):
    """A 5-class VOC-layout dataset: 4 gray 16x16 images, index masks (values 0..4, 255 void)."""
    root = path(name)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(4)
    for i in range(4):
        write_gray_png(os.path.join(root, "JPEGImages", f"im{i}.png"), rng.integers(0, 256, (16, 16)))
        write_gray_png(os.path.join(root, "SegmentationClass", f"im{i}.png"), rng.integers(0, 5, (16, 16)))
    for split, ids in (("train", "im0 im1 im2"), ("val", "im3")):
        open(os.path.join(root, "ImageSets/Segmentation", split + ".txt"), "w").write(ids.replace(" ", "\n") + "\n")
    json.dump({"names": ["a", "b", "c", "d", "e"]}, open(os.path.join(root, "classes.json"), "w"))
    return root


@check("data: fashion-scenes writes a dataset that checks clean; training and eval run on it")
def _():
    run("data", "fashion-scenes", "--out", path("scenes"), "--train", 6, "--val", 2, "--size", 32)
    assert "0 problems found" in run("data", "check", path("scenes")).stdout
    report = json.loads(run("data", "check", path("scenes"), "--json").stdout)
    assert report["sizes"] == [6, 2] and report["errors"] == [] and len(report["classes"]) == 11
    per_split = report["split_pixels"]
    assert sorted(per_split) == ["train", "val"] and sum(per_split["train"]) == 6 * 32 * 32, per_split
    assert [a + b for a, b in zip(per_split["train"], per_split["val"])] == report["pixels"], report
    p = run("train", "--data", path("scenes"), "--arch", "fcn8s", "--backbone", "vgg16-w0.125", "--fc-channels", 16,
            "--epochs", 1, "--batch", 3, "--out", path("s8.fcn"))
    # What the run read, and kept in memory from the data check on (--cache-mib), in one line and in --json.
    assert re.search(r"^data: 6 train \+ 2 val pairs, checked in [0-9.]+ s; 8 kept decoded in memory", p.stdout, re.M), p.stdout
    p = run("train", "--data", path("scenes"), "--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--fc-channels", 16,
            "--epochs", 1, "--batch", 3, "--cache-mib", 0, "--no-check", "--json", "--patience", 1, "--out", path("s32.fcn"))
    assert json.loads(p.stdout)["epochs_done"] == 1 and json.loads(p.stdout)["stopped_early"] is False, p.stdout
    data = json.loads(p.stdout)["data"]
    assert data["pairs"] == {"train": 6, "val": 2} and data["check_seconds"] is None, data
    assert data["kept_samples"] == 0 and data["kept_mib"] == 0, data
    result = json.loads(run("eval", path("s8.fcn"), "--data", path("scenes"), "--json").stdout)
    for key in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu"):
        assert 0.0 <= result[key] <= 1.0, (key, result[key])
    assert len(result["per_class"]) == 11 and len(result["confusion"]) == 11
    run("eval", path("s8.fcn"), "--data", path("scenes"), "--markdown", path("table.md"))
    assert "| s8.fcn |" in open(path("table.md")).read()
    # The dataset given as a second model: named before the first model is scored, with where it belongs.
    p = run("eval", path("s8.fcn"), path("scenes"), "--data", path("scenes"), ok=False)
    one_line_error(p, path("scenes") + ": is a folder, not a model file: a dataset's, which --data takes")
    assert "pixel acc" not in p.stdout, p.stdout
    d = torch.load(path("s8.fcn"))
    assert json.loads(d["meta"])["class_names"][1] == "T-shirt/top"


@check("images/ + masks/ without splits: trained on every pair with no validation, eval says 'all'; fcn data split")
def _():
    for sub in ("images", "masks"):
        os.makedirs(path(f"flat/{sub}"), exist_ok=True)
    for i, name in enumerate(sorted(listed(path("scenes/JPEGImages")))[:5]):
        shutil.copy(path(f"scenes/JPEGImages/{name}"), path(f"flat/images/f{i}.png"))
        shutil.copy(path(f"scenes/SegmentationClass/{name}"), path(f"flat/masks/f{i}.png"))
    shutil.copy(path("scenes/classes.json"), path("flat/classes.json"))
    train = ["train", "--data", path("flat"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 2,
             "--batch", 5, "--out", path("flat.fcn")]
    result = json.loads(run(*train, "--json").stdout)
    assert result["best_epoch"] == 2 and result["best_val_mean_iu"] is None, result  # was 0 and -1
    assert result["data"]["pairs"] == {"all": 5}, result["data"]
    text = run(*train, "--overwrite").stdout
    assert "no validation" in text and "(epoch 2, the last: no validation ran)" in text and "-1.0" not in text, text
    assert json.loads(torch.load(path("flat.fcn"))["meta"])["training"]["best_val_mean_iu"] is None
    # The command line and the options asked for, in --out and in the run folder's snapshots (fcn report shows them).
    for model in (path("flat.fcn"), path("flat.run/best.fcn"), path("flat.run/last.fcn")):
        training = json.loads(torch.load(model)["meta"])["training"]
        assert training["command"] == "fcn " + " ".join(map(str, train)) + " --overwrite", (model, training)
        assert training["epochs"] == 2 and training["arch"] == "unet", (model, training)
    assert json.loads(run("info", path("flat.fcn"), "--json").stdout)["training"]["command"] == training["command"]
    # The dataset as an absolute path (the command keeps what was typed): fcn report, run from another folder, finds it.
    run(*train[:2], "flat", *train[3:-1], "rel.fcn", cwd=path("."))
    training = json.loads(torch.load(path("rel.fcn"))["meta"])["training"]
    assert training["data"] == os.path.abspath(path("flat")) and " --data flat " in training["command"], training
    page = run("report", path("rel.run"), "--out", path("rel.html"), cwd="/").stdout
    assert os.path.getsize(path("rel.html")) > 0, page
    run("report", path("rel.run"), "--out", path("rel.html"), cwd=path("."))
    html = open(path("rel.html")).read()  # shown relative to the working folder it lies in
    assert "Best model on flat (" in html and "&quot;data&quot;:&quot;flat&quot;" in html and 'alt="flat/images/' in html, html[:2000]
    assert path("flat") not in html, "the page names the data by its absolute path"
    # Quoted for a shell: a path with a space and a quote reads back as it was given.
    odd = [*train[:-1], path("flat 'odd' model.fcn")]
    run(*odd)
    command = json.loads(torch.load(odd[-1])["meta"])["training"]["command"]
    assert shlex.split(command) == ["fcn", *map(str, odd)], command
    scored = json.loads(run("eval", path("flat.fcn"), "--data", path("flat"), "--json").stdout)
    assert scored["split"] == "all" and sum(map(sum, scored["confusion"])) == 5 * 32 * 32, scored["split"]
    assert "data: all 5 pairs of " in run("eval", path("flat.fcn"), "--data", path("flat")).stdout
    assert "split all        5 pairs (no train/val split: fcn data split" in run("data", "check", path("flat")).stdout
    # fcn data split holds some out: train validates on them, eval --split val scores only them.
    assert "3 train + 2 val pairs (seed 4)" in run("data", "split", path("flat"), "--val", 0.4, "--seed", 4).stdout
    held_out = open(path("flat/splits/val.txt")).read().split()
    assert len(held_out) == 2 and not set(held_out) & set(open(path("flat/splits/train.txt")).read().split())
    result = json.loads(run(*train, "--overwrite", "--json").stdout)
    assert result["data"]["pairs"] == {"train": 3, "val": 2} and result["best_val_mean_iu"] is not None, result
    scored = json.loads(run("eval", path("flat.fcn"), "--data", path("flat"), "--split", "val", "--json").stdout)
    assert scored["split"] == "val" and sum(map(sum, scored["confusion"])) == 2 * 32 * 32, scored["split"]
    assert json.loads(run("data", "check", path("flat"), "--json").stdout)["sizes"] == [3, 2]
    one_line_error(run("data", "split", path("flat"), "--val", 0.4, ok=False), "splits", "--overwrite")
    one_line_error(run("data", "split", path("flat"), "--val", 1, "--overwrite", ok=False), "--val", "between 0 and 1")
    one_line_error(run("data", "split", path("scenes"), ok=False), "scenes", "VOC layout")
    # A val list that names a training pair: a warning in data check and in train, which still runs.
    open(path("flat/splits/val.txt"), "a").write(open(path("flat/splits/train.txt")).read().split()[0] + "\n")
    assert "warning: " + path("flat") + ": train and val share 1 of val's 3 images" in run("data", "check", path("flat")).stdout
    p = run(*train, "--overwrite")
    assert p.stderr.count("fcn: warning: ") == 1 and "validation scores images the net trains on" in p.stderr, p.stderr


@check("U-Net paper training: binary net + weight map + elastic through train, eval (Dice, separation), predict, export")
def _():
    run("data", "fashion-cells", "--out", path("cells"), "--train", 4, "--val", 2, "--size", 48)
    assert "0 problems found" in run("data", "check", path("cells")).stdout
    run("train", "--data", path("cells"), "--arch", "unet", "--depth", 2, "--base-channels", 4, "--classes", 1,
        "--dropout", "0.5", "--loss", "ce+dice", "--weight-map", "w0=10,sigma=5", "--elastic", "alpha=10,grid=3",
        "--rotate", 10, "--shift", 2, "--gamma", "1.5", "--epochs", 1, "--batch", 2, "--out", path("bin.fcn"))
    d = torch.load(path("bin.fcn"))
    assert d["state_dict"]["score.weight"].shape[0] == 1  # one logit channel
    assert json.loads(d["config"])["dropout"] == 0.5
    r = json.loads(run("eval", path("bin.fcn"), "--data", path("cells"), "--json").stdout)
    m = np.array(r["confusion"], dtype=np.float64)
    for c in range(2):  # Dice = 2 TP / (2 TP + FP + FN) from the confusion matrix itself
        tp, fp, fn = m[c, c], m[:, c].sum() - m[c, c], m[c, :].sum() - m[c, c]
        if 2 * tp + fp + fn > 0:
            assert abs(r["per_class"][c]["dice"] - 2 * tp / (2 * tp + fp + fn)) < 1e-9, r["per_class"]
    sep = r["separation"]
    assert sep["touching_pairs"] > 0 and 0 <= sep["separated"] <= sep["touching_pairs"], sep
    # The adapted Rand error (ISBI 2012's, as scikit-image computes it) from predict's masks and the instance masks,
    # recomputed here: 8-connected components of the predicted foreground (background one more segment) against
    # the instances, over the instance pixels, pair counts summed over the split.
    val = [os.path.join(path("cells"), "JPEGImages", f"val_0000{k}.png") for k in range(2)]  # one pass of two, as eval's
    run("predict", path("bin.fcn"), *val, "--out", path("bin_masks"), "--quiet")
    joint = true = predicted = 0

    def components(fg, corners=True):  # connected components by flood fill: 8-connected, or 4 (corners=False)
        segments, count = np.zeros(fg.shape, np.int64), 0
        for start in zip(*np.nonzero(fg)):
            if segments[start]:
                continue
            count += 1
            segments[start], stack = count, [start]
            while stack:
                y, x = stack.pop()
                for ny in range(max(y - 1, 0), min(y + 2, fg.shape[0])):
                    for nx in range(max(x - 1, 0), min(x + 2, fg.shape[1])):
                        if fg[ny, nx] and not segments[ny, nx] and (corners or ny == y or nx == x):
                            segments[ny, nx] = count
                            stack.append((ny, nx))
        return segments, count

    found, found4 = [], []  # per image: the instances, the predicted segments (8-connected; 4-connected)
    for name in ("val_00000", "val_00001"):
        fg = np.array(Image.open(path(f"bin_masks/{name}.png"))) > 0
        ids = np.array(Image.open(os.path.join(path("cells"), "SegmentationObject", name + ".png"))).astype(np.int64)
        ids[ids == 255] = 0
        segments, count = components(fg)
        inside = ids > 0
        found.append((ids, segments))
        found4.append((ids, components(fg, corners=False)[0]))
        pairs = lambda values: float(sum(n * (n - 1) for n in np.unique(values, return_counts=True)[1]))  # noqa: E731
        joint += pairs(ids[inside] * (count + 1) + segments[inside])
        true += pairs(ids[inside])
        predicted += pairs(segments[inside])
    precision, recall = joint / predicted, joint / true
    assert abs(r["rand_error"] - (1 - 2 * precision * recall / (precision + recall))) < 1e-9, (r["rand_error"], precision, recall)

    def objects(min_pixels, found=found):  # an instance matched where one segment (of min_pixels or more) overlaps it with IoU above 0.5
        true_objects = predicted_objects = matched = 0
        for ids, segments in found:
            sizes = np.bincount(segments.ravel())
            kept = [j for j in range(1, len(sizes)) if sizes[j] >= min_pixels]
            true_objects += len(np.unique(ids[ids > 0]))
            predicted_objects += len(kept)
            for i in np.unique(ids[ids > 0]):
                for j in kept:
                    overlap = ((ids == i) & (segments == j)).sum()
                    matched += overlap / ((ids == i).sum() + sizes[j] - overlap) > 0.5
        return true_objects, predicted_objects, matched

    o, (true_objects, predicted_objects, matched) = r["objects"], objects(1)
    assert (o["true"], o["predicted"], o["matched"]) == (true_objects, predicted_objects, matched) and true_objects > 0, (o, matched)
    assert abs(o["f1"] - 2 * matched / (true_objects + predicted_objects)) < 1e-12, o
    # eval --min-object: segments under it are not objects (the largest segment's size: the smaller ones go).
    sizes = sorted(int(n) for _, segments in found for n in np.bincount(segments.ravel())[1:] if n > 0)
    o = json.loads(run("eval", path("bin.fcn"), "--data", path("cells"), "--json", "--min-object", sizes[-1]).stdout)["objects"]
    assert (o["true"], o["predicted"], o["matched"], o["min_object"]) == objects(sizes[-1]) + (sizes[-1],), (o, objects(sizes[-1]))
    assert sizes[0] == sizes[-1] or o["predicted"] < predicted_objects, (sizes, o)
    # eval --connectivity 6: segments 4-connected, as fcn predict --connectivity 6 finds an image's objects.
    o = json.loads(run("eval", path("bin.fcn"), "--data", path("cells"), "--json", "--connectivity", 6).stdout)["objects"]
    assert (o["true"], o["predicted"], o["matched"], o["connectivity"]) == objects(1, found4) + (4,), (o, objects(1, found4))
    shutil.copytree(path("cells"), path("cells_plain"))
    shutil.rmtree(path("cells_plain/SegmentationObject"))
    one_line_error(run("eval", path("bin.fcn"), "--data", path("cells_plain"), "--min-object", 5, ok=False),
                   "--min-object: sets the smallest predicted object eval counts against instance masks, and " + path("cells_plain") + " has none")
    one_line_error(run("eval", path("bin.fcn"), "--data", path("cells_plain"), "--connectivity", 6, ok=False),
                   "--connectivity: joins pixels into objects for the object counts against instance masks (and --largest), and " +
                   path("cells_plain") + " has no instance masks")
    # predict: labels 0/1; a threshold near 1 predicts less foreground than one near 0.
    counts = []
    for threshold in ("0.01", "0.99"):
        p = run("predict", path("bin.fcn"), os.path.join(path("cells"), "JPEGImages", "val_00000.png"), "--out",
                path("bin_" + threshold), "--threshold", threshold, "--json", "--quiet")
        counts.append(json.loads(p.stdout)["images"][0]["class_pixels"].get("item", 0))
    assert counts[0] >= counts[1], counts
    run("export", path("bin.fcn"), "--onnx", path("bin.onnx"), "--size", "48")
    assert os.path.getsize(path("bin.onnx")) > 0
    for flags, needle in ((["--elastic", "alpha=x"], "--elastic"), (["--weight-map", "bogus=1"], "--weight-map"),
                          (["--rotate", "400"], "--rotate"), (["--loss", "focal"], "--loss"),
                          (["--workers", "100000"], "--workers"), (["--crop", "100000"], "--crop")):
        one_line_error(run("train", "--data", path("cells"), "--arch", "unet", "--depth", 2, "--base-channels", 4,
                           "--epochs", 1, "--out", path("x.fcn"), *flags, ok=False), needle)
    assert not os.path.exists(path("x.fcn"))


@check("--class-weights median-freq: the train split's median frequencies (Eigen & Fergus), as a numpy oracle gives them")
def _():
    root = tiny_voc("weights_data")  # 5 classes; train: im0-im2, val: im3
    from torchvision.io import read_image
    labels = np.concatenate([read_image(os.path.join(root, "SegmentationClass", f"im{i}.png")).numpy().ravel() for i in range(3)])
    counts = np.bincount(labels[labels != 255], minlength=5).astype(np.float64)
    freq = counts / counts.sum()
    median = np.sort(freq[counts > 0])[(np.count_nonzero(counts) - 1) // 2]  # torch.median: the lower middle value
    np.save(path("median_freq.npy"), np.where(counts > 0, median / np.maximum(freq, 1e-12), 0).astype(np.float32))
    net = ["--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--fc-channels", 8, "--epochs", 1, "--batch", 3, "--lr", 0.1]
    weights = {}
    for name, choice in (("median", "median-freq"), ("npy", path("median_freq.npy")), ("none", "none")):
        run("train", "--data", root, *net, "--class-weights", choice, "--out", path(f"cw_{name}.fcn"))
        weights[name] = torch.load(path(f"cw_{name}.fcn"))["state_dict"]
    same = lambda a, b: all(torch.equal(weights[a][k], weights[b][k]) for k in weights[a])  # noqa: E731
    assert same("median", "npy"), "median-freq trained otherwise than the oracle's weights"
    assert not same("median", "none"), "class weights changed nothing: the check cannot fail"


@check("a class under 1% of the pixels: data check names it and the ways to see it more; train --crop --foreground runs")
def _():
    os.makedirs(path("rare/images")), os.makedirs(path("rare/masks"))
    rng = np.random.default_rng(3)
    for i in range(4):
        mask = np.zeros((32, 32), np.uint8)
        mask[:16] = 1  # half the pixels
        mask[20 + i, 5] = 2  # one pixel of 1024
        Image.fromarray((rng.random((32, 32)) * 255).astype(np.uint8)).save(path(f"rare/images/r{i}.png"))
        Image.fromarray(mask).save(path(f"rare/masks/r{i}.png"))
    json.dump({"names": ["background", "half", "speck"]}, open(path("rare/classes.json"), "w"))
    notes = [line for line in run("data", "check", path("rare")).stdout.splitlines() if line.startswith("note:")]
    assert notes == ["note: speck under 1% of the pixels: random crops rarely hold it; fcn train --foreground 0.33 shows a class, each as likely, in a third of "
                     "the batch items, crops centred on it (nnU-Net's oversampling), --loss ce+dice or --class-weights median-freq weigh it up"], notes
    net = ["train", "--data", path("rare"), "--arch", "unet", "--depth", 1, "--base-channels", 4, "--epochs", 1, "--batch", 2]
    assert json.loads(run(*net, "--crop", 8, "--foreground", 0.5, "--out", path("rare.fcn"), "--json").stdout)["epochs_done"] == 1
    one_line_error(run(*net, "--foreground", 1.5, "--out", path("rare2.fcn"), ok=False), "--foreground: is the share of crops placed on foreground: 0..1")


@check("bad data: one-line errors naming the file (and value) in data check and in train")
def _():
    cases = {}
    root = tiny_voc("bad_size")
    write_gray_png(os.path.join(root, "SegmentationClass", "im1.png"), np.zeros((16, 15)))
    cases[root] = ("SegmentationClass/im1.png", "16x15")
    root = tiny_voc("bad_label")
    mask = np.zeros((16, 16)); mask[3, 4] = 7
    write_gray_png(os.path.join(root, "SegmentationClass", "im2.png"), mask)
    cases[root] = ("SegmentationClass/im2.png", "label 7 at (3,4)")
    root = tiny_voc("bad_missing")
    os.remove(os.path.join(root, "SegmentationClass", "im0.png"))
    cases[root] = ("SegmentationClass/im0.png", "missing mask")
    root = tiny_voc("bad_corrupt")
    image = os.path.join(root, "JPEGImages", "im1.png")
    open(image, "r+b").truncate(50)
    cases[root] = ("JPEGImages/im1.png", "PNG")
    root = tiny_voc("bad_jpeg_mask")  # a mask exported as JPEG (here under its .png name): its edges hold other values
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(os.path.join(root, "SegmentationClass", "im1.png"), format="JPEG")
    cases[root] = ("SegmentationClass/im1.png", "is a JPEG, not a PNG: masks must be lossless")
    root = tiny_voc("bad_empty")
    open(os.path.join(root, "ImageSets/Segmentation/train.txt"), "w").close()
    cases[root] = ("train.txt", "lists no images")
    for root, (file, what) in cases.items():
        p = run("data", "check", root, ok=False)
        assert p.returncode == 1, (root, p.returncode)
        assert file in p.stdout and what in p.stdout, (root, p.stdout)
        p = run("train", "--data", root, "--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--epochs", 1,
                "--out", path("bad.fcn"), ok=False)
        one_line_error(p, file, what)
    # A bad flag is refused before the data is read (the data check can take minutes on a large set).
    p = run("train", "--data", root, "--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--elastic", "alpha=x",
            "--out", path("bad.fcn"), ok=False)
    one_line_error(p, "--elastic")
    one_line_error(run("train", "--data", root, "--arch", "fcn32s", "--patience", -1, "--out", path("bad.fcn"), ok=False),
                   "--patience", "-1")
    for every in (0, -2):  # validated every epoch, without a word, before
        one_line_error(run("train", "--data", root, "--arch", "fcn32s", "--val-every", every, "--out", path("bad.fcn"), ok=False),
                       "--val-every", str(every))
    assert not os.path.exists(path("bad.fcn"))
    # Without classes.json a VOC-layout folder has PASCAL VOC's 21 classes: data check says so, and a --classes
    # that disagrees names where the count came from.
    root = tiny_voc("no_classes_json")
    os.remove(os.path.join(root, "classes.json"))
    assert f"classes: PASCAL VOC's, as {root} has no classes.json" in run("data", "check", root).stdout
    assert json.loads(run("data", "check", root, "--json").stdout)["classes_source"].startswith("PASCAL VOC's")
    p = run("train", "--data", root, "--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--classes", 5, "--epochs", 1,
            "--out", path("bad.fcn"), ok=False)
    one_line_error(p, "--classes", "5 but the data has 21 classes", "has no classes.json to name its own")
    # A sample over a limit is skipped with a line naming the flag that raises it (not the library's Limits field).
    run("train", "--data", root, "--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--fc-channels", 8, "--epochs", 1,
        "--out", path("lim.fcn"))
    p = run("eval", path("lim.fcn"), "--data", root, "--max-pixels", 100, ok=False)
    assert p.returncode == 1 and "(raise it with --max-pixels) (skipped)" in p.stderr and "Limits." not in p.stderr, p.stderr


@check("a gray classifier started on colour images says that the net sees them as gray; on gray images nothing")
def _():
    run("init", "--arch", "classifier", "--backbone", "vgg11-w0.0625", "--in-channels", 1, "--classes", 10, "--out", path("gray_cls.fcn"))
    gray = tiny_voc("gray_voc")
    colour = tiny_voc("colour_voc")
    rng = np.random.default_rng(5)
    for i in range(4):  # the same layout, RGB images
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB").save(os.path.join(colour, "JPEGImages", f"im{i}.png"))
    flags = ["--arch", "fcn32s", "--init", path("gray_cls.fcn"), "--epochs", 1, "--batch", 3]
    p = run("train", "--data", colour, *flags, "--out", path("gray_on_colour.fcn"))
    assert f"fcn: warning: {path('gray_cls.fcn')} takes 1 input channel and {colour}'s images are colour: the net sees them as gray" in p.stderr, p.stderr
    p = run("train", "--data", gray, *flags, "--out", path("gray_on_gray.fcn"))
    assert "warning" not in p.stderr, p.stderr


@check("EXIF orientation: data check and predict warn where photos carry one (PIL reads the tag; pixels stay as stored)")
def _():
    root = path("turned")
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(3)
    for name, orientation in (("a", 1), ("b", 6), ("c", 8)):
        image = Image.fromarray(rng.integers(0, 256, (16, 24)).astype(np.uint8))
        exif = Image.Exif()
        if orientation != 1:
            exif[0x0112] = orientation
        image.save(os.path.join(root, "images", name + ".jpg"), exif=exif, quality=95)
        assert Image.open(os.path.join(root, "images", name + ".jpg")).getexif().get(0x0112, 1) == orientation
        write_gray_png(os.path.join(root, "masks", name + ".png"), np.zeros((16, 24)))
    out = run("data", "check", root).stdout
    assert "2 of 3 images carry an EXIF orientation (b, c; the first shown turned 90 degrees clockwise by viewers)" in out, out
    run("init", "--arch", "unet", "--depth", 1, "--base-channels", 4, "--classes", 2, "--in-channels", 1, "--out", path("turned.fcn"))
    p = run("predict", path("turned.fcn"), os.path.join(root, "images"), "--out", path("turned_out"))
    assert "warning: 2 image(s) carry an EXIF orientation (" in p.stderr and "c.jpg: turned 90 degrees counter-clockwise" not in p.stderr \
        and "b.jpg: shown turned 90 degrees clockwise by viewers, ...): segmented as stored" in p.stderr, p.stderr
    assert np.array(Image.open(path("turned_out/b.png"))).shape == (16, 24)  # as stored, not turned
    assert "EXIF" not in run("predict", path("turned.fcn"), os.path.join(root, "images", "a.jpg"), "--out", path("turned_out")).stderr


@check("Ctrl-C during fcn train leaves a checkpoint that --resume continues, on the path the run started on")
def _():
    import signal
    import time
    run("data", "fashion-scenes", "--out", path("many"), "--train", 200, "--val", 2, "--size", 32)
    args = ["train", "--data", path("many"), "--arch", "fcn32s", "--backbone", "vgg16-w0.125", "--batch", 1,
            "--out", path("ctrl_c.fcn")]
    # Interrupted once training shows progress, not after a fixed time: a fast CPU finished two epochs
    # in the 4 s this test used to wait, and its count of logged epochs was wrong then.
    with open(path("ctrl_c.err"), "w") as log:
        p = subprocess.Popen([FCN, *map(str, args), "--epochs", "100", "--conv", "direct", "--layout", "nchw"],
                             stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.time() + 120
        while "epoch 1/100" not in open(path("ctrl_c.err")).read() and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=120)
    err = open(path("ctrl_c.err")).read()
    assert p.returncode == 130, (p.returncode, err[-500:])
    assert "interrupted" in err and os.path.exists(path("ctrl_c.run/checkpoint.pt")), err[-500:]
    assert not os.path.exists(path("ctrl_c.fcn"))
    metrics = path("ctrl_c.run/metrics.jsonl")
    done = sum(1 for _ in open(metrics)) if os.path.exists(metrics) else 0  # epochs finished before the signal
    run(*args, "--epochs", done + 1, "--resume", path("ctrl_c.run"))  # --conv and --layout at auto: the checkpoint's
    assert os.path.exists(path("ctrl_c.fcn"))
    logged = [json.loads(line) for line in open(metrics)]
    assert [(e["epoch"], e["conv"], e["layout"]) for e in logged] == [(i + 1, "direct", "nchw") for i in range(done + 1)], logged
    # --resume trains the checkpoint's net: a net flag asking for another is one line naming it (it went unheeded:
    # --arch fcn8s continued the FCN-32s run), a starting point beside it too; nothing is trained then.
    for flag, value, words in (("--arch", "fcn8s", "fcn8s, but the run in " + path("ctrl_c.run") + " trains fcn32s"),
                               ("--backbone", "vgg16-w0.25", "vgg16-w0.25, but the run in " + path("ctrl_c.run") + " trains vgg16-w0.125"),
                               ("--frozen-upsampling", None, "the run in " + path("ctrl_c.run") + " trains without it")):
        asked = list(args)
        at = asked.index(flag) if flag in asked else None
        if at is not None:
            asked[at + 1] = value
        else:
            asked.append(flag)
        one_line_error(run(*asked, "--epochs", done + 2, "--resume", path("ctrl_c.run"), ok=False), flag + ": " + words,
                       "--resume continues a run as it started")
    one_line_error(run(*args, "--epochs", done + 2, "--resume", path("ctrl_c.run"), "--from", path("ctrl_c.fcn"), ok=False),
                   "--from excludes --resume")
    assert sum(1 for _ in open(metrics)) == done + 1
    # --resume goes on as the run started: a step flag asking for another value is one line naming the run's; left out,
    # the run's own is taken and said (until 2026-12-07 this command line's defaults replaced them: batch 8 here).
    one_line_error(run("train", "--data", path("many"), "--out", path("ctrl_c.fcn"), "--resume", path("ctrl_c.run"),
                       "--batch", 2, "--epochs", done + 2, ok=False),
                   "--batch: 2, but the run in " + path("ctrl_c.run") + " trains with 1, and --resume continues a run as it started")
    p = run("train", "--data", path("many"), "--out", path("ctrl_c.fcn"), "--resume", path("ctrl_c.run"), "--epochs", done + 2)
    assert path("ctrl_c.run") + ": resumed with the run's own --batch 1 " in p.stdout, p.stdout
    assert sum(1 for _ in open(metrics)) == done + 2
    training = json.loads(run("info", path("ctrl_c.fcn"), "--json").stdout)["training"]
    assert training["arch"] == "fcn32s" and "--batch 1" in training["command"] and training["epochs"] == done + 2, training
    assert "--resume" in training["resumed_by"], training
    # --weights trains the file's net as it is: --arch fcn8s beside an FCN-32s file is one line too (it trained the FCN-32s).
    one_line_error(run("train", "--data", path("many"), "--arch", "fcn8s", "--weights", path("ctrl_c.fcn"), "--out", path("w8.fcn"),
                       "--epochs", 1, ok=False),
                   "--arch: fcn8s, but " + path("ctrl_c.fcn") + " holds fcn32s, and --weights trains that net as it is: give --arch fcn32s")
    assert not os.path.exists(path("w8.run/checkpoint.pt"))


@check("one recipe: a fresh --arch/--backbone/... is the same net in init, train and bench")
def _():
    root = tiny_voc("recipe_data")  # 5 classes, gray
    flags = ["--arch", "fcn8s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--in-channels", 1, "--classes", 5]
    run("init", *flags, "--out", path("recipe_init.fcn"))
    run("train", "--data", root, *flags, "--epochs", 1, "--batch", 3, "--out", path("recipe_train.fcn"))
    bench = json.loads(run("bench", *flags, "--size", 32, "--runs", 1, "--warmup", 0, "--threads", 1, "--json").stdout)
    configs = [json.loads(torch.load(path(f))["config"]) for f in ("recipe_init.fcn", "recipe_train.fcn")] + [bench["config"]]
    assert configs[0] == configs[1] == configs[2], configs
    assert configs[0]["fc_kernel"] == 7 and configs[0]["backbone"]["in_channels"] == 1, configs[0]
    # Without --in-channels/--classes, train takes them from the data, and says so in the config.
    run("train", "--data", root, "--arch", "fcn8s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--epochs", 1,
        "--out", path("recipe_train2.fcn"))
    assert json.loads(torch.load(path("recipe_train2.fcn"))["config"]) == configs[0]
    one_line_error(run("train", "--data", root, *flags[:-1], 7, "--epochs", 1, "--out", path("x.fcn"), ok=False),
                   "--classes", "5 classes")
    # A flag the --arch's net does not read is one line in every verb of the recipe (each built the net without it).
    for verb, asked, flag, readers in ((["init", "--out", path("x.fcn")], ["--arch", "fcn8s", "--depth", 3], "--depth", "U-Net"),
                                       (["train", "--data", root, "--epochs", 1, "--out", path("x.fcn")], ["--arch", "unet", "--backbone", "resnet18"],
                                        "--backbone", "FCNs, torchvision-fcn and the classifier"),
                                       (["bench", "--runs", 1], ["--arch", "fcn32s", "--at-once"], "--at-once", "FCN-16s and FCN-8s"),
                                       (["tune", "--size", 32], ["--arch", "fcn8s", "--aux"], "--aux", "torchvision-fcn")):
        one_line_error(run(*verb[:1], *asked, *verb[1:], ok=False), flag + ": is read by " + readers, "--arch " + asked[1] + " builds a net without it")
    assert not os.path.exists(path("x.fcn"))
    # --threshold on a net of several classes goes unread: said in a line, the masks as without it.
    p = run("predict", path("recipe_init.fcn"), os.path.join(root, "JPEGImages", "im0.png"), "--out", path("thr"), "--threshold", 0.3, "--quiet")
    assert "fcn: warning: --threshold is for binary nets (one logit: --classes 1); " + path("recipe_init.fcn") + " has 5 classes" in p.stderr, p.stderr


@check("info prints the net layer by layer, as LibTorch prints modules")
def _():
    out = run("info", path("recipe_init.fcn")).stdout
    assert "fcn::FCN(stride=8, classes=5, backbone=vgg16-w0.0625, geometry=same" in out, out
    assert "(score_pool4): torch::nn::Conv2d(32, 5, kernel_size=[1, 1]" in out, out


@check("bench names the CPU and its ISA class; bf16 on a CPU without bf16 instructions is one line, not a crawl")
def _():
    flags = ["--arch", "unet", "--depth", 2, "--base-channels", 4, "--size", 32, "--runs", 1, "--warmup", 0, "--threads", 1]
    bench = json.loads(run("bench", *flags, "--json").stdout)
    assert bench["cpu"] and bench["isa"] in ("amx", "avx512_bf16", "avx512", "avx2", "baseline"), bench["isa"]
    # OpenBLAS's own pthreads pool (LibTorch's BLAS from Debian) runs on the calling thread unless the user says otherwise.
    plain = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    blas = []
    for env in (plain, dict(plain, OPENBLAS_NUM_THREADS="2")):
        p = subprocess.run([FCN, "bench", *map(str, flags), "--json"], capture_output=True, text=True, timeout=120, env=env)
        blas.append(json.loads(p.stdout)["openblas_threads"])
    assert blas in ([1, 2], [0, 0]), blas  # 0: another BLAS, nothing to set
    avx2 = dict(os.environ, FCN_CPU_FLAGS="avx avx2 fma")
    for args in (["bench", *flags, "--dtype", "bf16"],
                 ["predict", path("recipe_init.fcn"), path("image.ppm"), "--out", path("bf16_out"), "--dtype", "bf16"]):
        p = subprocess.run([FCN, *map(str, args)], capture_output=True, text=True, timeout=60, env=avx2)
        one_line_error(p, "--dtype", "no bf16 instructions")
    p = subprocess.run([FCN, "bench", *map(str, flags), "--json"], capture_output=True, text=True, timeout=120, env=avx2)
    assert json.loads(p.stdout)["isa"] == "avx2", p.stderr


@check("tune caches its choice; bench and predict use it; another ISA misses the cache; FCN_NO_TUNE=1 pins the rule")
def _():
    flags = ["--arch", "unet", "--depth", 2, "--base-channels", 4, "--size", 32, "--threads", 1]
    rule = json.loads(run("bench", *flags, "--runs", 1, "--warmup", 0, "--json").stdout)["path"]
    assert rule["source"] == "rule", rule
    tuned = json.loads(run("tune", *flags, "--runs", 1, "--json").stdout)
    wino = tuned["winograd_supported"]  # fcn built with oneDNN: its Winograd kernel runs on every CPU
    assert rule["conv"] == ("winograd" if wino else "direct"), rule  # Winograd holds no memory: the rule's
    avx512 = "avx512f" in open("/proc/cpuinfo").read()
    assert rule["layout"] == ("channels_last" if avx512 or wino else "nchw"), rule
    assert tuned["cache"] == os.path.join(os.environ["XDG_CACHE_HOME"], "fcn", "fast-paths.json"), tuned["cache"]
    assert os.path.exists(tuned["cache"])
    entry = tuned["tuned"][0]
    # rule, other layout, other allocator, other upsampling; with Winograd the other conv in either layout
    assert entry["threads"] == 1 and len(entry["timings"]) == 4 + 2 * wino, entry
    assert entry["timings"][0]["path"]["source"] == "rule", entry
    assert wino == any(t["path"]["conv"] != rule["conv"] for t in entry["timings"]), entry
    assert all(t["path"]["allocator"] != "block_cache" for t in entry["timings"]), entry  # memory for speed: --block-cache
    assert len(json.loads(run("tune", *flags, "--runs", 1, "--block-cache", "--json").stdout)["tuned"][0]["timings"]) == 5 + 2 * wino
    # Training runs Winograd wherever fcn has oneDNN (as fcn train does); --conv overrides either mode.
    def bench_conv(*extra):
        return json.loads(run("bench", *flags, "--runs", 1, "--warmup", 0, "--json", *extra).stdout)["path"]
    trains = json.loads(run("bench", *flags, "--mode", "train", "--runs", 1, "--warmup", 0, "--json").stdout)
    assert trains["path"]["conv"] == ("winograd" if wino else "direct"), trains["path"]  # oneDNN's or fcn's trainer
    assert bench_conv("--mode", "train", "--conv", "direct")["conv"] == "direct"
    # Training's layout rule (as fcn train's --layout auto) is inference's: channels-last with AVX-512 or where fcn
    # has its Winograd kernels, NCHW on AVX2 without them.
    assert trains["path"]["layout"] == ("channels_last" if avx512 or wino else "nchw"), trains["path"]
    avx2 = dict(os.environ, FCN_CPU_FLAGS="avx avx2 fma")
    p = subprocess.run([FCN, "bench", *map(str, flags), "--mode", "train", "--runs", "1", "--warmup", "0", "--json"],
                       capture_output=True, text=True, timeout=120, env=avx2)
    assert json.loads(p.stdout)["path"]["layout"] == ("channels_last" if wino else "nchw"), p.stderr
    # A classifier's training step: a class per image (fcn pretrain's shape), not per pixel.
    p = run("bench", "--arch", "classifier", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--in-channels", 1,
            "--classes", 10, "--input-size", 32, "--size", 32, "--batch", 4, "--mode", "train", "--threads", 1,
            "--runs", 1, "--warmup", 0, "--json", "--profile", 3)
    step = json.loads(p.stdout)["runs"][0]
    assert step["ms_per_image"] > 0, p.stdout
    # --profile: one more run's operators (every one in JSON, by self time), the top N in text.
    ops = {op["op"]: op for op in step["profile"]}
    # 13 convolutions: LibTorch's, and fcn's im2col + sgemm for the short products (maps under 256 pixels).
    short = ops.get("fcn::gemm_conv2d_trainable", {"calls": 0})["calls"]
    assert ops["aten::convolution_backward"]["calls"] + short == 13 and ops["aten::convolution"]["calls"] + short == 13, ops
    assert all(0 <= op["self_ms"] <= op["total_ms"] + 1e-9 for op in step["profile"]), step["profile"]
    text = run("bench", "--arch", "classifier", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--in-channels", 1,
               "--classes", 10, "--input-size", 32, "--size", 32, "--batch", 4, "--threads", 1, "--runs", 1, "--warmup", 0,
               "--profile", 3).stdout
    table = text.split("most self time first:\n")[1].splitlines()
    assert table[0].split()[:2] == ["operator", "calls"] and len([l for l in table[1:4] if l.startswith("    ")]) == 3, text
    # --profile-shapes: a row per operator, input shapes and outermost operator (a backward conv inside its autograd node).
    p = run("bench", "--arch", "classifier", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--in-channels", 1,
            "--classes", 10, "--input-size", 32, "--size", 32, "--batch", 4, "--mode", "train", "--threads", 1,
            "--runs", 1, "--warmup", 0, "--json", "--profile", 3, "--profile-shapes")
    profile = json.loads(p.stdout)["runs"][0]["profile"]
    rows = [op for op in profile if op["op"] == "aten::convolution_backward"]
    short = sum(op["calls"] for op in profile if op["op"] == "fcn::gemm_conv2d_trainable")
    assert len(rows) > 1 and sum(op["calls"] for op in rows) + short == 13, rows
    assert all(op["shapes"].startswith("[4,") and op["within"].startswith("autograd::engine::evaluate_function: ")
               for op in rows), rows  # inside the backward pass's nodes
    one_line_error(run("bench", "--profile-shapes", ok=False), "--profile-shapes", "--profile")
    if wino:
        assert bench_conv("--conv", "winograd")["conv"] == "winograd" and bench_conv("--conv", "winograd")["source"] == "flag"
        assert bench_conv("--conv", "direct")["conv"] == "direct"
        # oneDNN's Winograd: a training choice, where this CPU has its kernels (AVX-512).
        p = subprocess.run([FCN, "bench", *map(str, flags), "--conv", "winograd-onednn"], capture_output=True, text=True, timeout=60)
        one_line_error(p, "--conv", "training choice")
        p = subprocess.run([FCN, "bench", *map(str, flags), "--mode", "train", "--runs", "1", "--warmup", "0", "--json", "--conv",
                            "winograd-onednn"], capture_output=True, text=True, timeout=120)
        if avx512:
            assert p.returncode == 0 and json.loads(p.stdout)["path"]["conv"] == "winograd_onednn", p.stderr
        else:
            one_line_error(p, "--conv", "AVX-512")
    else:
        p = subprocess.run([FCN, "bench", *map(str, flags), "--conv", "winograd"], capture_output=True, text=True, timeout=60)
        one_line_error(p, "--conv", "without oneDNN")
    tuned = json.loads(run("tune", *flags, "--runs", 1, "--json").stdout)
    entry = tuned["tuned"][0]
    assert entry["ms"] == min(t["ms"] for t in entry["timings"] if t["path"]["layout"] == entry["path"]["layout"]
                              and t["path"]["allocator"] == entry["path"]["allocator"]
                              and t["path"]["upsampling"] == entry["path"]["upsampling"]
                              and t["path"]["conv"] == entry["path"]["conv"]), entry
    bench = json.loads(run("bench", *flags, "--runs", 1, "--warmup", 0, "--json").stdout)
    chosen = {k: entry["path"][k] for k in ("layout", "allocator", "upsampling", "conv")}
    assert bench["path"] == dict(chosen, source="cache"), (bench["path"], chosen)
    assert bench["runs"][0]["path"]["source"] == "cache"
    assert bench["channels_last"] == (chosen["layout"] == "channels_last")
    assert run("bench", *flags, "--runs", 1, "--warmup", 0, "--nchw", "--json").stdout.count('"source": "flag"') >= 1
    pinned = dict(os.environ, FCN_NO_TUNE="1")
    p = subprocess.run([FCN, "bench", *map(str, flags), "--runs", "1", "--warmup", "0", "--json"], capture_output=True, text=True,
                       timeout=120, env=pinned)
    assert json.loads(p.stdout)["path"] == dict(rule, source="pinned"), p.stdout[-400:]
    avx2 = dict(os.environ, FCN_CPU_FLAGS="avx avx2 fma")  # another ISA class: another key, and the AVX2 rule
    p = subprocess.run([FCN, "bench", *map(str, flags), "--runs", "1", "--warmup", "0", "--json"], capture_output=True, text=True,
                       timeout=120, env=avx2)
    result = json.loads(p.stdout)
    assert result["path"] == {"layout": "channels_last" if wino else "nchw", "allocator": "huge_pages", "upsampling": "subpixel",
                              "conv": "winograd" if wino else "direct", "source": "rule"}, result["path"]
    assert "recycled within the peak" in result["cpu_allocator"], result["cpu_allocator"]
    p = run("predict", path("recipe_init.fcn"), path("image.ppm"), "--out", path("tuned_out"), "--json")
    assert json.loads(p.stdout)["path"]["source"] in ("rule", "cache"), p.stdout
    one_line_error(run("tune", *flags, "--runs", 0, ok=False), "--runs")
    one_line_error(run("tune", "--size", "0x5", ok=False), "--size")
    with open(tuned["cache"], "w") as f:
        f.write("{ not json")
    p = run("bench", *flags, "--runs", 1, "--warmup", 0, "--json")
    assert json.loads(p.stdout)["path"]["source"] == "rule" and "ignoring" in p.stderr and tuned["cache"] in p.stderr, p.stderr


@check("tune --mode train: a training step's layout and conv, cached apart; fcn train (--tune) and bench --mode train take it")
def _():
    root = tiny_voc("tune_train_data")
    net = ["--arch", "fcn8s", "--backbone", "vgg16-w0.0625", "--fc-channels", 8, "--in-channels", 1, "--classes", 5]
    fit = ["train", "--data", root, *net, "--epochs", 1, "--batch", 3, "--overwrite", "--out"]
    assert "training path" not in run(*fit, path("tt0.fcn")).stdout  # no entry: the trainer's own rule, silently
    tuned = json.loads(run("tune", *net, "--size", 16, "--batch", 3, "--mode", "train", "--runs", 1, "--json").stdout)["tuned"][0]
    assert tuned["key"].endswith(";mode=train") and len(tuned["timings"]) >= 2, tuned
    assert all(t["path"]["allocator"] == "huge_pages" for t in tuned["timings"]), tuned  # fcn train's allocator
    layout, conv = tuned["path"]["layout"], tuned["path"]["conv"]
    same = ["--size", 16, "--batch", 3, "--threads", tuned["threads"], "--runs", 1, "--warmup", 0, "--json"]
    bench = json.loads(run("bench", *net, "--mode", "train", *same).stdout)["path"]
    assert bench["source"] == "cache" and (bench["layout"], bench["conv"]) == (layout, conv), (bench, tuned["path"])
    words = "channels-last" if layout == "channels_last" else "NCHW"
    out = run(*fit, path("tt1.fcn")).stdout
    assert f"training path: {conv} convs in {words}" in out, out
    ran = lambda name: {k: json.loads(open(path(name + ".run/metrics.jsonl")).readline())[k] for k in ("layout", "conv")}
    assert ran("tt1") == {"layout": layout, "conv": conv}, ran("tt1")  # what the epoch ran, in metrics.jsonl
    assert "training path" not in run(*fit, path("tt2.fcn"), "--layout", "nchw").stdout  # named: the user's choice
    assert ran("tt2")["layout"] == "nchw", ran("tt2")
    # Whatever the entry says is what runs: flipped by hand to the other layout and direct convs.
    cache_file = os.path.join(os.environ["XDG_CACHE_HOME"], "fcn", "fast-paths.json")
    cache = json.load(open(cache_file))
    flipped = "nchw" if layout == "channels_last" else "channels_last"
    cache["entries"][tuned["key"]]["path"].update(layout=flipped, conv="direct")
    json.dump(cache, open(cache_file, "w"))
    run(*fit, path("tt4.fcn"))
    assert ran("tt4") == {"layout": flipped, "conv": "direct"}, ran("tt4")
    # fcn train --tune: where nothing is cached, it times the candidates on the run's own net first and
    # trains on the winner; the next run finds it cached.
    fresh = dict(os.environ, XDG_CACHE_HOME=path("xdg_tune_train"))
    for name, timed in (("tt5", True), ("tt6", False)):
        p = subprocess.run([FCN, *map(str, fit), path(name + ".fcn"), "--tune"], capture_output=True, text=True, timeout=300, env=fresh)
        assert p.returncode == 0 and "training path:" in p.stdout, p.stdout + p.stderr
        assert ("timing the training step on this CPU" in p.stdout) == timed, p.stdout
    one_line_error(run(*fit, path("tt7.fcn"), "--tune", "--layout", "nchw", ok=False), "--tune", "--layout")
    other_batch = ["train", "--data", root, *net, "--epochs", 1, "--batch", 2, "--overwrite", "--out", path("tt3.fcn")]
    assert "training path" not in run(*other_batch).stdout  # another batch: another key
    assert json.loads(run("bench", *net, *same).stdout)["path"]["source"] == "rule"  # inference's entry: none



@check("pretrain --tune: the classifier's step timed once and cached; later runs take the choice; bad flags are one line")
def _():
    fresh = dict(os.environ, XDG_CACHE_HOME=path("xdg_tune_pretrain"))
    fit = ["pretrain", "--backbone", "vgg16-w0.0625", "--fc-channels", 16, "--train-images", 128, "--batch", 32, "--json", "--out"]
    for name, timed in (("pt1", True), ("pt2", False)):
        p = subprocess.run([FCN, *map(str, fit), path(name + ".fcn"), "--tune"], capture_output=True, text=True, timeout=300, env=fresh)
        assert p.returncode == 0, p.stdout + p.stderr
        assert json.loads(p.stdout)["test_accuracy"] > 0, p.stdout  # --json: the summary alone on stdout
    cache = json.load(open(path("xdg_tune_pretrain/fcn/fast-paths.json")))["entries"]
    assert len(cache) == 1 and next(iter(cache)).endswith(";mode=train"), cache
    said = subprocess.run([FCN, *map(str, fit[:-2]), "--out", path("pt3.fcn")], capture_output=True, text=True, timeout=300, env=fresh)
    entry = next(iter(cache.values()))["path"]
    words = "channels-last" if entry["layout"] == "channels_last" else "NCHW"
    assert f"training path: {entry['conv']} convs in {words}" in said.stdout, said.stdout  # cached: taken without --tune
    one_line_error(run(*fit, path("pt4.fcn"), "--tune", "--layout", "nchw", ok=False), "--tune", "--layout")
    one_line_error(run("pretrain", "--backbone", "resnet18-w0.125", "--fc-channels", 64, "--out", path("pt5.fcn"), ok=False),
                   "--fc-channels: is the fc6/fc7 width of VGG and AlexNet, and resnet18-w0.125 has no fc layers")  # it went unread


@check("Ctrl-C during fcn pretrain leaves a checkpoint that --resume continues; a finished run leaves none")
def _():
    args = [FCN, "pretrain", "--backbone", "vgg16-w0.0625", "--train-images", 6000, "--batch", 16, "--out", path("pre_stop.fcn")]
    proc = subprocess.Popen([*map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # the first progress line: steps are running
        if "pretrain epoch 1/1" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (proc.returncode, err)
    assert re.search(r"interrupted: checkpoint at epoch 0 step \d+ written to .*pre_stop.run/checkpoint.pt \(continue with --resume ", err), err
    assert os.path.exists(path("pre_stop.run/checkpoint.pt")) and not os.path.exists(path("pre_stop.fcn"))  # it was lost before
    one_line_error(run(*args[1:], ok=False), "pre_stop.run: holds an earlier pretraining (checkpoint.pt); continue it with --resume")
    one_line_error(run(*args[1:], "--resume", path("pre_stop.run"), "--fc-channels", 8, ok=False),
                   "--fc-channels: 8, but the run in " + path("pre_stop.run") + " trains with 256, and --resume continues a run as it started")
    one_line_error(run(*args[1:], "--resume", path("pre_gone.run"), ok=False), "pre_gone.run: not found: --resume takes the run folder")
    # The run's own steps: a flag asking for another is one line naming the run's; left out (--train-images and --batch
    # here), the run's are taken and said (before 2026-12-07: all 60000 images in batches of 64).
    other = list(args[1:])
    other[other.index("--batch") + 1] = 32
    one_line_error(run(*other, "--resume", path("pre_stop.run"), ok=False),
                   "--batch: 32, but the run in " + path("pre_stop.run") + " trains with 16, and --resume continues a run as it started")
    p = run(*[a for a in args[1:] if a not in ("--backbone", "vgg16-w0.0625", "--train-images", 6000, "--batch", 16)],
            "--resume", path("pre_stop.run"))
    assert "pre_stop.run: resumed with the run's own --backbone vgg16-w0.0625 --train-images 6000 --batch 16 (flags given" in p.stdout, p.stdout
    training = json.loads(run("info", path("pre_stop.fcn"), "--json").stdout)["training"]
    assert training["train_images"] == 6000 and training["test_accuracy"] > 0.1, training
    assert os.path.exists(path("pre_stop.fcn")) and not os.path.exists(path("pre_stop.run")), listed(path(""))


summary()
