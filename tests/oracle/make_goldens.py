"""Writes golden references for fcn's C++ tests into OUT_DIR (run at test time, never committed).

For every case: CASE.pth (state dict with fcn's names, via torch.save), CASE_input.npy and
CASE_output.npy (eval-mode forward of the PyTorch definition in nets.py), and cases.json with
fcn's JSON config of each case. Weights are random, score and upsampling layers included, so
every path of each net is exercised. Plus the torchvision VGG16 classifier case (vgg16.pth as
torchvision writes it), and small torchvision-layout VGG16 files for the bad-input tests.
"""
import collections
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nets  # noqa: E402
import unet_paper  # noqa: E402


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / max(1.0, fan_in) ** 0.5)
        randomize_buffers(model, g)
    return model.eval()


def randomize_buffers(model, g):
    """Batch-norm running statistics away from (0, 1), so that a test sees whether they were carried."""
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def save_case(out, name, model, x, config, cases):
    with torch.no_grad():
        y = model(x)
    torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
    np.save(os.path.join(out, name + "_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out, name + "_output.npy"), y.numpy().astype(np.float32))
    cases.append({"name": name, "config": config})


def backbone_json(depth, width, in_channels):
    name = f"vgg{depth}" + ("" if width == 1.0 else f"-w{width:g}")
    return {"name": name, "in_channels": in_channels}


def write_safetensors(path, state_dict):
    header, blobs, offset = {}, [], 0
    for key, t in state_dict.items():
        data = t.contiguous().numpy().astype(np.float32).tobytes()
        header[key] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def save_before_pytorch_04(state_dict, path):
    """torch.save's legacy format as PyTorch 0.3 wrote it (torchvision's 2017 VGG and AlexNet weights): the
    magic number, protocol version and system info pickles, the object with tensors rebuilt by
    torch._utils._rebuild_tensor (no requires_grad, no hooks), the sorted storage keys, then each storage's
    int64 element count and elements. torch.load reads it (the test checks that it does)."""
    storages = {}

    class Storage:
        def __init__(self, flat):
            self.flat = flat

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if not isinstance(obj, Storage):
                return None
            key = str(len(storages))
            storages[key] = obj.flat
            kind = {torch.float32: torch.FloatStorage, torch.int64: torch.LongStorage}[obj.flat.dtype]
            return ("storage", kind, key, "cpu", obj.flat.numel(), None)

        def reducer_override(self, obj):
            if isinstance(obj, torch.Tensor):
                plain = obj.detach().contiguous()
                return (torch._utils._rebuild_tensor, (Storage(plain.flatten()), 0, tuple(plain.shape), plain.stride()))
            return NotImplemented

    with open(path, "wb") as f:
        for header in (0x1950a86a20f9469cfc6c, 1001, dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(collections.OrderedDict(state_dict))
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            f.write(struct.pack("<q", storages[key].numel()) + storages[key].numpy().tobytes())
    loaded = torch.load(path)
    assert all(torch.equal(loaded[k], v) for k, v in state_dict.items())


def small_torchvision_vgg16(seed, depth=16, batch_norm=False):
    """torchvision's VGG class with 1/4 widths, a 2x2 pool5 window and small fc layers (its make_layers with
    batch_norm: vgg*_bn's layout)."""
    cfg = []
    for blocks, ch in zip(nets.VGG_BLOCKS[depth], nets.VGG_CHANNELS):
        cfg += [ch // 4] * blocks + ["M"]
    model = torchvision.models.vgg.VGG(torchvision.models.vgg.make_layers(cfg, batch_norm=batch_norm), num_classes=10)
    model.avgpool = torch.nn.AdaptiveAvgPool2d((2, 2))
    model.classifier[0] = torch.nn.Linear(128 * 2 * 2, 32)
    model.classifier[3] = torch.nn.Linear(32, 32)
    model.classifier[6] = torch.nn.Linear(32, 10)
    return randomize(model, seed)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cases = []
    width, fc, classes = 0.25, 32, 5
    x = torch.randn(1, 3, 75, 53)  # odd and non-square
    for stride in (32, 16, 8):
        m = randomize(nets.CaffeFCN(stride, classes, width=width, fc_channels=fc), stride)
        cfg = {"arch": "fcn", "stride": stride, "num_classes": classes, "backbone": backbone_json(16, width, 3),
               "geometry": "reference", "fc_channels": fc, "fc_kernel": 7, "dropout": 0.5, "learnable_upsampling": True}
        save_case(out, f"fcn{stride}s_reference", m, x, cfg, cases)
        m = randomize(nets.SameFCN(stride, classes, width=width, fc_channels=fc, fc_kernel=3), 100 + stride)
        save_case(out, f"fcn{stride}s_same", m, x, dict(cfg, geometry="same", fc_kernel=3), cases)
    # FCNs on the ResNet family (fcn's same geometry, no fc6/fc7): torchvision's blocks, widths scaled.
    for backbone, stride in (("resnet18-w0.25", 32), ("resnet18-w0.25", 16), ("resnet18-w0.25", 8), ("resnet50-w0.125", 8),
                             ("resnext50_32x4d-w0.25", 8), ("wide_resnet50_2-w0.125", 16)):
        m = randomize(nets.SameFCN(stride, classes, fc_channels=0, backbone=nets.backbone_from_name(backbone)), 200 + stride)
        cfg = {"arch": "fcn", "stride": stride, "num_classes": classes, "backbone": {"name": backbone, "in_channels": 3},
               "geometry": "same", "fc_channels": 0, "fc_kernel": 1, "dropout": 0.5, "learnable_upsampling": True}
        save_case(out, f"fcn{stride}s_{backbone}", m, x, cfg, cases)
    # The paper's other nets and VGG with batch norm: AlexNet (fc6 6x6, as its classifier's at 224), GoogLeNet (no
    # fc6/fc7; once with torchvision's transform_input), vgg11_bn in both geometries.
    for backbone, stride, fc, k, extra in (("alexnet-w0.25", 8, 32, 6, {}), ("googlenet-w0.125", 16, 0, 1, {}),
                                           ("googlenet-w0.25", 8, 0, 1, {"transform_input": True}),
                                           ("vgg11_bn-w0.25", 8, 32, 3, {})):
        bb = {"name": backbone, "in_channels": 3, **extra}
        other = nets.backbone_from_name(backbone, 3, bool(extra))
        kw = dict(backbone=other) if other is not None else dict(depth=11, width=0.25, batch_norm=True)
        m = randomize(nets.SameFCN(stride, classes, fc_channels=fc, fc_kernel=k, **kw), 300 + stride)
        cfg = {"arch": "fcn", "stride": stride, "num_classes": classes, "backbone": bb, "geometry": "same", "fc_channels": fc,
               "fc_kernel": k, "dropout": 0.5, "learnable_upsampling": True}
        save_case(out, f"fcn{stride}s_{backbone}" + ("_transform_input" if extra else ""), m, x, cfg, cases)
    m = randomize(nets.CaffeFCN(8, classes, depth=11, width=0.25, fc_channels=32, batch_norm=True), 308)
    cfg = {"arch": "fcn", "stride": 8, "num_classes": classes, "backbone": {"name": "vgg11_bn-w0.25", "in_channels": 3},
           "geometry": "reference", "fc_channels": 32, "fc_kernel": 7, "dropout": 0.5, "learnable_upsampling": True}
    save_case(out, "fcn8s_reference_vgg11_bn-w0.25", m, x, cfg, cases)
    for padding, upsample, bn, size in (("valid", "transposed", False, 140), ("valid", "bilinear", True, 108),
                                        ("same", "transposed", True, 45), ("same", "bilinear", False, 37)):
        m = randomize(nets.UNet(3, 4, 1, 3, padding, upsample, bn), size)
        cfg = {"arch": "unet", "depth": 3, "base_channels": 4, "in_channels": 1, "num_classes": 3,
               "padding": padding, "upsample": upsample, "batch_norm": bn}
        save_case(out, f"unet_{padding}_{upsample}", m, torch.randn(1, 1, size, size + 8 * (padding == "valid") + 3 * (padding == "same")),
                  cfg, cases)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)

    # Acceptance 1: torchvision's own VGG16 (full size, random weights) as torchvision saves it.
    vgg = torchvision.models.vgg16().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        y = vgg(x)
    torch.save(vgg.state_dict(), os.path.join(out, "vgg16.pth"))
    np.save(os.path.join(out, "vgg16_input.npy"), x.numpy())
    np.save(os.path.join(out, "vgg16_output.npy"), y.numpy())

    # Small torchvision-layout VGG16: good .pth and .safetensors, and broken variants.
    small = small_torchvision_vgg16(7)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = small(x)
    sd = small.state_dict()
    torch.save(sd, os.path.join(out, "small_vgg16.pth"))
    # The same in torch.save's legacy format (before PyTorch 1.6): protocol 2 and 4, and as PyTorch 0.3 wrote it.
    torch.save(sd, os.path.join(out, "small_vgg16_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(sd, os.path.join(out, "small_vgg16_legacy_p4.pth"), _use_new_zipfile_serialization=False, pickle_protocol=4)
    save_before_pytorch_04(sd, os.path.join(out, "small_vgg16_pytorch03.pth"))
    write_safetensors(os.path.join(out, "small_vgg16.safetensors"), sd)
    np.save(os.path.join(out, "small_vgg16_input.npy"), x.numpy())
    np.save(os.path.join(out, "small_vgg16_output.npy"), y.numpy())
    missing = dict(sd)
    del missing["features.28.weight"]
    torch.save(missing, os.path.join(out, "missing_key.pth"))
    wrong = dict(sd)
    wrong["features.5.weight"] = torch.zeros(32, 16, 5, 5)
    torch.save(wrong, os.path.join(out, "wrong_shape.pth"))
    extra = dict(sd)
    extra["features.99.weight"] = torch.zeros(1)
    torch.save(extra, os.path.join(out, "extra_key.pth"))


def metrics_and_loss(out):
    """Oracles for eval/metrics (numpy, the FCN paper's formulas) and train/loss (F.cross_entropy)."""
    g = torch.Generator().manual_seed(11)
    n = 6
    target = torch.randint(0, n, (3, 17, 23), generator=g)
    target[:, :2] = 255                                # ignore pixels
    target[target == 4] = 0                            # class 4 absent from ground truth...
    pred = torch.randint(0, n, (3, 17, 23), generator=g)
    pred[pred == 5] = 1                                # ...class 5 predicted nowhere; 4 is predicted
    target[target == 5] = 2                            # class 5 absent from both: excluded from means
    t, p = target.numpy().ravel(), pred.numpy().ravel()
    keep = t != 255
    hist = np.bincount(n * t[keep] + p[keep], minlength=n * n).reshape(n, n).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.diag(hist) / hist.sum(1)
        iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    freq = hist.sum(1) / hist.sum()
    valid = ~np.isnan(iu)
    expected = {"pixel_acc": np.diag(hist).sum() / hist.sum(), "mean_acc": np.nanmean(acc), "mean_iu": np.nanmean(iu),
                "fw_iu": (freq[valid] * iu[valid]).sum(), "iou": [None if np.isnan(v) else v for v in iu],
                "confusion": hist.astype(int).tolist()}
    np.save(os.path.join(out, "metrics_target.npy"), target.numpy())
    np.save(os.path.join(out, "metrics_pred.npy"), pred.numpy())
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(expected, f)

    logits = torch.randn(2, 5, 9, 11, generator=g, dtype=torch.float64).float().requires_grad_()
    labels = torch.randint(0, 5, (2, 9, 11), generator=g)
    labels[0, :3] = 255
    weights = torch.rand(5, generator=g) + 0.5
    np.save(os.path.join(out, "loss_logits.npy"), logits.detach().numpy())
    np.save(os.path.join(out, "loss_targets.npy"), labels.numpy())
    np.save(os.path.join(out, "loss_weights.npy"), weights.numpy())
    for reduction in ("mean", "sum"):
        for weighted in (False, True):
            logits.grad = None
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weights if weighted else None,
                                                     ignore_index=255, reduction=reduction)
            loss.backward()
            name = f"loss_{reduction}_{'weighted' if weighted else 'plain'}"
            np.save(os.path.join(out, name + ".npy"), np.array([loss.item()], np.float64))
            np.save(os.path.join(out, name + "_grad.npy"), logits.grad.numpy())


def randomize_bn_statistics(model, seed):
    with torch.no_grad():
        randomize_buffers(model, torch.Generator().manual_seed(seed))


def torchvision_classifiers(out):
    """torchvision's AlexNet and ResNets (random weights, weights=None; BN statistics randomised so
    they matter) as torchvision saves them, with inputs and eval-mode logits; and broken files."""
    torch.manual_seed(1)
    nets_and_inputs = {
        "alexnet": (torchvision.models.alexnet(), torch.randn(1, 3, 224, 224)),
        "resnet18": (torchvision.models.resnet18(), torch.randn(2, 3, 64, 80)),
        "resnet50": (torchvision.models.resnet50(), torch.randn(1, 3, 96, 128)),
        # weights=None: no transform_input, aux heads present (fcn drops them); and the pretrained form.
        "googlenet": (torchvision.models.googlenet(init_weights=True), torch.randn(1, 3, 160, 192)),
        "googlenet_ti": (torchvision.models.googlenet(transform_input=True, aux_logits=False, init_weights=True),
                         torch.randn(1, 3, 128, 160)),
    }
    # torchvision's vgg11_bn layout (small: 1/4 widths, 2x2 pool5 window, small fc layers), randomised throughout.
    nets_and_inputs["vgg11_bn"] = (small_torchvision_vgg16(12, depth=11, batch_norm=True), torch.randn(2, 3, 64, 96))
    # torchvision's ResNeXt (grouped 3x3 convs): ResNet-50's blocks in 8 groups of 8 channels (resnext50_8x8d).
    resnext = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], groups=8, width_per_group=8,
                                               num_classes=7)
    nets_and_inputs["resnext50_8x8d"] = (resnext, torch.randn(1, 3, 64, 96))
    for name, (model, x) in nets_and_inputs.items():
        randomize_bn_statistics(model, len(name))
        with torch.no_grad():
            y = model.eval()(x)
        torch.save(model.state_dict(), os.path.join(out, f"tv_{name}.pth"))
        np.save(os.path.join(out, f"tv_{name}_input.npy"), x.numpy())
        np.save(os.path.join(out, f"tv_{name}_output.npy"), y.numpy())
    # torchvision's segmentation FCN on a dilated ResNet-50, with the auxiliary head.
    fcn = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    randomize_bn_statistics(fcn, 11)
    with torch.no_grad():
        x = torch.randn(1, 3, 224, 320)
        y = fcn.eval()(x)
    torch.save(fcn.state_dict(), os.path.join(out, "tv_fcn_resnet50.pth"))
    np.save(os.path.join(out, "tv_fcn_resnet50_input.npy"), x.numpy())
    np.save(os.path.join(out, "tv_fcn_resnet50_out.npy"), y["out"].numpy())
    np.save(os.path.join(out, "tv_fcn_resnet50_aux.npy"), y["aux"].numpy())
    sd = nets_and_inputs["resnet18"][0].state_dict()
    missing = dict(sd)
    del missing["layer2.1.bn2.running_var"]
    torch.save(missing, os.path.join(out, "tv_resnet18_missing.pth"))
    wrong = dict(sd)
    wrong["layer3.0.conv1.weight"] = torch.zeros(256, 128, 1, 1)
    torch.save(wrong, os.path.join(out, "tv_resnet18_wrong_shape.pth"))



def torchvision_key_shapes(out):
    """The keys and shapes of torchvision's models, those fcn imports and those it does not, as their
    state dicts have them (tv_keys.json): what fcn import auto and fcn info tell a file by. The weights are
    not initialised (torch.nn.init made a no-op), so that building a VGG16 takes no time."""
    init = {f: getattr(torch.nn.init, f) for f in dir(torch.nn.init) if f.endswith("_") and not f.startswith("_")}
    for f in init:
        setattr(torch.nn.init, f, lambda t, *args, **kwargs: t)
    try:
        seg = torchvision.models.segmentation
        models = {name: (lambda n=name: getattr(torchvision.models, n)()) for name in [
            "alexnet", "vgg11", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101",
            "resnet152", "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "densenet121", "mobilenet_v2",
            "mobilenet_v3_large", "squeezenet1_0", "efficientnet_b0", "shufflenet_v2_x1_0", "regnet_y_400mf",
            "convnext_tiny", "vit_b_16", "swin_t", "mnasnet0_5"]}
        models["googlenet"] = lambda: torchvision.models.googlenet(init_weights=False)
        models["inception_v3"] = lambda: torchvision.models.inception_v3(init_weights=False)
        for name in ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large",
                     "lraspp_mobilenet_v3_large"]:
            models[name] = lambda n=name: getattr(seg, n)(weights=None, weights_backbone=None)
        keys = {name: [[key, list(t.shape)] for key, t in make().state_dict().items()] for name, make in models.items()}
    finally:
        for f, function in init.items():
            setattr(torch.nn.init, f, function)
    with open(os.path.join(out, "tv_keys.json"), "w") as f:
        json.dump(keys, f)


if __name__ == "__main__":
    main(sys.argv[1])
    metrics_and_loss(sys.argv[1])
    torchvision_classifiers(sys.argv[1])
    torchvision_key_shapes(sys.argv[1])
    unet_paper.write(sys.argv[1])
