"""Training checkpoints: one plain dict, written atomically, readable with `weights_only=True`.

Keys: `encoder` (the query encoder's state dict under vader parameter names; `vader-hub weights
export` reads this key), `momentum_encoder`, `queue`, `queue_ids`, `queue_ptr`, `optimizer`,
`scaler`, `step` (steps completed), `rng` (every RNG state), `data_position` (epoch and batch of
the next step) and `config` (`dataclasses.asdict` of the TrainConfig; `config["model"]` is the
architecture). A write goes to a temporary file in the same folder, is flushed to disk, and is
then renamed over the old checkpoint, so a crash at any moment leaves the last good checkpoint.
"""

import os
import random
from pathlib import Path

import numpy as np
import torch

from ..fileio import write_through_temporary

CHECKPOINT_NAME = "checkpoint.pt"
REQUIRED_KEYS = ("encoder", "momentum_encoder", "queue", "queue_ids", "queue_ptr", "optimizer", "scaler",
                 "step", "rng", "data_position", "config")


def save_checkpoint(checkpoint: dict[str, object], path: str | os.PathLike) -> Path:
    """Write `checkpoint` to `path` atomically (temporary file, fsync, rename).

    Args:
        checkpoint: the dict described in the module docstring.
        path: destination file; its folder is created if needed.

    Returns:
        The path written.

    Raises:
        ValueError: if a required key is missing.
    """
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint is missing {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_through_temporary(path, lambda temporary: torch.save(checkpoint, temporary))


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the checkpoint inside a run folder.

    Raises:
        FileNotFoundError: if neither exists.
    """
    path = Path(path)
    candidate = path / CHECKPOINT_NAME if path.is_dir() else path
    if not candidate.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(candidate)!r}; pass a run folder that holds "
                                f"{CHECKPOINT_NAME} or the checkpoint file itself")
    return candidate


def load_checkpoint(path: str | os.PathLike) -> dict[str, object]:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU.

    Raises:
        FileNotFoundError: if there is no checkpoint at `path`.
        ValueError: if the file is not a trainer checkpoint (required keys missing).
    """
    path = resolve_checkpoint_path(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint] if isinstance(checkpoint, dict) else REQUIRED_KEYS
    if missing:
        raise ValueError(f"{str(path)!r} is not a vader-hub training checkpoint: missing {list(missing)}")
    return checkpoint


def capture_rng_state() -> dict[str, object]:
    """Every RNG state the process has: torch (CPU and CUDA), Python's `random`, numpy's global one."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "position": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
    }


def restore_rng_state(state: dict[str, object]) -> None:
    """Restore the states `capture_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(_as_tuple(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))


def _as_tuple(value: object) -> object:
    """Python's RNG state is nested tuples; make sure lists that came back are tuples again."""
    return tuple(_as_tuple(item) for item in value) if isinstance(value, (list, tuple)) else value
