"""The training state: both networks, optimizer, scaler, queue; building it, saving it, restoring it.

`build_state(config, device)` makes a fresh state; `checkpoint_dict` turns a state into the
checkpoint described in checkpoint.py and `load_state` restores one; `check_resume_config` refuses
a resume whose settings would change what the remaining steps compute.
"""

import dataclasses
import functools
import subprocess
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .checkpoint import capture_rng_state, restore_rng_state
from .config import TrainConfig
from .encoders import build_encoder, build_momentum_encoder
from .queue import KeyQueue

# Fields a resumed run may change: they do not alter what the remaining steps compute, except
# `steps`, which re-plans the cosine schedule from the resumed step on (a warning says so).
RESUMABLE_CHANGES = frozenset({"out_dir", "data", "steps", "num_workers", "log_every", "checkpoint_every",
                               "export", "weights_tag", "weights_license", "compile"})


@dataclass
class TrainState:
    """Everything a step reads and updates.

    Attributes:
        encoder: the query encoder (plain module: its state dict has the vader names).
        momentum_encoder: the key encoder, an EMA of `encoder`.
        encoder_forward: what runs the query forward (`encoder`, or a DDP / compiled wrapper of it).
        momentum_forward: what runs the key forward (`momentum_encoder`, or a compiled wrapper).
        optimizer: SGD over the encoder's parameters.
        scaler: the GradScaler (enabled only for fp16).
        queue: the negatives.
        config: the run's config.
        autocast_dtype: the autocast dtype, or None for full precision.
        channels_last: whether inputs are converted to channels_last.
    """

    encoder: nn.Module
    momentum_encoder: nn.Module
    encoder_forward: nn.Module
    momentum_forward: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    queue: KeyQueue
    config: TrainConfig
    autocast_dtype: torch.dtype | None
    channels_last: bool

    def autocast(self, device: torch.device):
        """The one autocast context of the run (a no-op for full precision)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)


def check_resume_config(config: TrainConfig, saved: TrainConfig) -> None:
    """Refuse to resume with settings that would change what the remaining steps compute.

    Raises:
        ValueError: naming each differing field with both values.
    """
    differing = [f"{name}: checkpoint {getattr(saved, name)!r}, now {getattr(config, name)!r}"
                 for name in (f.name for f in dataclasses.fields(TrainConfig))
                 if name not in RESUMABLE_CHANGES and getattr(saved, name) != getattr(config, name)]
    if differing:
        raise ValueError("resuming continues a run exactly, but these settings differ from the checkpoint's: "
                         + "; ".join(differing) + ". Drop these overrides, or start a new run (--init reuses weights).")
    if config.steps != saved.steps:
        warnings.warn(f"resuming with steps={config.steps} instead of {saved.steps}: the warm-up and cosine "
                      "schedule are re-planned for the new total, so the learning rate changes from the resumed "
                      "step on; keep steps unchanged to continue the run exactly", stacklevel=2)


def resolve_autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `amp` ("auto": bf16 on CUDA, full precision on CPU), None for fp32."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[amp]


def build_state(config: TrainConfig, device: torch.device) -> TrainState:
    """Fresh networks, optimizer, scaler and queue for `config` on `device` (seed the RNG first)."""
    encoder = build_encoder(config, device)
    momentum_encoder = build_momentum_encoder(encoder)
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
    if channels_last:
        encoder.to(memory_format=torch.channels_last)
        momentum_encoder.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=config.learning_rate, momentum=config.sgd_momentum,
                                weight_decay=config.weight_decay)
    autocast_dtype = resolve_autocast_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    queue = KeyQueue(config.queue_size, encoder.num_features, seed=config.seed, device=device)
    return TrainState(encoder=encoder, momentum_encoder=momentum_encoder, encoder_forward=encoder,
                      momentum_forward=momentum_encoder, optimizer=optimizer, scaler=scaler, queue=queue,
                      config=config, autocast_dtype=autocast_dtype, channels_last=channels_last)


def load_state(state: TrainState, checkpoint: dict) -> None:
    """Restore networks, optimizer, scaler, queue and RNG states from a checkpoint."""
    state.encoder.load_state_dict(checkpoint["encoder"])
    state.momentum_encoder.load_state_dict(checkpoint["momentum_encoder"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    if checkpoint["scaler"]:
        state.scaler.load_state_dict(checkpoint["scaler"])
    state.queue.load_state_dict(checkpoint)
    restore_rng_state(checkpoint["rng"])


def checkpoint_dict(state: TrainState, step: int, steps_per_epoch: int, data_fingerprint: str) -> dict[str, object]:
    """The checkpoint after `step` completed steps (see checkpoint.py for the keys)."""
    epoch, batch = divmod(step, steps_per_epoch)
    return {"encoder": state.encoder.state_dict(), "momentum_encoder": state.momentum_encoder.state_dict(),
            **state.queue.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scaler": state.scaler.state_dict(), "step": step, "rng": capture_rng_state(),
            "data_position": {"epoch": epoch, "batch": batch, "steps_per_epoch": steps_per_epoch,
                              "data_fingerprint": data_fingerprint},
            "config": dataclasses.asdict(state.config), "code_version": code_version()}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, with the git commit when running from a checkout."""
    from .. import __version__

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                                capture_output=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__
