"""What re-verifying weights at every load costs: hashing vs deserialising vs the whole load.

    PYTHONPATH=. python benchmarks/verify_cost.py [--repeats 7] [--models vader_r18_fpn vader_r50_fpn]

For each model, its (randomly initialised) weights are exported once, then two ways of getting
them into the model are timed side by side, interleaved A, B, A, B, after one warm-up of each:

- A, vader-hub: read the file's bytes, sha256 them, deserialise those bytes
  (``safetensors.torch.load``), ``load_state_dict``; each part is timed inside each A run;
- B, unverified: ``safetensors.torch.load_file(path)`` (memory-mapped, what timm does with a
  file), ``load_state_dict`` (where B's pages are actually read).

The file is in the page cache after the warm-up, so these are warm-cache numbers; a cold first
load adds the disk read to both. Medians over ``--repeats`` runs.
"""
import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import timm
import torch
from safetensors.torch import load, load_file

import vader_hub  # noqa: F401  (registers the models)
from vader_hub.weights import export_weights


def verified_load(path: Path, model: torch.nn.Module) -> Dict[str, float]:
    """The vader-hub way, with each part timed: read, hash, deserialise, load_state_dict (seconds)."""
    marks = [time.perf_counter()]
    data = path.read_bytes()
    marks.append(time.perf_counter())
    hashlib.sha256(data).hexdigest()
    marks.append(time.perf_counter())
    state = load(data)
    marks.append(time.perf_counter())
    model.load_state_dict(state)
    marks.append(time.perf_counter())
    steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    parts = dict(zip(("read", "hash", "deserialize", "copy"), steps, strict=True))
    return {**parts, "total": marks[-1] - marks[0]}


def unverified_load(path: Path, model: torch.nn.Module) -> float:
    started = time.perf_counter()
    model.load_state_dict(load_file(str(path)))
    return time.perf_counter() - started


def measure(path: Path, model: torch.nn.Module, repeats: int) -> Dict[str, float]:
    """Medians of the interleaved runs, in seconds."""
    verified_load(path, model), unverified_load(path, model)  # warm-up: page cache, allocator
    runs: List[Dict[str, float]] = []
    baseline: List[float] = []
    for _ in range(repeats):
        runs.append(verified_load(path, model))
        baseline.append(unverified_load(path, model))
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    medians["unverified"] = statistics.median(baseline)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=["vader_r18_fpn", "vader_r50_fpn"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.repeats} interleaved runs")
    print("| model | file MB | read ms | sha256 ms | deserialize ms | load_state_dict ms | A: verified ms "
          "| B: unverified ms | A / B | sha256 share of A |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            model = timm.create_model(name)
            path = export_weights(model.state_dict(), name, Path(folder) / name).weights
            m = measure(path, model, args.repeats)
            ms = {key: f"{value * 1e3:.1f}" for key, value in m.items()}
            print(f"| {name} | {path.stat().st_size / 1e6:.1f} | {ms['read']} | {ms['hash']} | {ms['deserialize']} "
                  f"| {ms['copy']} | {ms['total']} | {ms['unverified']} | {m['total'] / m['unverified']:.2f} "
                  f"| {m['hash'] / m['total']:.0%} |")


if __name__ == "__main__":
    main()
