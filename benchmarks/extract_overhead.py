"""Overhead of ``extract_dense_features`` over the bare network, measured side by side.

    PYTHONPATH=. python benchmarks/extract_overhead.py                   # vader_r50_fpn, 5 rounds
    PYTHONPATH=. python benchmarks/extract_overhead.py --model vader_r18_fpn --rounds 7

Goals (issue 4):

- *tensors*: a batch of 16 already-sized float tensors (16x3x224x224 in [0, 1]) costs at most 1.05x
  the bare forward of the same, already normalised batch under ``torch.inference_mode``;
- *PIL*: 16 PIL images of mixed sizes cost at most 1.25x torchvision's own preprocessing of them
  (``PILToTensor``, ``ConvertImageDtype``, ``Normalize``) plus the bare forward of each.

A and B alternate (A, B, A, B, ...) after one warm-up of each; the ratio is of the medians of the
rounds. Random weights (speed does not depend on them); CPU threads as torch sets them.
"""
import argparse
import statistics
import time
from typing import Callable, List

import numpy as np
import timm
import torch
from PIL import Image
from torchvision import transforms

from vader_hub.features import extract_dense_features


def interleaved_medians(candidate: Callable[[], object], baseline: Callable[[], object], rounds: int) -> dict:
    """Median wall and CPU seconds of ``candidate`` and ``baseline``, timed alternately after a warm-up each.

    CPU time (``time.process_time``, all threads of this process) is reported beside wall time because on a
    shared machine other processes stretch wall time; with ``--threads 1`` it is the cleaner measure.
    """
    candidate(), baseline()
    times = {(name, clock): [] for name in ("candidate", "baseline") for clock in ("wall", "cpu")}
    for _ in range(rounds):
        for name, function in (("candidate", candidate), ("baseline", baseline)):
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            times[name, "wall"].append(time.perf_counter() - wall)
            times[name, "cpu"].append(time.process_time() - cpu)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return dict(
        medians=medians,
        wall_ratio=medians["candidate", "wall"] / medians["baseline", "wall"],
        cpu_ratio=medians["candidate", "cpu"] / medians["baseline", "cpu"],
    )


def tensor_case(model: torch.nn.Module, rounds: int) -> dict:
    batch = torch.rand(16, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    normalise = transforms.Normalize(model.pretrained_cfg["mean"], model.pretrained_cfg["std"])
    ready = normalise(batch)

    def bare() -> torch.Tensor:
        with torch.inference_mode():
            return model(ready)

    return interleaved_medians(lambda: extract_dense_features(batch, model, batch_size=16), bare, rounds)


def pil_images(count: int) -> List[Image.Image]:
    rng = np.random.default_rng(0)
    sizes = [(int(rng.integers(160, 320)), int(rng.integers(160, 320))) for _ in range(count)]
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for height, width in sizes]


def pil_case(model: torch.nn.Module, rounds: int) -> dict:
    images = pil_images(16)
    preprocess = transforms.Compose([
        transforms.PILToTensor(),
        transforms.ConvertImageDtype(torch.float32),
        transforms.Normalize(model.pretrained_cfg["mean"], model.pretrained_cfg["std"]),
    ])

    def torchvision_then_bare() -> list:
        with torch.inference_mode():
            return [model(preprocess(image)[None]) for image in images]

    return interleaved_medians(lambda: extract_dense_features(images, model), torchvision_then_bare, rounds)


CASES = (
    ("16 float tensors 224x224", tensor_case, 1.05),
    ("16 PIL images, mixed sizes", pil_case, 1.25),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vader_r50_fpn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = timm.create_model(args.model).eval()
    print(f"{args.model}, {torch.get_num_threads()} threads, medians of {args.rounds} interleaved rounds")
    for name, case, goal in CASES:
        result = case(model, args.rounds)
        medians = result["medians"]
        print(
            f"{name}: extract {medians['candidate', 'wall']:.3f} s wall / {medians['candidate', 'cpu']:.3f} s cpu, "
            f"baseline {medians['baseline', 'wall']:.3f} s / {medians['baseline', 'cpu']:.3f} s; "
            f"ratio wall {result['wall_ratio']:.3f}, cpu {result['cpu_ratio']:.3f} (goal <= {goal})"
        )


if __name__ == "__main__":
    main()
