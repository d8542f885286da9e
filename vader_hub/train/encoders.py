"""The two networks: the query `encoder` and its exponential moving average, the `momentum_encoder`.

Both come from timm's registry (`timm.create_model(config.model)`, which `import vader_hub` makes
know the `vader_*` names), with split batch norm (see batchnorm.py). `--init` starts the encoder's
trunk from a ResNet checkpoint of any layout `vader_hub.convert` recognises (`load_initial_trunk`).
"""

import copy

import timm
import torch
import torch.nn as nn

from ..convert.trunk import load_trunk, load_trunk_into
from ..weights.names import check_architecture
from .batchnorm import convert_split_batchnorm
from .config import TrainConfig


def build_encoder(config: TrainConfig, device: torch.device) -> nn.Module:
    """The query encoder: a fresh `config.model` with split batch norm, on `device`, in train mode.

    Every weight is timm's initialisation under the current torch seed; `load_initial_trunk` then
    starts the trunk from `config.init` (`state.build_state` does both).

    Raises:
        UnknownModelError: for a name that is not a VADeR model (a ValueError listing them).
    """
    encoder = convert_split_batchnorm(timm.create_model(check_architecture(config.model)), config.bn_group_size)
    return encoder.to(device).train()


def load_initial_trunk(model: nn.Module, path: str, architecture: str) -> str:
    """Load a ResNet checkpoint's trunk into `model`, leaving decoder and projection as they are.

    Returns:
        A short description of what was imported (the detected layout and any dropped keys).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the checkpoint's layout is unknown or its trunk does not fit `architecture`.
    """
    trunk = load_trunk(path, architecture)
    load_trunk_into(model, trunk)
    return trunk.summary()


def build_momentum_encoder(encoder: nn.Module) -> nn.Module:
    """A copy of `encoder` that receives no gradients (it is only ever updated by `momentum_update`)."""
    momentum_encoder = copy.deepcopy(encoder)
    for parameter in momentum_encoder.parameters():
        parameter.requires_grad_(False)
    return momentum_encoder.train()


@torch.no_grad()
def momentum_update(momentum_encoder: nn.Module, encoder: nn.Module, momentum: float) -> None:
    """theta_k <- momentum * theta_k + (1 - momentum) * theta_q, for every parameter (MoCo eq. 2).

    Buffers (batch-norm statistics) are not averaged: each network tracks its own, as in MoCo.
    """
    key_parameters = list(momentum_encoder.parameters())
    query_parameters = list(encoder.parameters())
    if len(key_parameters) != len(query_parameters):
        raise ValueError("momentum_update needs two networks of the same architecture")
    torch._foreach_mul_(key_parameters, momentum)
    torch._foreach_add_(key_parameters, query_parameters, alpha=1.0 - momentum)
