"""Trainer checkpoints: the one definition of their format, with its one writer and its one reader.

A checkpoint is a plain dict, readable with `torch.load(weights_only=True)`:

    encoder            the query encoder's state dict under vader parameter names (`trunk.*`, ...)
    momentum_encoder   the key encoder's state dict
    queue              the queue's state: {"keys": (K, C), "ids": (K,), "pointer": int}
    optimizer, scaler  their state dicts
    step               steps completed
    rng                every RNG state of the process (`capture_rng_state`)
    data_position      epoch and batch of the next step, steps_per_epoch and the data's fingerprint
    config             `dataclasses.asdict` of the TrainConfig; `config["model"]` is the architecture
    code_version       the code that wrote it (provenance.py)

`assemble_checkpoint` builds one from a training state and `restore_state` puts one back.
Other layers never parse a checkpoint: `is_trainer_checkpoint` tells them which files are one and
`read_trained_weights` gives them its trained network with its provenance (`vader_hub.convert`
only detects the `encoder` key, its layout "vader-hub-trainer"). Checkpoints written before the
queue had its own entry (`queue`, `queue_ids`, `queue_ptr` at the top level) are still read, so
existing runs resume. A write goes to a temporary file in the same folder, is flushed to disk, and
is then renamed over the old checkpoint, so a crash at any moment leaves the last good checkpoint;
the temporary file of a write killed outright is removed by the next save (`remove_stale_temporaries`).
Reading goes through `vader_hub.convert.files.read_torch_file`, which never unpickles code.
"""

import dataclasses
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..convert.files import read_torch_file
from ..fileio import remove_stale_temporaries, write_through_temporary
from ..weights.errors import NotAWeightsFileError
from .provenance import code_version
from .state import TrainState

CHECKPOINT_NAME = "checkpoint.pt"
REQUIRED_KEYS = ("encoder", "momentum_encoder", "queue", "optimizer", "scaler", "step", "rng", "data_position",
                 "config")
# The first layout kept the queue's keys in `queue` and these two beside it at the top level.
FLAT_QUEUE_KEYS = ("queue_ids", "queue_ptr")
TRAINER_KEYS = ("encoder", "config", "step")  # what marks a trainer checkpoint, and all its trained network needs


@dataclass(frozen=True)
class TrainedWeights:
    """The trained (query) network of a checkpoint, as the weights layer exports it.

    Attributes:
        state_dict: the encoder's tensors under vader parameter names.
        architecture: the registered architecture, `config["model"]`.
        provenance: `config`, `data` (the config's data source), `steps` and `code_version`.
    """

    state_dict: dict[str, torch.Tensor]
    architecture: str
    provenance: dict[str, object]


def assemble_checkpoint(state: TrainState, step: int, steps_per_epoch: int,
                        data_fingerprint: str) -> dict[str, object]:
    """The checkpoint of `state` after `step` completed steps (keys in the module docstring)."""
    epoch, batch = divmod(step, steps_per_epoch)
    return {"encoder": state.encoder.state_dict(), "momentum_encoder": state.momentum_encoder.state_dict(),
            "queue": state.queue.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scaler": state.scaler.state_dict(), "step": step, "rng": capture_rng_state(),
            "data_position": {"epoch": epoch, "batch": batch, "steps_per_epoch": steps_per_epoch,
                              "data_fingerprint": data_fingerprint},
            "config": dataclasses.asdict(state.config), "code_version": code_version()}


def restore_state(state: TrainState, checkpoint: dict[str, object]) -> None:
    """Restore networks, optimizer, scaler, queue and RNG states from a `load_checkpoint` result."""
    state.encoder.load_state_dict(checkpoint["encoder"])
    state.momentum_encoder.load_state_dict(checkpoint["momentum_encoder"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    if checkpoint["scaler"]:
        state.scaler.load_state_dict(checkpoint["scaler"])
    state.queue.load_state_dict(checkpoint["queue"])
    restore_rng_state(checkpoint["rng"])


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
    remove_stale_temporaries(path)
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
    """Read a checkpoint (a file or a run folder) with `torch.load(weights_only=True)` onto the CPU.

    Returns:
        The checkpoint in the current layout (a flat queue of an older checkpoint is nested).

    Raises:
        FileNotFoundError: if there is no checkpoint at `path`.
        ValueError: in one line, if the file is not a trainer checkpoint: empty, truncated, another
            format, pickled objects `weights_only` refuses (never unpickled), or required keys missing.
    """
    path = resolve_checkpoint_path(path)
    checkpoint = read_torch_file(path)
    missing = _missing_keys(checkpoint, REQUIRED_KEYS)
    if not missing and not isinstance(checkpoint["queue"], dict):
        missing = _missing_keys(checkpoint, FLAT_QUEUE_KEYS)
    if missing:
        raise ValueError(f"{str(path)!r} is not a vader-hub training checkpoint: missing {missing}")
    if not isinstance(checkpoint["config"], dict) or not isinstance(checkpoint["step"], int):
        raise ValueError(f"{str(path)!r} is not a vader-hub training checkpoint: its 'config' must be a dict "
                         "and its 'step' an integer")
    return _with_nested_queue(checkpoint)


def read_trained_weights(path: str | os.PathLike) -> TrainedWeights:
    """The trained network of a trainer checkpoint (a file or a run folder), with its provenance.

    Args:
        path: a `checkpoint.pt`, or the run folder that holds it.

    Returns:
        The `encoder` state dict, the architecture `config["model"]`, and the provenance
        `{"config", "data": config["data"], "steps": step, "code_version"}`.

    Raises:
        FileNotFoundError: if there is no checkpoint at `path`.
        NotAWeightsFileError: if the file cannot be read with `weights_only=True`, lacks `encoder`,
            `config` or `step`, has no `config["model"]` name, or its encoder is not a dict of tensors.
    """
    path = resolve_checkpoint_path(path)
    try:
        checkpoint = read_torch_file(path)
    except ValueError as error:
        raise NotAWeightsFileError(str(error)) from error
    return trained_weights_of(checkpoint, path)


def trained_weights_of(checkpoint: object, origin: str | os.PathLike) -> TrainedWeights:
    """The trained network of a trainer checkpoint already read (see :func:`read_trained_weights`).

    Args:
        checkpoint: the file's content.
        origin: where it was read from, for messages.

    Returns:
        The `encoder` state dict, the architecture and the provenance.

    Raises:
        NotAWeightsFileError: as :func:`read_trained_weights`, for content that is not a trainer checkpoint.
    """
    missing = _missing_keys(checkpoint, TRAINER_KEYS)
    if missing:
        raise NotAWeightsFileError(f"{origin} is not a vader-hub trainer checkpoint: missing {missing}")
    config = checkpoint["config"]
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        raise NotAWeightsFileError(f"{origin}: a trainer checkpoint's 'config' must be a dict with a 'model' name")
    encoder = checkpoint["encoder"]
    if not (isinstance(encoder, dict) and encoder and all(torch.is_tensor(v) for v in encoder.values())):
        raise NotAWeightsFileError(f"{origin}: a trainer checkpoint's 'encoder' must be a state dict of tensors")
    provenance = {"config": config, "data": config.get("data"), "steps": int(checkpoint["step"]),
                  "code_version": checkpoint.get("code_version", config.get("code_version"))}
    return TrainedWeights(state_dict=dict(encoder), architecture=config["model"], provenance=provenance)


def is_trainer_checkpoint(content: object) -> bool:
    """Whether a loaded file's content is a trainer checkpoint (a dict with `encoder`, `config` and `step`)."""
    return not _missing_keys(content, TRAINER_KEYS)


def _missing_keys(checkpoint: object, keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if key not in checkpoint] if isinstance(checkpoint, dict) else list(keys)


def _with_nested_queue(checkpoint: dict[str, object]) -> dict[str, object]:
    """The checkpoint with the queue as one entry (older checkpoints spread it over three top-level keys)."""
    if isinstance(checkpoint["queue"], dict):
        return checkpoint
    nested = {key: value for key, value in checkpoint.items() if key not in FLAT_QUEUE_KEYS}
    nested["queue"] = {"keys": checkpoint["queue"], "ids": checkpoint["queue_ids"],
                       "pointer": checkpoint["queue_ptr"]}
    return nested


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
