"""What a run holds between steps: both networks, the optimizer, the scaler and the queue.

`build_state(config, device)` makes a fresh state (seed the RNG first); `wrap_for_speed` puts the
DDP and compiled wrappers in front of the networks. Saving and restoring a state is the
checkpoint's job (checkpoint.py), and what a step does with it is step.py's.
"""

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from .config import TrainConfig
from .distributed import DistributedContext
from .encoders import build_encoder, build_momentum_encoder, load_initial_trunk
from .precision import Precision, enable_fast_cuda_math, resolve_precision
from .queue import KeyQueue


@dataclass(frozen=True)
class TrainState:
    """Everything a step reads and updates (the objects are updated in place; the fields never change).

    Attributes:
        encoder: the query encoder (plain module: its state dict has the vader names).
        momentum_encoder: the key encoder, an EMA of `encoder`.
        encoder_forward: what runs the query forward (`encoder`, or a DDP / compiled wrapper of it).
        momentum_forward: what runs the key forward (`momentum_encoder`, or a compiled wrapper).
        optimizer: SGD over the encoder's parameters.
        scaler: the GradScaler (enabled only for fp16).
        queue: the negatives.
        config: the run's config.
        precision: the autocast settings.
        channels_last: whether inputs are converted to channels_last.
        trunk_init: what `config.init` loaded into the trunk (layout, dropped keys), None without it.
    """

    encoder: nn.Module
    momentum_encoder: nn.Module
    encoder_forward: nn.Module
    momentum_forward: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    queue: KeyQueue
    config: TrainConfig
    precision: Precision
    channels_last: bool
    trunk_init: str | None = None


def build_state(config: TrainConfig, device: torch.device) -> TrainState:
    """Fresh networks, optimizer, scaler and queue for `config` on `device` (seed the RNG first).

    Raises:
        ValueError: for an unknown model, or an `init` checkpoint whose trunk does not fit it.
        FileNotFoundError: if `config.init` does not exist.
    """
    encoder = build_encoder(config, device)
    trunk_init = load_initial_trunk(encoder, config.init, config.model) if config.init is not None else None
    momentum_encoder = build_momentum_encoder(encoder)
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
    if channels_last:
        encoder.to(memory_format=torch.channels_last)
        momentum_encoder.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=config.learning_rate, momentum=config.sgd_momentum,
                                weight_decay=config.weight_decay)
    precision = resolve_precision(config.amp, device)
    queue = KeyQueue(config.queue_size, encoder.num_features, seed=config.seed, device=device)
    return TrainState(encoder=encoder, momentum_encoder=momentum_encoder, encoder_forward=encoder,
                      momentum_forward=momentum_encoder, optimizer=optimizer, scaler=precision.grad_scaler(),
                      queue=queue, config=config, precision=precision, channels_last=channels_last,
                      trunk_init=trunk_init)


def wrap_for_speed(state: TrainState, context: DistributedContext) -> TrainState:
    """The state with DDP (several processes) and `torch.compile` (`config.compile`) in front of the networks.

    On CUDA this also turns on cuDNN autotuning and TF32 (`enable_fast_cuda_math`).
    """
    encoder_forward, momentum_forward = state.encoder_forward, state.momentum_forward
    if context.world_size > 1:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        encoder_forward = DistributedDataParallel(state.encoder, device_ids=device_ids, broadcast_buffers=False)
    if state.config.compile:
        # Training batches have fixed shapes; compiling for static shapes avoids a failure of
        # inductor's dynamic-shape path seen on CPU with torch 2.14.1.
        encoder_forward = torch.compile(encoder_forward, dynamic=False)
        momentum_forward = torch.compile(momentum_forward, dynamic=False)
    if context.device.type == "cuda":
        enable_fast_cuda_math()
    return dataclasses.replace(state, encoder_forward=encoder_forward, momentum_forward=momentum_forward)
