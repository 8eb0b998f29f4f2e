"""PyTorch definitions of fcn's nets, written independently from the C++ as test oracles.

Parameter names equal fcn's (`backbone.conv1_1.weight`, `fc6.weight`, `score_fr.weight`, ...), so
a state dict moves between the two with no renaming; this file is the documented PyTorch
definition of each fcn architecture.

- CaffeFCN: the Caffe voc-fcn{32,16,8}s nets (Long, Shelhamer, Darrell; fcn.berkeleyvision.org):
  conv1_1 padding 100, ceil-mode pooling, valid 7x7 fc6, crops 19/27/31 and skip crops 5/9.
- SameFCN: fcn's "same" geometry: input padded to a multiple of 32, 'same' fc6, and every score
  map upsampled to full resolution by its own bilinear transposed conv, summed. On VGG, or on any
  backbone given (ResNet, GoogLeNet: no fc6/fc7, score_fr on the stride-32 map).
- ResNet: torchvision's ResNet, ResNeXt and Wide ResNet (torchvision's own blocks and _make_layer) with
  every stage's channels scaled by a width multiplier, as fcn's resnet18-w0.25 and the like; GoogLeNet
  (torchvision's Inception modules) and AlexNet likewise. VGG with or without batch norm.
- UNet: Ronneberger et al. 2015, valid or same padding, transposed or bilinear upsampling.
"""
import math
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

VGG_BLOCKS = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}
VGG_CHANNELS = [64, 128, 256, 512, 512]


def scaled(channels, width):
    return max(1, int(math.floor(channels * width + 0.5)))


class VGG(nn.Module):
    """batch_norm: torchvision's vgg*_bn order, conv (with bias), batch norm, relu; fcn names the norms bn1_1, ..."""

    def __init__(self, depth=16, width=1.0, in_channels=3, first_padding=1, ceil_mode=False, batch_norm=False):
        super().__init__()
        self.ceil_mode, self.batch_norm = ceil_mode, batch_norm
        self.blocks = []
        cin = in_channels
        for b, n in enumerate(VGG_BLOCKS[depth]):
            cout = scaled(VGG_CHANNELS[b], width)
            names = []
            for i in range(n):
                name = f"conv{b + 1}_{i + 1}"
                pad = first_padding if (b == 0 and i == 0) else 1
                setattr(self, name, nn.Conv2d(cin, cout, 3, padding=pad))
                if batch_norm:
                    setattr(self, f"bn{b + 1}_{i + 1}", nn.BatchNorm2d(cout))
                names.append(name)
                cin = cout
            self.blocks.append(names)

    def forward(self, x):
        pools = []
        for names in self.blocks:
            for name in names:
                x = getattr(self, name)(x)
                if self.batch_norm:
                    x = getattr(self, "bn" + name[4:])(x)
                x = F.relu(x)
            x = F.max_pool2d(x, 2, 2, ceil_mode=self.ceil_mode)
            pools.append(x)
        return pools[2], pools[3], pools[4]

    def channels(self, stride):
        return channels(self, {8: 3, 16: 4, 32: 5}[stride])


def channels(vgg, pool):
    return getattr(vgg, vgg.blocks[pool - 1][-1]).out_channels


RESNET_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


class ResNet(nn.Module):
    """torchvision's ResNet with the stem's and each stage's channels scaled by `width`: the blocks and the
    stage builder are torchvision's own (so are the parameter names); forward returns layer2..layer4, the
    maps at strides 8, 16 and 32."""

    def __init__(self, depth=18, width=1.0, in_channels=3, groups=1, width_per_group=64):
        super().__init__()
        tv = torchvision.models.resnet
        block = tv.BasicBlock if depth in (18, 34) else tv.Bottleneck
        # The attributes torchvision's _make_layer reads.
        self.inplanes, self.dilation, self.groups, self.base_width = scaled(64, width), 1, groups, width_per_group
        self._norm_layer = nn.BatchNorm2d
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        for i, (planes, n) in enumerate(zip([64, 128, 256, 512], RESNET_BLOCKS[depth])):
            setattr(self, f"layer{i + 1}", tv.ResNet._make_layer(self, block, scaled(planes, width), n, stride=1 if i == 0 else 2))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer1(x)
        s8 = self.layer2(x)
        s16 = self.layer3(s8)
        return s8, s16, self.layer4(s16)

    def channels(self, stride):
        last = getattr(self, {8: "layer2", 16: "layer3", 32: "layer4"}[stride])[-1]
        return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features


class AlexNet(nn.Module):
    """torchvision's AlexNet features (its indices 0, 3, 6, 8, 10), widths scaled, in fcn's same layout: conv1
    padded by 5 and the 3x3/2 pools by 1, so that pool1, pool2 and pool5 sit at strides 8, 16 and 32."""

    def __init__(self, width=1.0, in_channels=3):
        super().__init__()
        c1, c2, c3, c4, c5 = (scaled(v, width) for v in (64, 192, 384, 256, 256))
        pool = lambda: nn.MaxPool2d(3, 2, padding=1)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 11, stride=4, padding=5), nn.ReLU(), pool(), nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), pool(),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(), nn.Conv2d(c4, c5, 3, padding=1),
            nn.ReLU(), pool())
        self.out = {8: c1, 16: c2, 32: c5}

    def forward(self, x):
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (2, 5, 12):
                maps.append(x)
        return tuple(maps)

    def channels(self, stride):
        return self.out[stride]


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet (its BasicConv2d and Inception modules, so its names) with every branch's channels
    scaled, without the average pool and classifier: inception3b, 4e and 5b are the maps at strides 8, 16, 32."""

    def __init__(self, width=1.0, in_channels=3, transform_input=False):
        super().__init__()
        self.transform_input = transform_input
        tv = sys.modules["torchvision.models.googlenet"]  # the module (torchvision.models.googlenet is the function)
        c = lambda v: scaled(v, width)
        self.conv1 = tv.BasicConv2d(in_channels, c(64), kernel_size=7, stride=2, padding=3)
        self.conv2 = tv.BasicConv2d(c(64), c(64), kernel_size=1)
        self.conv3 = tv.BasicConv2d(c(64), c(192), kernel_size=3, padding=1)
        cin = c(192)
        for name, branches in (("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)),
                               ("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
                               ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
                               ("4e", (256, 160, 320, 32, 128, 128)), ("5a", (256, 160, 320, 32, 128, 128)),
                               ("5b", (384, 192, 384, 48, 128, 128))):
            a, b, d, e, f, g = (c(v) for v in branches)
            setattr(self, "inception" + name, tv.Inception(cin, a, b, d, e, f, g))
            cin = a + d + f + g
            if name in ("3b", "4e", "5b"):
                setattr(self, "out" + name, cin)

    def forward(self, x):
        pool = lambda x, k: F.max_pool2d(x, k, 2, ceil_mode=True)
        if self.transform_input:  # torchvision's: ImageNet-normalised input as (x - 0.5) / 0.5
            mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            x = (x * std + mean - 0.5) / 0.5
        x = pool(self.conv3(self.conv2(pool(self.conv1(x), 3))), 3)
        s8 = self.inception3b(self.inception3a(x))
        x = pool(s8, 3)
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, "inception" + name)(x)
        return s8, x, self.inception5b(self.inception5a(pool(x, 2)))

    def channels(self, stride):
        return {8: self.out3b, 16: self.out4e, 32: self.out5b}[stride]


def backbone_from_name(name, in_channels=3, transform_input=False):
    """fcn's backbone names outside VGG: alexnet, googlenet and the ResNet family (resnet18, resnext50_32x4d,
    wide_resnet50_2), each optionally -wWIDTH. None for a name of another family."""
    m = re.fullmatch(r"(alexnet|googlenet)(?:-w([0-9.]+))?", name)
    if m:
        width = float(m.group(2)) if m.group(2) else 1.0
        return AlexNet(width, in_channels) if m.group(1) == "alexnet" else GoogLeNet(width, in_channels, transform_input)
    m = re.fullmatch(r"(resnet(\d+)|resnext(\d+)_(\d+)x(\d+)d|wide_resnet(\d+)_(\d+))(?:-w([0-9.]+))?", name)
    if not m:
        return None
    width = float(m.group(8)) if m.group(8) else 1.0
    if m.group(2):
        return ResNet(int(m.group(2)), width, in_channels)
    if m.group(3):
        return ResNet(int(m.group(3)), width, in_channels, groups=int(m.group(4)), width_per_group=int(m.group(5)))
    return ResNet(int(m.group(6)), width, in_channels, width_per_group=64 * int(m.group(7)))


class CaffeFCN(nn.Module):
    def __init__(self, stride, num_classes, depth=16, width=1.0, in_channels=3, fc_channels=4096, dropout=0.5, batch_norm=False):
        super().__init__()
        self.stride, self.drop = stride, nn.Dropout(dropout)
        self.backbone = VGG(depth, width, in_channels, first_padding=100, ceil_mode=True, batch_norm=batch_norm)
        self.fc6 = nn.Conv2d(channels(self.backbone, 5), fc_channels, 7)
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        up = lambda f: nn.ConvTranspose2d(num_classes, num_classes, 2 * f, stride=f, bias=False)
        if stride == 32:
            self.upscore = up(32)
        else:
            self.score_pool4 = nn.Conv2d(channels(self.backbone, 4), num_classes, 1)
            self.upscore2 = up(2)
        if stride == 16:
            self.upscore16 = up(16)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(channels(self.backbone, 3), num_classes, 1)
            self.upscore_pool4 = up(2)
            self.upscore8 = up(8)

    def forward(self, x):
        pool3, pool4, pool5 = self.backbone(x)
        h = self.drop(F.relu(self.fc7(self.drop(F.relu(self.fc6(pool5))))))
        score = self.score_fr(h)
        if self.stride == 32:
            return self.upscore(score)[:, :, 19:19 + x.size(2), 19:19 + x.size(3)]
        up = self.upscore2(score)
        h = up + self.score_pool4(pool4)[:, :, 5:5 + up.size(2), 5:5 + up.size(3)]
        if self.stride == 16:
            return self.upscore16(h)[:, :, 27:27 + x.size(2), 27:27 + x.size(3)]
        up = self.upscore_pool4(h)
        h = up + self.score_pool3(pool3)[:, :, 9:9 + up.size(2), 9:9 + up.size(3)]
        return self.upscore8(h)[:, :, 31:31 + x.size(2), 31:31 + x.size(3)]


class SameFCN(nn.Module):
    """On VGG (depth, width) unless a backbone is given; fc_channels 0: no fc6/fc7, score_fr on the stride-32 map."""

    def __init__(self, stride, num_classes, depth=16, width=1.0, in_channels=3, fc_channels=4096, fc_kernel=7, backbone=None,
                 dropout=0.5, batch_norm=False):
        super().__init__()
        self.stride, self.k, self.drop = stride, fc_kernel, nn.Dropout(dropout)
        self.backbone = backbone if backbone is not None else VGG(depth, width, in_channels, batch_norm=batch_norm)
        self.fc = fc_channels > 0
        if self.fc:
            self.fc6 = nn.Conv2d(self.backbone.channels(32), fc_channels, fc_kernel)
            self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.score_fr = nn.Conv2d(fc_channels if self.fc else self.backbone.channels(32), num_classes, 1)
        up = lambda f: nn.ConvTranspose2d(num_classes, num_classes, 2 * f, stride=f, padding=f // 2, bias=False)
        self.upscore = up(32)
        if stride <= 16:
            self.score_pool4 = nn.Conv2d(self.backbone.channels(16), num_classes, 1)
            self.upscore16 = up(16)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(self.backbone.channels(8), num_classes, 1)
            self.upscore8 = up(8)

    def forward(self, x):
        h, w = x.shape[2:]
        x = F.pad(x, (0, -w % 32, 0, -h % 32))
        pool3, pool4, pool5 = self.backbone(x)
        if self.fc:
            k = self.k
            y = F.pad(pool5, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
            pool5 = self.drop(F.relu(self.fc7(self.drop(F.relu(self.fc6(y))))))
        score = self.score_fr(pool5)
        out = self.upscore(score)
        if self.stride <= 16:
            out = out + self.upscore16(self.score_pool4(pool4))
        if self.stride == 8:
            out = out + self.upscore8(self.score_pool3(pool3))
        return out[:, :, :h, :w]


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, padding, batch_norm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=padding, bias=not batch_norm)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=padding, bias=not batch_norm)
        self.batch_norm = batch_norm
        if batch_norm:
            self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.conv1(x)
        if self.batch_norm:
            x = self.bn1(x)
        x = self.conv2(F.relu(x))
        if self.batch_norm:
            x = self.bn2(x)
        return F.relu(x)


class UNet(nn.Module):
    def __init__(self, depth=4, base_channels=64, in_channels=1, num_classes=2, padding="valid",
                 upsample="transposed", batch_norm=False):
        super().__init__()
        self.depth, self.same, self.upsample = depth, padding == "same", upsample
        pad = 1 if self.same else 0
        cin, ch = in_channels, base_channels
        for d in range(depth):
            setattr(self, f"enc{d}", DoubleConv(cin, ch, pad, batch_norm))
            cin, ch = ch, ch * 2
        self.bottom = DoubleConv(cin, ch, pad, batch_norm)
        for d in reversed(range(depth)):
            out = ch // 2
            if upsample == "transposed":
                setattr(self, f"up{d}", nn.ConvTranspose2d(ch, out, 2, stride=2))
            else:
                setattr(self, f"up{d}", nn.Conv2d(ch, out, 1))
            setattr(self, f"dec{d}", DoubleConv(2 * out, out, pad, batch_norm))
            ch = out
        self.score = nn.Conv2d(ch, num_classes, 1)

    def forward(self, x):
        h, w = x.shape[2:]
        if self.same:
            m = 2 ** self.depth
            x = F.pad(x, (0, -w % m, 0, -h % m))
        skips = []
        for d in range(self.depth):
            x = getattr(self, f"enc{d}")(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for d in reversed(range(self.depth)):
            if self.upsample == "bilinear":
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = getattr(self, f"up{d}")(x)
            skip = skips[d]
            dy, dx = (skip.size(2) - x.size(2)) // 2, (skip.size(3) - x.size(3)) // 2
            x = getattr(self, f"dec{d}")(torch.cat([skip[:, :, dy:dy + x.size(2), dx:dx + x.size(3)], x], 1))
        x = self.score(x)
        return x[:, :, :h, :w] if self.same else x
