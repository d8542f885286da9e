"""The weights files commands read: a vader-hub safetensors file, a ``torch.save``d state dict or a trainer checkpoint.

Each format has its one reader in the layer that owns it: checkpoint files in general in
:mod:`vader_hub.convert.files` (never unpickling code), trainer checkpoints in
:mod:`vader_hub.train.checkpoint`; this module only picks the reader.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ..convert.files import read_checkpoint
from ..train.checkpoint import is_trainer_checkpoint, trained_weights_of
from ..weights.errors import NotAWeightsFileError


@dataclass(frozen=True)
class WeightsInput:
    """A state dict a command was given, with what its file says about itself.

    Attributes:
        state_dict: Parameter name -> tensor.
        architecture: The architecture the file records, or None.
        provenance: A trainer checkpoint's config, data, steps and code version; empty for other files.
    """

    state_dict: Dict[str, torch.Tensor]
    architecture: Optional[str]
    provenance: Dict[str, Any] = field(default_factory=dict)


def read_weights_input(path: Path) -> WeightsInput:
    """Read a safetensors or ``torch.save``d state dict (bare or under ``state_dict``), or a trainer checkpoint.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        NotAWeightsFileError: If the file holds none of these.
        ValueError: If it cannot be read safely (see :func:`vader_hub.convert.files.read_checkpoint`).
    """
    checkpoint = read_checkpoint(path)
    if is_trainer_checkpoint(checkpoint.content):
        trained = trained_weights_of(checkpoint.content, path)
        return WeightsInput(trained.state_dict, trained.architecture, trained.provenance)
    content = checkpoint.content
    state_dict = content["state_dict"] if _is_state_dict(content.get("state_dict")) else content
    if not _is_state_dict(state_dict):
        raise NotAWeightsFileError(f"{path} holds neither a state dict (name -> tensor) nor a trainer checkpoint")
    return WeightsInput(dict(state_dict), checkpoint.metadata.get("architecture"))


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(torch.is_tensor(v) for v in value.values())
