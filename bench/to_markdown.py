"""Turns `fcn bench --json` outputs into the Markdown rows of docs/benchmarks.md.

Usage: python3 bench/to_markdown.py RESULT.json...   (any Python 3; standard library only)
"""
import json
import sys


def fmt(ms):
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def main():
    print("| workload | threads | fcn ms/image | GFLOP/s (of conv peak) | PyTorch | fcn/PyTorch "
          "| PyTorch, tuned malloc | fcn/tuned | OpenCV DNN | fcn/OpenCV | peak RSS fcn / PyTorch (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        r = json.load(open(path))
        h, w = r["size"]
        name = f'{r["model"]} {r["mode"]} {r["dtype"]} {h}x{w} batch {r["batch"]}'
        peers = r["peers"]
        for run in r["runs"]:
            t = str(run["threads"])
            cells = [name, t, fmt(run["ms_per_image"]),
                     f'{run["gflops_per_s"]:.0f} ({100 * run["gflops_per_s"] / r["conv_gflops_per_s"]:.0f}%)']
            for peer in ("pytorch", "pytorch_tuned_malloc", "opencv_dnn"):
                if peer in peers and t in peers[peer].get("by_threads", {}):
                    cells += [fmt(peers[peer]["by_threads"][t]), f'{run["ratio"][peer]:.2f}']
                else:
                    cells += ["-", "-"]
            rss = f'{r["peak_rss_mib"]:.0f}'
            if "pytorch" in peers:
                rss += f' / {peers["pytorch"]["peak_rss_mib"]:.0f}'
            cells.append(rss)
            print("| " + " | ".join(cells) + " |")
    r = json.load(open(sys.argv[1]))
    print(f'\nMachine peaks measured in the first run: SGEMM {r["sgemm_gflops_per_s"]:.0f} GFLOP/s, '
          f'3x3 conv {r["conv_gflops_per_s"]:.0f} GFLOP/s ({r["dtype"]}); CPU allocator: {r["cpu_allocator"]}.')


if __name__ == "__main__":
    main()
