"""LibTorch 1.13's in-place ReLU against threshold_(x, 0, 0) in fp32 and bf16 (docs/benchmarks.md, "bf16 ReLU by
threshold_"): channels-last activations of FCN-8s VGG16 at 500² (reference geometry), 2 threads, best of 5, ms.
Also checks the two give the same values.

    /usr/bin/python3 bench/relu_bf16.py"""
import time

import torch

torch.set_num_threads(2)
for dtype in (torch.float32, torch.bfloat16):
    for shape in ((1, 64, 698, 698), (1, 128, 349, 349), (1, 512, 44, 44)):
        x = torch.randn(*shape).to(dtype).contiguous(memory_format=torch.channels_last)
        copies = [x.clone() for _ in range(5)]

        def best(op):
            ms = []
            for y in copies:
                y.copy_(x)
                start = time.perf_counter()
                op(y)
                ms.append((time.perf_counter() - start) * 1e3)
            return min(ms)

        relu = best(torch.relu_)
        threshold = best(lambda y: torch.nn.functional.threshold_(y, 0.0, 0.0))
        same = torch.equal(torch.relu(x), torch.nn.functional.threshold(x, 0.0, 0.0))
        print(f"{str(dtype):15} {str(list(shape)):18} relu_ {relu:6.2f}  threshold_ {threshold:6.2f}  same values: {same}")
