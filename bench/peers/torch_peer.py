"""PyTorch-Python eager peer for `fcn bench --peers`: the same architecture (tests/oracle/nets.py,
identical parameter names; torchvision's own fcn_resnet50/101 for fcn's torchvision-fcn), the same weights (fcn export --pth) and the same input size, timed the
way a PyTorch user runs it (eval, inference_mode, NCHW fp32 eager; train: SGD momentum 0.9,
gradients set to None between steps).

Usage: /usr/bin/python3 torch_peer.py CONFIG_JSON WEIGHTS_PTH --size HxW --batch N --mode infer|train
                                      --runs R --warmup W --threads T [--device cpu|cuda|cuda:N]
Prints one JSON object: {"ms": [...], "peak_rss_mib": ..., "torch": version}; on a GPU also its name
and peak_gpu_mib; {"unsupported": why} for a net nets.py has no definition of (fcn bench skips the peer). GPU runs are timed to the device's end (synchronize), as fcn bench times its own.
"""
import argparse
import json
import os
import re
import resource
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "oracle"))
import nets  # noqa: E402


def unsupported(why):
    print(json.dumps({"unsupported": why}))
    sys.exit(0)


def build(config):
    backbone = config.get("backbone", {})
    if config["arch"] == "torchvision-fcn":
        depth = re.fullmatch(r"resnet(50|101)", backbone["name"])
        if not depth or backbone["in_channels"] != 3:
            unsupported(f"torchvision has no fcn on {backbone['name']} with {backbone['in_channels']} input channels")
        make = getattr(torchvision.models.segmentation, f"fcn_resnet{depth.group(1)}")
        return make(weights=None, weights_backbone=None, num_classes=config["num_classes"], aux_loss=config["aux"])
    if config["arch"] == "fcn":
        name, same = backbone["name"], config["geometry"] == "same"
        common = dict(in_channels=backbone["in_channels"], fc_channels=config["fc_channels"], dropout=config["dropout"])
        other = nets.backbone_from_name(name, backbone["in_channels"], backbone.get("transform_input", False))
        if other is not None and same:
            return nets.SameFCN(config["stride"], config["num_classes"], fc_kernel=config["fc_kernel"], backbone=other, **common)
        vgg = re.fullmatch(r"vgg(11|13|16|19)(_bn)?(?:-w([0-9.]+))?", name)
        if not vgg:
            unsupported(f"no PyTorch definition of an FCN on {name} in the {config['geometry']} geometry here "
                        "(tests/oracle/nets.py)")
        common.update(depth=int(vgg.group(1)), width=float(vgg.group(3)) if vgg.group(3) else 1.0, batch_norm=bool(vgg.group(2)))
        if not same:
            if config["fc_kernel"] != 7:
                unsupported(f"nets.CaffeFCN has Caffe's 7x7 fc6, not {config['fc_kernel']}x{config['fc_kernel']}")
            return nets.CaffeFCN(config["stride"], config["num_classes"], **common)
        return nets.SameFCN(config["stride"], config["num_classes"], fc_kernel=config["fc_kernel"], **common)
    if config["arch"] == "unet":
        return nets.UNet(config["depth"], config["base_channels"], config["in_channels"], config["num_classes"],
                         config["padding"], config["upsample"], config["batch_norm"])
    unsupported(f"no PyTorch definition of arch {config['arch']} here (tests/oracle/nets.py: FCNs and U-Nets; torchvision's "
                "FCN)")


def forward(net, x):
    """The outputs a step trains on: torchvision's segmentation nets return {"out", "aux"}."""
    y = net(x)
    return [y["out"]] + ([y["aux"]] if "aux" in y else []) if isinstance(y, dict) else [y]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("weights")
    p.add_argument("--size", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--mode", default="infer")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    device = torch.device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    config = json.loads(open(a.config).read())
    net = build(config)
    net.load_state_dict(torch.load(a.weights, weights_only=False))  # fcn export --pth: a plain state dict
    net.to(device)
    h, w = (int(v) for v in a.size.split("x"))
    torch.manual_seed(0)
    x = torch.rand(a.batch, next(net.parameters()).shape[1], h, w).to(device)
    times = []
    if a.mode == "infer":
        net.eval()
        with torch.inference_mode():
            for i in range(a.warmup + a.runs):
                start = time.perf_counter()
                net(x)
                sync()
                if i >= a.warmup:
                    times.append((time.perf_counter() - start) * 1000)
    else:
        net.train()
        sgd = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
        labels = None
        for i in range(a.warmup + a.runs):
            start = time.perf_counter()
            sgd.zero_grad(set_to_none=True)  # PyTorch 2's default, as fcn's trainer does
            outputs = forward(net, x)
            if labels is None:
                n, c, h, w = outputs[0].shape
                labels = torch.randint(0, c, (n, h, w)).to(device)
            loss = torch.nn.functional.cross_entropy(outputs[0], labels, ignore_index=255)
            for aux in outputs[1:]:  # torchvision's references: the auxiliary loss at weight 0.5, as fcn's trainer
                loss = loss + 0.5 * torch.nn.functional.cross_entropy(aux, labels, ignore_index=255)
            loss.backward()
            sgd.step()
            sync()
            if i >= a.warmup:
                times.append((time.perf_counter() - start) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {"ms": times, "peak_rss_mib": rss, "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
