"""Export a ``vader_*`` trunk to torchvision, timm and detectron2, and its FPN decoder on its own.

    from vader_hub.convert import export_trunk, save_export
    weights = safetensors.torch.load_file("vader_r50_fpn.safetensors")
    save_export(export_trunk(weights, to="torchvision"), "torchvision", "r50_torchvision.pth")
    save_export(export_trunk(weights, to="detectron2"), "detectron2", "r50_d2.pkl")

- ``torchvision``/``timm``: the trunk's names without ``trunk.``; they load with ``strict=True`` into
  a torchvision ``resnet*`` whose ``fc`` is ``nn.Identity()`` and into timm's ``resnet*`` with
  ``num_classes=0``. Tensors are the same objects, so a round trip is bitwise exact.
- ``detectron2``: the pickle that detectron2's ``tools/convert-torchvision-to-d2.py`` (and DenseCL's
  and PixPro's copies of it) write: ``{"model": {name: float32 ndarray}, "__author__": ...,
  "matching_heuristics": True}`` with detectron2's ResNet names (``stem.conv1.norm.weight``,
  ``res2.0.shortcut.weight``, ...). BatchNorm counters are left out: detectron2's default
  ``FrozenBN`` has none. Fine-tune with ``RESNETS.STRIDE_IN_1X1: False`` and ``INPUT.FORMAT: RGB``
  (docs/interop.md).
- The decoder (``decoder.*``, a Panoptic-FPN semantic head without FPN output convs, so not
  detectron2's ``FPN``) is exported separately with :func:`export_decoder`.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping

import torch

from .files import PathLike, write_pickle, write_safetensors, write_torch
from .structure import resnet_structure
from .trunk import BATCH_COUNTER, TRUNK_PREFIX

DECODER_PREFIX = "decoder."
DECODER_FORMAT = "vader-hub-decoder/1"
DETECTRON2_AUTHOR = "vader-hub"


def _strip_prefix(state_dict: Mapping[str, Any], prefix: str, what: str) -> Dict[str, torch.Tensor]:
    stripped = {
        name[len(prefix):]: tensor
        for name, tensor in state_dict.items()
        if name.startswith(prefix) and isinstance(tensor, torch.Tensor)
    }
    if not stripped:
        heads = sorted({str(name).split(".")[0] + "." for name in state_dict})[:10]
        raise ValueError(
            f"no '{prefix}*' tensors to export as the {what} (names start with {heads}); pass a vader-hub "
            "model's state_dict(), a vader-hub weights file or an imported trunk"
        )
    return stripped


def detectron2_name(name: str) -> str:
    """torchvision ResNet name -> detectron2 ResNet name, by the rules of ``convert-torchvision-to-d2.py``.

    ``conv1.weight`` -> ``stem.conv1.weight``, ``bn1.bias`` -> ``stem.conv1.norm.bias``,
    ``layer1.0.bn2.weight`` -> ``res2.0.conv2.norm.weight``, ``layer2.0.downsample.0.weight`` ->
    ``res3.0.shortcut.weight``, ``layer2.0.downsample.1.running_var`` -> ``res3.0.shortcut.norm.running_var``.

    Args:
        name: A torchvision ResNet parameter or buffer name, without ``trunk.``.

    Returns:
        The detectron2 name; ``fc.*`` and other names outside the ResNet body are only prefixed with ``stem.``.
    """
    if not name.startswith("layer"):
        name = "stem." + name
    name = re.sub(r"^layer(\d+)\.", lambda match: f"res{int(match.group(1)) + 1}.", name)
    name = re.sub(r"(^|\.)bn(\d)\.", r"\1conv\2.norm.", name)
    return name.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


def _detectron2_checkpoint(trunk: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    model = {
        detectron2_name(name): tensor.detach().to("cpu", torch.float32).numpy()
        for name, tensor in trunk.items()
        if not name.endswith(BATCH_COUNTER)
    }
    return {"model": model, "__author__": DETECTRON2_AUTHOR, "matching_heuristics": True}


def _save_state_dict(name: str) -> Callable[[Mapping[str, Any], Path, bool], Path]:
    """torchvision's and timm's file: ``torch.save`` of the state dict, or safetensors by the suffix."""
    def save(exported: Mapping[str, Any], path: Path, overwrite: bool) -> Path:
        if path.suffix == ".safetensors":
            return write_safetensors(exported, path, {"format": f"{name}-resnet"}, overwrite=overwrite)
        return write_torch(dict(exported), path, overwrite=overwrite)
    return save


def _save_detectron2(exported: Mapping[str, Any], path: Path, overwrite: bool) -> Path:
    if path.suffix != ".pkl":
        raise ValueError(f"detectron2 reads converted weights from a .pkl file; got {path.name!r}")
    return write_pickle(dict(exported), path, overwrite=overwrite)


@dataclass(frozen=True)
class Framework:
    """Another framework's ResNet: how a trunk is renamed for it, and the file it reads."""

    convert: Callable[[Dict[str, torch.Tensor]], Dict[str, Any]]
    save: Callable[[Mapping[str, Any], Path, bool], Path]


FRAMEWORKS: Dict[str, Framework] = {
    "torchvision": Framework(dict, _save_state_dict("torchvision")),
    "timm": Framework(dict, _save_state_dict("timm")),
    "detectron2": Framework(_detectron2_checkpoint, _save_detectron2),
}
EXPORT_TARGETS = tuple(FRAMEWORKS)


def _framework(name: str) -> Framework:
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown export target {name!r}; choose one of {EXPORT_TARGETS}")
    return FRAMEWORKS[name]


def export_trunk(state_dict: Mapping[str, Any], to: str) -> Dict[str, Any]:
    """Export the ``trunk.*`` tensors of a vader-hub state dict to another framework's layout.

    Args:
        state_dict: A ``vader_*`` model's state dict, a weights file's tensors or ``TrunkImport.state_dict``;
            tensors other than ``trunk.*`` are ignored.
        to: ``"torchvision"``, ``"timm"`` or ``"detectron2"``.

    Returns:
        For torchvision and timm, a state dict of the same tensor objects under their ResNet names;
        for detectron2, ``{"model": {name: ndarray}, "__author__": "vader-hub", "matching_heuristics": True}``.

    Raises:
        ValueError: If ``to`` is unknown, or there are no ``trunk.*`` tensors, or they are not a ResNet.
    """
    framework = _framework(to)
    trunk = _strip_prefix(state_dict, TRUNK_PREFIX, "trunk")
    resnet_structure(trunk)
    return framework.convert(trunk)


def export_decoder(state_dict: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The FPN decoder's tensors (``decoder.*``) named without the prefix: ``lateral.0.weight``, ...

    Args:
        state_dict: A ``vader_*`` model's state dict or a weights file's tensors; other tensors are ignored.

    Returns:
        The decoder's tensors, the same objects as in ``state_dict``.

    Raises:
        ValueError: If there are no ``decoder.*`` tensors.
    """
    return _strip_prefix(state_dict, DECODER_PREFIX, "decoder")


def save_export(exported: Mapping[str, Any], to: str, path: PathLike, overwrite: bool = False) -> Path:
    """Write an export in the file format its framework reads, atomically.

    torchvision and timm: ``torch.save`` of the state dict, or safetensors if ``path`` ends in
    ``.safetensors``. detectron2: a pickle (``.pkl``), the format ``MODEL.WEIGHTS`` reads with
    matching heuristics.

    Args:
        exported: The result of :func:`export_trunk` for ``to``.
        to: ``"torchvision"``, ``"timm"`` or ``"detectron2"``.
        path: The file to write.
        overwrite: Replace an existing file.

    Returns:
        The written path.

    Raises:
        ValueError: If ``to`` is unknown, or a detectron2 export is not written to a ``.pkl`` file.
        FileNotFoundError: If the output folder does not exist.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    return _framework(to).save(exported, Path(path), overwrite)


def save_decoder(
    decoder: Mapping[str, torch.Tensor], path: PathLike, architecture: str, overwrite: bool = False
) -> Path:
    """Write an exported decoder as safetensors (metadata: architecture, format).

    Args:
        decoder: The result of :func:`export_decoder`.
        path: The file to write.
        architecture: The timm name of the model the decoder comes from, e.g. ``"vader_r50_fpn"``; recorded
            so the file can be matched to a trunk.
        overwrite: Replace an existing file.

    Returns:
        The written path.

    Raises:
        FileNotFoundError: If the output folder does not exist.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    metadata = {"architecture": architecture, "format": DECODER_FORMAT}
    return write_safetensors(decoder, path, metadata, overwrite=overwrite)

