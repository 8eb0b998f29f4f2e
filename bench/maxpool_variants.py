"""LibTorch 1.13's max_pool2d (2x2, stride 2) against the same max taken by torch.maximum of strided views: of the
four quarters, or of row pairs and then column pairs (docs/benchmarks.md, "The ReLU after the pool"): channels-last
activations at VGG16's pool inputs for a 500² image in the reference geometry (even sides only: ceil mode on odd
sides would need edge rows and columns of their own), 1 thread, mean of 10 after 2 warm-ups, ms; checks the values.
glibc's allocator is held from returning memory, as fcn's is, so page faults do not decide the timings:

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1000000000 \\
        /usr/bin/python3 bench/maxpool_variants.py"""
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def ms(op, n=10):
    op(), op()
    start = time.perf_counter()
    for _ in range(n):
        op()
    return (time.perf_counter() - start) / n * 1e3


def quarters(x):
    a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


def rows_then_columns(x):
    r = torch.maximum(x[:, :, 0::2, :], x[:, :, 1::2, :])
    return torch.maximum(r[:, :, :, 0::2], r[:, :, :, 1::2])


with torch.inference_mode():
    for dtype in (torch.float32, torch.bfloat16):
        totals = {}
        for shape in ((1, 64, 698, 698), (1, 128, 348, 348), (1, 256, 174, 174), (1, 512, 88, 88)):
            x = torch.randn(*shape).to(dtype).contiguous(memory_format=torch.channels_last)
            expected = F.max_pool2d(x, 2, 2, 0, 1, True)
            for name, op in (("max_pool2d", lambda: F.max_pool2d(x, 2, 2, 0, 1, True)), ("quarters", lambda: quarters(x)),
                             ("rows, columns", lambda: rows_then_columns(x))):
                assert torch.equal(op(), expected), name
                t = ms(op)
                totals[name] = totals.get(name, 0) + t
                print(f"{str(dtype):15} {str(list(shape)):20} {name:14} {t:7.2f} ms")
        print(f"{str(dtype):15} all four shapes: " + ", ".join(f"{k} {v:.1f} ms" for k, v in totals.items()))
