"""PyTorch definitions of fcn's nets, written independently from the C++ as test oracles.

Parameter names equal fcn's (`backbone.conv1_1.weight`, `fc6.weight`, `score_fr.weight`, ...), so
a state dict moves between the two with no renaming; this file is the documented PyTorch
definition of each fcn architecture.

- CaffeFCN: the Caffe voc-fcn{32,16,8}s nets (Long, Shelhamer, Darrell; fcn.berkeleyvision.org):
  conv1_1 padding 100, ceil-mode pooling, valid 7x7 fc6, crops 19/27/31 and skip crops 5/9.
- SameFCN: fcn's "same" geometry: input padded to a multiple of 32, 'same' fc6, and every score
  map upsampled to full resolution by its own bilinear transposed conv, summed.
- UNet: Ronneberger et al. 2015, valid or same padding, transposed or bilinear upsampling.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

VGG_BLOCKS = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}
VGG_CHANNELS = [64, 128, 256, 512, 512]


def scaled(channels, width):
    return max(1, int(math.floor(channels * width + 0.5)))


class VGG(nn.Module):
    def __init__(self, depth=16, width=1.0, in_channels=3, first_padding=1, ceil_mode=False):
        super().__init__()
        self.ceil_mode = ceil_mode
        self.blocks = []
        cin = in_channels
        for b, n in enumerate(VGG_BLOCKS[depth]):
            cout = scaled(VGG_CHANNELS[b], width)
            names = []
            for i in range(n):
                name = f"conv{b + 1}_{i + 1}"
                pad = first_padding if (b == 0 and i == 0) else 1
                setattr(self, name, nn.Conv2d(cin, cout, 3, padding=pad))
                names.append(name)
                cin = cout
            self.blocks.append(names)

    def forward(self, x):
        pools = []
        for names in self.blocks:
            for name in names:
                x = F.relu(getattr(self, name)(x))
            x = F.max_pool2d(x, 2, 2, ceil_mode=self.ceil_mode)
            pools.append(x)
        return pools[2], pools[3], pools[4]


def channels(vgg, pool):
    return getattr(vgg, vgg.blocks[pool - 1][-1]).out_channels


class CaffeFCN(nn.Module):
    def __init__(self, stride, num_classes, depth=16, width=1.0, in_channels=3, fc_channels=4096):
        super().__init__()
        self.stride = stride
        self.backbone = VGG(depth, width, in_channels, first_padding=100, ceil_mode=True)
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
        h = F.relu(self.fc7(F.relu(self.fc6(pool5))))
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
    def __init__(self, stride, num_classes, depth=16, width=1.0, in_channels=3, fc_channels=4096, fc_kernel=7):
        super().__init__()
        self.stride, self.k = stride, fc_kernel
        self.backbone = VGG(depth, width, in_channels)
        self.fc6 = nn.Conv2d(channels(self.backbone, 5), fc_channels, fc_kernel)
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        up = lambda f: nn.ConvTranspose2d(num_classes, num_classes, 2 * f, stride=f, padding=f // 2, bias=False)
        self.upscore = up(32)
        if stride <= 16:
            self.score_pool4 = nn.Conv2d(channels(self.backbone, 4), num_classes, 1)
            self.upscore16 = up(16)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(channels(self.backbone, 3), num_classes, 1)
            self.upscore8 = up(8)

    def forward(self, x):
        h, w = x.shape[2:]
        x = F.pad(x, (0, -w % 32, 0, -h % 32))
        pool3, pool4, pool5 = self.backbone(x)
        k = self.k
        y = F.pad(pool5, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
        score = self.score_fr(F.relu(self.fc7(F.relu(self.fc6(y)))))
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
