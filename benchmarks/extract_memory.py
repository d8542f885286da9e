"""Peak memory growth of ``extract_dense_features`` on one large image, each size in a fresh process.

    python benchmarks/extract_memory.py             # vader_r50_fpn, 2048x2048, CPU (PYTHONPATH=. if not installed)
    python benchmarks/extract_memory.py --model vader_r18_fpn --sizes 1024 2048 3072

Goal (issue 4): under 4 GB for a 2048x2048 image with vader_r50_fpn on CPU, ``upsample=False``.

Each measurement runs in a new Python process: the model (random weights: the memory does not depend
on them) and a uint8 image are made first, then the kernel's peak-RSS mark is reset (writing 5 to
``/proc/self/clear_refs``, Linux only) and the growth is the peak RSS during the call minus the RSS
before it. The features returned are part of the growth.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def rss_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(model_name: str, size: int, upsample: bool) -> dict:
    """Run one extraction in this process and return its peak RSS growth."""
    import numpy as np
    import timm
    import torch

    from vader_hub.features import extract_dense_features

    model = timm.create_model(model_name).eval()
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    with torch.inference_mode():
        model(torch.rand(1, 3, 64, 64))  # first-call allocations are not the image's
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
    before = rss_kib("VmRSS")
    start = time.perf_counter()
    features = extract_dense_features(image, model, upsample=upsample)
    seconds = time.perf_counter() - start
    growth = rss_kib("VmHWM") - before
    return dict(model=model_name, size=size, upsample=upsample, shape=list(features.shape),
                peak_growth_gib=growth / 2**20, seconds=seconds, threads=torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vader_r50_fpn")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048])
    parser.add_argument("--upsample", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.sizes[0], args.upsample)))
        return
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", "--model", args.model, "--sizes", str(size)]
        output = subprocess.run(command + ["--upsample"] * args.upsample, capture_output=True, text=True)
        if output.returncode != 0:
            raise SystemExit(f"the measuring process failed:\n{output.stderr}")
        result = json.loads(output.stdout.strip().splitlines()[-1])
        print(
            f"{result['model']} {size}x{size} upsample={result['upsample']}: peak growth "
            f"{result['peak_growth_gib']:.2f} GiB, {result['seconds']:.1f} s on {result['threads']} threads, "
            f"features {tuple(result['shape'])}"
        )


if __name__ == "__main__":
    main()
