"""Seed corpus for the fuzzers (fuzz/run.sh): small valid files of every kind fcn reads, written
with numpy / PyTorch so the fuzzers start from real structure. Usage: make_corpus.py OUT_DIR"""
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch

out = sys.argv[1]


def put(kind, name, data):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


def png(width, height, color_type, depth, pixels, palette=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = width * channels * depth // 8 if depth >= 8 else (width * depth + 7) // 8
    raw = b"".join(b"\x00" + pixels[y * row:(y + 1) * row] for y in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
    if palette is not None:
        body += chunk(b"PLTE", palette)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


rng = np.random.default_rng(0)
for ct, depth in ((0, 8), (0, 16), (0, 1), (2, 8), (2, 16), (3, 8), (3, 2), (4, 8), (6, 8)):
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
    w, h = 5, 3
    row = w * ch * depth // 8 if depth >= 8 else (w * depth + 7) // 8
    pixels = rng.integers(0, 4, row * h).astype(np.uint8).tobytes()
    put("png", f"ct{ct}_d{depth}.png", png(w, h, ct, depth, pixels, bytes(range(12)) if ct == 3 else None))
from torchvision.io import encode_jpeg  # noqa: E402
put("png", "image.jpg", encode_jpeg(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)).numpy().tobytes())
for order in ("<", ">"):  # an Exif APP1 with Orientation 6, both byte orders, after SOI
    tiff = (b"II" if order == "<" else b"MM") + struct.pack(order + "HIH", 42, 8, 1) + struct.pack(order + "HHIHH", 0x0112, 3, 1, 6, 0)
    tiff += struct.pack(order + "I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", 8 + len(tiff)) + b"Exif\0\0" + tiff
    jpeg = encode_jpeg(torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8)).numpy().tobytes()
    put("png", f"exif{'le' if order == '<' else 'be'}.jpg", jpeg[:2] + app1 + jpeg[2:])

for name, array in (("f4.npy", np.arange(6, dtype=np.float32).reshape(2, 3)), ("u1.npy", np.zeros((4,), np.uint8)),
                    ("i8.npy", np.arange(3, dtype=np.int64)), ("b1.npy", np.array([True, False])),
                    ("f8.npy", np.zeros((1, 1, 2), np.float64)), ("scalar.npy", np.float32(3.0))):
    buffer = io.BytesIO()
    np.save(buffer, array)
    put("npy", name, buffer.getvalue())

state = {"conv.weight": torch.randn(2, 1, 3, 3), "conv.bias": torch.zeros(2), "bn.num_batches_tracked": torch.tensor(3),
         "half": torch.ones(2, dtype=torch.float16), "view": torch.arange(12.0).view(3, 4)[:, 1:3]}
for name, obj in (("state.pth", state), ("checkpoint.pth", {"state_dict": state, "epoch": 3, "name": "x"}),
                  ("model.fcn", {"format": "fcn-model", "version": 1, "config": "{}", "meta": "{}", "state_dict": state})):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    put("archive", name, buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
        put("pickle", name.replace(".", "_") + ".pkl", z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))
for protocol in (2, 4):  # torch.save's legacy format (before PyTorch 1.6)
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    put("archive", f"legacy_p{protocol}.pth", buffer.getvalue())

header = json.dumps({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                     "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}).encode()
put("safetensors", "two.safetensors", struct.pack("<Q", len(header)) + header + bytes(24))

config = {"arch": "fcn", "stride": 8, "num_classes": 21, "geometry": "same", "fc_channels": 4096, "fc_kernel": 7,
          "dropout": 0.5, "learnable_upsampling": True,
          "backbone": {"family": "vgg", "depth": 16, "width": 1.0, "in_channels": 3}}
meta = {"class_names": ["a", "b"], "palette": [[0, 0, 0], [128, 0, 0]],
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "training": {"epochs": 2}}
put("model_json", "config.json", json.dumps(config).encode())
put("model_json", "meta.json", json.dumps(meta).encode())
put("model_json", "both.json", json.dumps({**config, **meta}).encode())

put("classes", "names.json", json.dumps({"names": ["background", "cell"]}).encode())
put("classes", "colors.json", json.dumps({"names": ["a", "b", "c"], "colors": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}).encode())

put("idx", "labels.idx", b"\x00" + b"\x00\x00\x08\x01" + struct.pack(">I", 4) + bytes([1, 2, 3, 9]))
put("idx", "images.idx", b"\x02" + b"\x00\x00\x08\x03" + struct.pack(">III", 2, 2, 2) + bytes(8))

put("split", "train.txt", b"im0\nim1\r\n  my scene  \n\n2007_000032\n")

# TIFF: a 3-page stack as PIL writes it, and hand-built chains in both byte orders and BigTIFF, with a
# reduced-resolution page (NewSubfileType 1) that the page table leaves out.
from PIL import Image  # noqa: E402
stack = io.BytesIO()
pages = [Image.fromarray(np.full((6, 5), 40 * i, np.uint8)) for i in range(3)]
pages[0].save(stack, format="TIFF", save_all=True, append_images=pages[1:])
put("tiff", "stack.tif", stack.getvalue())
calibrated = io.BytesIO()  # the calibration fcn carries into the stacks it writes: resolution tags, ImageJ's unit and spacing
pages[0].save(calibrated, format="TIFF", save_all=True, append_images=pages[1:], tiffinfo={282: 4.0, 283: 2.5, 296: 3},
              description="ImageJ=1.53t\nimages=3\nslices=3\nunit=micron\nspacing=0.5\n")
put("tiff", "calibrated.tif", calibrated.getvalue())
for name, labels in (("labels16.tif", np.array([[0, 7, 300], [65535, 1, 2]], np.uint16)),  # label images: 16-bit, int32, float32
                     ("labels32.tif", np.array([[0, -1, 70000], [3, 1, 2]], np.int32)),
                     ("labelsf.tif", np.array([[0, 1.5, 2], [3, 1, 2]], np.float32))):
    label_page = io.BytesIO()
    Image.fromarray(labels).save(label_page, format="TIFF")
    put("tiff", name, label_page.getvalue())


def tiff(order, big, sizes):
    """Directories holding only NewSubfileType, ImageWidth and ImageLength (no pixels: the page table needs none)."""
    e = "<" if order == b"II" else ">"
    if big:
        data = bytearray(order + struct.pack(e + "HHHQ", 43, 8, 0, 16))
    else:
        data = bytearray(order + struct.pack(e + "HI", 42, 8))
    for i, (kind, height, width) in enumerate(sizes):
        last = i == len(sizes) - 1
        entries = [(254, 4, kind), (256, 3, width), (257, 4, height)]
        if big:
            data += struct.pack(e + "Q", len(entries))
            for tag, type_, value in entries:
                data += struct.pack(e + "HHQ", tag, type_, 1) + (struct.pack(e + "H", value) + bytes(6) if type_ == 3 else struct.pack(e + "Q", value))
            data += struct.pack(e + "Q", 0 if last else len(data) + 8)
        else:
            data += struct.pack(e + "H", len(entries))
            for tag, type_, value in entries:
                data += struct.pack(e + "HHI", tag, type_, 1) + (struct.pack(e + "H", value) + bytes(2) if type_ == 3 else struct.pack(e + "I", value))
            data += struct.pack(e + "I", 0 if last else len(data) + 4)
    return bytes(data)


put("tiff", "le.tif", tiff(b"II", False, [(0, 30, 40), (1, 15, 20), (0, 30, 40)]))
put("tiff", "be.tif", tiff(b"MM", False, [(0, 7, 9), (0, 7, 9)]))
put("tiff", "big.tif", tiff(b"II", True, [(0, 512, 512), (1, 256, 256)]))


def samples_tiff(planes, planar, bits, fmt, photometric=1, extra=0):
    """One page of C x H x W samples apart (a multispectral image: gray + C-1 extra samples, or RGB + C-3 where
    photometric is 2; `extra` their ExtraSamples kind), uncompressed, a strip a plane (planar) or one strip of
    interleaved pixels."""
    c, h, w = planes.shape
    dtype = {8: "u1", 16: "<u2", 32: "<f4"}[bits]
    data = (planes if planar else planes.transpose(1, 2, 0)).astype(dtype).tobytes()
    strips = c if planar else 1
    strip = len(data) // strips
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits] * c), (259, 3, [1]), (262, 3, [photometric]), (273, 4, None), (277, 3, [c]),
            (278, 4, [h]), (279, 4, [strip] * strips), (284, 3, [2 if planar else 1]), (338, 3, [extra] * (c - (3 if photometric == 2 else 1))), (339, 3, [fmt] * c)]
    pack = lambda kind, values: struct.pack("<%d%s" % (len(values), "H" if kind == 3 else "I"), *values)
    extra_at = 8 + 2 + 12 * len(tags) + 4
    sizes = [len(pack(k, v if v is not None else [0] * strips)) for _, k, v in tags]
    pixels_at = extra_at + sum(n for n in sizes if n > 4)
    entries, blobs = b"", b""
    for tag, kind, values in tags:
        raw = pack(kind, values if values is not None else [pixels_at + i * strip for i in range(strips)])
        if len(raw) <= 4:
            entries += struct.pack("<HHI", tag, kind, len(raw) // (2 if kind == 3 else 4)) + raw.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, kind, len(raw) // (2 if kind == 3 else 4), extra_at + len(blobs))
            blobs += raw
    return b"II*\0" + struct.pack("<IH", 8, len(tags)) + entries + struct.pack("<I", 0) + blobs + data


bands = np.arange(5 * 6 * 7).reshape(5, 6, 7) % 251
put("tiff", "bands-chunky.tif", samples_tiff(bands, False, 8, 1))
put("tiff", "bands-planar16.tif", samples_tiff(bands * 200, True, 16, 1))
put("tiff", "bands-float.tif", samples_tiff(bands / 7.0, True, 32, 3))
put("tiff", "rgba.tif", samples_tiff(bands[:4], False, 8, 1, photometric=2, extra=2))  # RGB + unassociated alpha


def nifti(order, code, dtype, values, dims, slope=0.0, inter=0.0, magic=b"n+1\0"):
    """A .nii (NIfTI-1, one file) laid out from nifti1.h's header: 348 bytes, the extension flag, voxels at 352."""
    header = bytearray(352)
    struct.pack_into(order + "i", header, 0, 348)
    struct.pack_into(order + "8h", header, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into(order + "hh", header, 70, code, np.dtype(dtype).itemsize * 8)
    struct.pack_into(order + "8f", header, 76, 1, 0.5, 0.5, 2, 1, 1, 1, 1)
    struct.pack_into(order + "fff", header, 108, 352, slope, inter)
    struct.pack_into(order + "h", header, 254, 1)
    header[344:348] = magic
    return bytes(header) + np.asarray(values, dtype=np.dtype(dtype).newbyteorder(order)).tobytes()


put("nifti", "int16.nii", nifti("<", 4, "i2", np.arange(-6, 6).reshape(2, 2, 3), (3, 2, 2)))
put("nifti", "be_float.nii", nifti(">", 16, "f4", np.linspace(-1, 1, 8), (2, 2, 2)))
put("nifti", "uint16_scaled.nii", nifti("<", 512, "u2", [0, 65535, 3, 4], (2, 2), slope=0.5, inter=-10))
put("nifti", "series.nii", nifti("<", 2, "u1", range(8), (2, 2, 1, 2)))
put("nifti", "pair.hdr", nifti("<", 2, "u1", [], (1, 1, 1), magic=b"ni1\0")[:348])
