"""Oracles for U-Net's training (Ronneberger et al. 2015): the border weight map (eq. 2) by brute
force (every pixel's distance to every object pixel, torch.cdist), and the soft Dice loss and its
gradient by autograd. Written into OUT_DIR by make_goldens.py at test time."""
import json
import os

import numpy as np
import torch


def instance_masks():
    """Small hand-made masks: two touching objects, one apart, a void stripe (labels, instances)."""
    labels = np.zeros((14, 17), np.int64)
    inst = np.zeros((14, 17), np.int64)
    inst[2:7, 2:7] = 1            # object 1
    inst[2:7, 8:12] = 2           # object 2: one background column (x = 7) from object 1
    inst[9:13, 4:9] = 3           # object 3, another class
    labels[inst == 1] = 1
    labels[inst == 2] = 1
    labels[inst == 3] = 2
    labels[0, :] = 255            # void row
    return labels, inst


def weight_map(labels, inst, w0, sigma, class_weights):
    h, w = labels.shape
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(-1, 2).double()
    ids = [i for i in np.unique(inst) if i > 0]
    dists = []
    for i in ids:
        pts = coords[torch.from_numpy(inst.reshape(-1) == i)]
        dists.append(torch.cdist(coords, pts).min(1).values)
    d = torch.stack(dists, 1).sort(1).values
    border = w0 * torch.exp(-(d[:, 0] + d[:, 1]) ** 2 / (2 * sigma ** 2))
    border = border.reshape(h, w).numpy() * (inst == 0)
    safe = np.where(labels == 255, 0, labels)
    wc = class_weights[safe]
    return ((wc + border) * (labels != 255)).astype(np.float32)


def dice_reference(logits, targets, smooth=1.0):
    valid = (targets != 255).unsqueeze(1).to(logits.dtype)
    safe = torch.where(targets == 255, torch.zeros_like(targets), targets)
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        g = (safe == 1).unsqueeze(1).to(logits.dtype)
    else:
        p = torch.softmax(logits, 1)
        g = torch.nn.functional.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    p, g = p * valid, g * valid
    inter = (p * g).sum((0, 2, 3))
    dice = (2 * inter + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth)
    return 1 - dice.mean()


def write(out):
    labels, inst = instance_masks()
    np.save(os.path.join(out, "wmap_labels.npy"), labels)
    np.save(os.path.join(out, "wmap_instances.npy"), inst)
    class_weights = np.array([0.5, 1.0, 2.0], np.float32)
    np.save(os.path.join(out, "wmap_class_weights.npy"), class_weights)
    np.save(os.path.join(out, "wmap_expected.npy"), weight_map(labels, inst, 10.0, 5.0, class_weights))
    np.save(os.path.join(out, "wmap_expected_w3_s2.npy"), weight_map(labels, inst, 3.0, 2.0, np.ones(3, np.float32)))

    g = torch.Generator().manual_seed(23)
    for channels in (4, 1):
        logits = torch.randn(2, channels, 7, 9, generator=g, dtype=torch.float64).float().requires_grad_()
        targets = torch.randint(0, max(channels, 2), (2, 7, 9), generator=g)
        targets[0, :2] = 255
        loss = dice_reference(logits, targets)
        loss.backward()
        name = f"dice_c{channels}"
        np.save(os.path.join(out, name + "_logits.npy"), logits.detach().numpy())
        np.save(os.path.join(out, name + "_targets.npy"), targets.numpy())
        np.save(os.path.join(out, name + "_loss.npy"), np.array([loss.item()], np.float64))
        np.save(os.path.join(out, name + "_grad.npy"), logits.grad.numpy())
    # Binary cross-entropy with per-pixel weights, the weighted mean the trainer uses.
    logits = torch.randn(2, 1, 7, 9, generator=g, dtype=torch.float64).float().requires_grad_()
    targets = torch.randint(0, 2, (2, 7, 9), generator=g)
    targets[1, 3:] = 255
    weights = (torch.rand(2, 7, 9, generator=g) * 3).float()
    valid = (targets != 255).float()
    terms = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], (targets == 1).float(), reduction="none")
    loss = (terms * weights * valid).sum() / (weights * valid).sum()
    loss.backward()
    for key, value in {"logits": logits.detach(), "targets": targets, "weights": weights, "grad": logits.grad}.items():
        np.save(os.path.join(out, f"bce_{key}.npy"), value.numpy())
    np.save(os.path.join(out, "bce_loss.npy"), np.array([loss.item()], np.float64))
    with open(os.path.join(out, "unet_paper.json"), "w") as f:
        json.dump({"w0": 10.0, "sigma": 5.0}, f)
