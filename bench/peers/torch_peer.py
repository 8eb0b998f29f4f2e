"""PyTorch-Python eager peer for `fcn bench --peers`: the same architecture (tests/oracle/nets.py,
identical parameter names), the same weights (fcn export --pth) and the same input size, timed the
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "oracle"))
import nets  # noqa: E402


def unsupported(why):
    print(json.dumps({"unsupported": why}))
    sys.exit(0)


def build(config):
    backbone = config.get("backbone", {})
    if config["arch"] == "fcn":
        name = backbone["name"]
        plain_vgg = re.fullmatch(r"vgg(11|13|16|19)(?:-w([0-9.]+))?", name)
        if not plain_vgg:
            unsupported(f"no PyTorch definition of an FCN on {name} here (tests/oracle/nets.py: VGG FCNs and U-Nets)")
        depth = int(plain_vgg.group(1))
        width = float(plain_vgg.group(2)) if plain_vgg.group(2) else 1.0
        common = dict(depth=depth, width=width, in_channels=backbone["in_channels"], fc_channels=config["fc_channels"])
        if config["geometry"] == "reference":
            assert config["fc_kernel"] == 7, "nets.CaffeFCN has Caffe's 7x7 fc6"
            return nets.CaffeFCN(config["stride"], config["num_classes"], **common)
        return nets.SameFCN(config["stride"], config["num_classes"], fc_kernel=config["fc_kernel"], **common)
    if config["arch"] == "unet":
        return nets.UNet(config["depth"], config["base_channels"], config["in_channels"], config["num_classes"],
                         config["padding"], config["upsample"], config["batch_norm"])
    unsupported(f"no PyTorch definition of arch {config['arch']} here (tests/oracle/nets.py: VGG FCNs and U-Nets)")


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
            logits = net(x)
            if labels is None:
                labels = torch.randint(0, logits.shape[1], (logits.shape[0], logits.shape[2], logits.shape[3])).to(device)
            torch.nn.functional.cross_entropy(logits, labels, ignore_index=255).backward()
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
