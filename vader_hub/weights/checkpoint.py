"""Reading what ``vader-hub weights export`` accepts: a state dict or a trainer checkpoint.

- ``*.safetensors``: a state dict (its metadata's architecture, if any, is used).
- anything else: read with ``torch.load(weights_only=True)`` (no arbitrary pickles), either a
  state dict, a dict with a ``"state_dict"``, or a trainer checkpoint: a dict with ``"encoder"``
  (the query encoder's state dict), ``"config"`` (with ``"model"``, the architecture) and ``"step"``.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes

from .errors import NotAWeightsFileError
from .verify import read_metadata

TRAINER_KEYS = ("encoder", "config", "step")


@dataclass(frozen=True)
class ExportInput:
    """A state dict to export, with what its file says about itself."""

    state_dict: Dict[str, torch.Tensor]
    architecture: Optional[str]
    provenance: Dict[str, Any] = field(default_factory=dict)


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(torch.is_tensor(v) for v in value.values())


def _from_trainer(checkpoint: Dict[str, Any], path: Path) -> ExportInput:
    config = checkpoint["config"]
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        raise NotAWeightsFileError(f"{path}: a trainer checkpoint's 'config' must be a dict with a 'model' name")
    if not _is_state_dict(checkpoint["encoder"]):
        raise NotAWeightsFileError(f"{path}: a trainer checkpoint's 'encoder' must be a state dict of tensors")
    provenance = {
        "config": config,
        "data": config.get("data"),
        "steps": int(checkpoint["step"]),
        "code_version": checkpoint.get("code_version", config.get("code_version")),
    }
    return ExportInput(dict(checkpoint["encoder"]), config["model"], provenance)


def read_export_input(path: Path) -> ExportInput:
    """Read a safetensors state dict, a ``torch.save``d state dict or a trainer checkpoint.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        NotAWeightsFileError: if the file holds none of these.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give a .safetensors, .pt state dict or trainer checkpoint")
    if path.suffix == ".safetensors":
        data = path.read_bytes()
        try:
            state_dict = load_safetensors_bytes(data)
        except SafetensorError as error:
            raise NotAWeightsFileError(f"{path} is not a valid safetensors file: {error}") from error
        return ExportInput(state_dict, read_metadata(data, str(path)).get("architecture"))
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError for foreign files
        raise NotAWeightsFileError(
            f"{path} could not be read with torch.load(weights_only=True) ({type(error).__name__}: {error}); "
            "only tensors, dicts and plain values are accepted"
        ) from error
    if isinstance(loaded, dict) and all(key in loaded for key in TRAINER_KEYS):
        return _from_trainer(loaded, path)
    if isinstance(loaded, dict) and _is_state_dict(loaded.get("state_dict")):
        return ExportInput(dict(loaded["state_dict"]), None)
    if _is_state_dict(loaded):
        return ExportInput(dict(loaded), None)
    raise NotAWeightsFileError(
        f"{path} holds neither a state dict (name -> tensor) nor a trainer checkpoint with keys {list(TRAINER_KEYS)}"
    )
