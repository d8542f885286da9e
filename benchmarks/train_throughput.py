"""Training throughput on a CUDA GPU: images/s, peak memory and achieved TFLOP/s, beside the GPU's matmul rate.

    PYTHONPATH=. python benchmarks/train_throughput.py                    # vader_r50_fpn, 224 px, batch 256
    PYTHONPATH=. python benchmarks/train_throughput.py --batch-size 128 --no-compile --json out.json
    PYTHONPATH=. python benchmarks/train_throughput.py --device cpu --model vader_r18_fpn --image-size 64 \\
        --batch-size 8 --queue-size 1024 --steps 2 --no-compile         # a dry run of the code path

Goal (issue 5): with bf16 autocast and channels_last, at least 30% of the GPU's own bf16 matmul rate
(measured in the same run: a large square bf16 matmul). Without CUDA (and without `--device cpu`)
it prints that it was skipped and exits 0.

Data is synthetic and already on the device (views, matched cells and key points drawn at random),
so the numbers are the trainer's compute alone: the real loader is measured by train_step.py.
A step is the trainer's own `train_step` (forward query, forward key, loss, backward, optimizer and
EMA, queue), with the trainer's own `torch.compile` wrapping (`wrap_for_speed`). FLOPs per step are
counted once with torch.utils.flop_counter on the eager step.
"""

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vader_hub.models.cells import output_size
from vader_hub.train.config import TrainConfig
from vader_hub.train.distributed import setup_distributed
from vader_hub.train.precision import enable_fast_cuda_math
from vader_hub.train.state import TrainState, build_state, wrap_for_speed
from vader_hub.train.step import DeviceBatch, train_step

LEARNING_RATE = 1e-3  # small and constant: the schedule costs nothing, and random batches must not diverge


def synthetic_batch(config: TrainConfig, device: torch.device, channels_last: bool) -> DeviceBatch:
    """Random normalised views and random (valid) correspondences, on `device`."""
    generator = torch.Generator().manual_seed(0)
    height, width = output_size(config.image_size, config.image_size)
    shape = (config.batch_size, 3, config.image_size, config.image_size)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    views = [torch.randn(shape, generator=generator).to(device).contiguous(memory_format=layout) for _ in range(2)]
    cells = torch.stack([torch.randperm(height * width, generator=generator)[:config.pairs_per_image]
                         for _ in range(config.batch_size)])  # (B, P)
    points = torch.rand(config.batch_size, config.pairs_per_image, 2, generator=generator)  # (B, P, 2)
    points = points * torch.tensor([width - 1, height - 1])
    return DeviceBatch(query_views=views[0], key_views=views[1], query_cells=cells.to(device),
                       key_points=points.to(device), image_ids=torch.arange(config.batch_size, device=device),
                       load_failures=torch.zeros(config.batch_size, dtype=torch.long, device=device))


def step_flops(state: TrainState, batch: DeviceBatch) -> int:
    """FLOPs of one eager step (matmuls and convolutions, as torch's flop counter counts them)."""
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(state, batch, 0, LEARNING_RATE)
    return counter.get_total_flops()


def median_step_seconds(state: TrainState, batch: DeviceBatch, warmup: int, steps: int, sync) -> float:
    """Median wall time of `steps` steps after `warmup` (compilation happens during the warm-up)."""
    times = []
    for step in range(warmup + steps):
        sync()
        start = time.perf_counter()
        train_step(state, batch, step, LEARNING_RATE)
        sync()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_tflops(device: torch.device, dtype: torch.dtype, size: int, sync) -> float:
    """The device's rate on a square matmul of `size` in `dtype` (median of 10 after a warm-up), TFLOP/s."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    times = []
    for repeat in range(13):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        if repeat >= 3:
            times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e12


def measure(config: TrainConfig, device: torch.device, compile_model: bool, warmup: int, steps: int) -> dict:
    """Images/s, peak memory and achieved TFLOP/s of the trainer on `device`."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    state = build_state(dataclasses.replace(config, compile=compile_model), device)
    batch = synthetic_batch(config, device, state.channels_last)
    flops = step_flops(state, batch)  # eager: the compiled wrappers come next
    state = wrap_for_speed(state, setup_distributed(device.type))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_step_seconds(state, batch, warmup, steps, sync)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"compile": compile_model, "seconds_per_step": seconds, "images_per_second": config.batch_size / seconds,
            "tflop_per_step": flops / 1e12, "achieved_tflops": flops / seconds / 1e12, "peak_memory_gib": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="vader_r50_fpn")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--queue-size", type=int, default=TrainConfig.queue_size)
    parser.add_argument("--amp", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--no-compile", action="store_true", help="measure eager only")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("train_throughput: skipped, no CUDA device (this benchmark measures GPU training; "
              "--device cpu runs the code path only)")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda":
        enable_fast_cuda_math()
    config = TrainConfig(model=args.model, image_size=args.image_size, batch_size=args.batch_size,
                         bn_group_size=min(32, args.batch_size), queue_size=args.queue_size, amp=args.amp,
                         channels_last=device.type == "cuda", steps=10**6, export=False)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    matmul_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.amp]
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "config": {k: v for k, v in dataclasses.asdict(config).items()
                         if k in ("model", "image_size", "batch_size", "queue_size", "amp", "channels_last")},
              "matmul_tflops": matmul_tflops(device, matmul_dtype, args.matmul_size, sync), "runs": []}
    for compile_model in ([False] if args.no_compile else [False, True]):
        run = measure(config, device, compile_model, args.warmup, args.steps)
        run["share_of_matmul_rate"] = run["achieved_tflops"] / result["matmul_tflops"]
        result["runs"].append(run)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
