"""Where a training step's time goes, phase by phase, with the trainer's own code and default loader.

    PYTHONPATH=. python benchmarks/train_step.py                          # vader_r18_fpn, 128 px, batch 32, CPU
    PYTHONPATH=. python benchmarks/train_step.py --image-size 96 --batch-size 16
    PYTHONPATH=. python benchmarks/train_step.py --data /tmp/photos --steps 10 --json out.json

Goals (issue 5), on CPU with vader_r18_fpn at 128 px, batch 32 and the default queue (65,536 keys):
everything beyond the networks' forward and backward (data, loss, queue, optimizer and EMA) takes
at most 10% of the step, and waiting for data at most 5%, with the default loader settings for the
machine. The loader workers' CPU time is reported too: on 2 cores they compete with the model.

Phases are the `torch.profiler.record_function` ranges of the trainer's own `train_step`
(forward query; forward key: gather, shuffle, forward, bilinear sampling; loss; statistics, the
loss all-reduce; backward; optimizer and EMA; queue), plus `data`: waiting for the loader, then the
copy and normalisation (`prepare_batch`). On CPU a phase's time is its range's wall time; on CUDA it
is the GPU time of the kernels it launched (`data` stays the host's wait). The first `--warmup`
steps are not profiled; the report gives medians over the profiled steps. Without `--data`,
scikit-image's bundled photos are written as 512-px JPEGs into a temporary folder, so decoding
costs what real photos cost.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from vader_hub.train.config import TrainConfig
from vader_hub.train.data import ResumableSampler, ViewPairDataset, build_loader, default_num_workers, list_images
from vader_hub.train.schedule import learning_rate_at
from vader_hub.train.state import build_state
from vader_hub.train.step import STEP_PHASES, prepare_batch, train_step

PHASES = ("data", *STEP_PHASES)
NETWORK_PHASES = ("forward_query", "forward_key", "backward")
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "retina", "colorwheel", "camera", "coins", "moon", "page", "text", "clock", "grass", "brick",
                  "gravel", "cat", "horse", "logo")


def sample_photos(folder: Path, count: int) -> Path:
    """Write `count` JPEGs (512 px short side, flipped and rotated copies of scikit-image's photos)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    for index in range(count):
        pixels = np.asarray(getattr(skimage.data, SKIMAGE_PHOTOS[index % len(SKIMAGE_PHOTOS)])())
        image = Image.fromarray(pixels.astype(np.uint8) * (255 if pixels.dtype == bool else 1)).convert("RGB")
        image = image.rotate(90 * (index // len(SKIMAGE_PHOTOS)), expand=True)
        scale = 512 / min(image.size)
        image.resize((round(image.size[0] * scale), round(image.size[1] * scale))).save(folder / f"{index}.jpg")
    return folder


def worker_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes (Linux /proc), 0 for those that are gone."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def phase_seconds(profiler: profile, on_gpu: bool) -> dict[str, list[float]]:
    """Each phase's time in every profiled step: its range's wall time, or on the GPU its kernels' time."""
    times = {phase: [] for phase in PHASES}
    for event in profiler.events():
        if event.name in times and event.device_type == DeviceType.CPU:
            gpu = on_gpu and event.name != "data"
            times[event.name].append((event.device_time_total if gpu else event.cpu_time_total) / 1e6)
    return times


def measure(config: TrainConfig, steps: int, warmup: int) -> dict:
    """Run `warmup + steps` training steps, profiling the last `steps`; return per-phase medians and shares."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(config.seed)
    state = build_state(config, device)
    images = list_images(config.data)
    sampler = ResumableSampler(len(images.paths), config.batch_size, 1, 0, config.seed)
    loader = build_loader(ViewPairDataset(images, config), sampler, config, 1, pin_memory=device.type == "cuda")
    sampler.set_steps(0, warmup + steps)
    iterator, clock = iter(loader), time.perf_counter
    pids = [w.pid for w in getattr(iterator, "_workers", [])]

    def run_step(step: int) -> None:
        with record_function("data"):
            batch = prepare_batch(next(iterator), device, state.encoder.pretrained_cfg, state.channels_last)
        train_step(state, batch, step, learning_rate_at(step, config))

    for step in range(warmup):
        run_step(step)
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    worker_start, main_start, wall_start = worker_cpu_seconds(pids), time.process_time(), clock()
    with profile(activities=activities) as profiler:
        for step in range(warmup, warmup + steps):
            run_step(step)
        sync()
    wall = clock() - wall_start
    times = phase_seconds(profiler, on_gpu=device.type == "cuda")
    medians = {phase: statistics.median(values) for phase, values in times.items()}
    step_time = sum(medians.values())
    return {"device": device.type, "threads": torch.get_num_threads(), "workers": loader.num_workers,
            "model": config.model, "image_size": config.image_size, "batch_size": config.batch_size,
            "queue_size": config.queue_size, "timed_steps": steps, "seconds_per_step": step_time,
            "images_per_second": config.batch_size / step_time,
            "phases_s": medians, "phase_share": {p: t / step_time for p, t in medians.items()},
            "non_network_share": 1 - sum(medians[p] for p in NETWORK_PHASES) / step_time,
            "data_wait_share": medians["data"] / step_time,
            "main_cpu_s_per_step": (time.process_time() - main_start) / steps,
            "worker_cpu_s_per_step": (worker_cpu_seconds(pids) - worker_start) / steps,
            "wall_s_per_step": wall / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vader_r18_fpn")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--queue-size", type=int, default=TrainConfig.queue_size)
    parser.add_argument("--num-workers", type=int, default=None, help="default: the trainer's own choice")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data", help="a folder of photos (default: scikit-image's, written as JPEGs)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or str(sample_photos(Path(scratch), max(40, 2 * args.batch_size)))
        config = TrainConfig(model=args.model, image_size=args.image_size, batch_size=args.batch_size,
                             bn_group_size=min(32, args.batch_size), queue_size=args.queue_size, data=data,
                             num_workers=args.num_workers, steps=1000, export=False)
        result = measure(config, args.steps, args.warmup)
    result["default_workers_here"] = default_num_workers(1)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
