"""The checkpoint layouts a ResNet trunk is imported from, and their detection.

A layout is where the trunk's torchvision/timm-named tensors sit in a checkpoint: under which
top-level key (``container``) and behind which name ``prefix``. Each entry below follows the save
code of its project:

- MoCo v1/v2 ``main_moco.py``: ``{'epoch', 'arch', 'state_dict', 'optimizer'}``, the DDP-wrapped
  model with the query encoder at ``module.encoder_q.`` (key encoder, queue and ``fc`` head beside it).
- MoCo v3 ``main_moco.py``: same dict plus ``'scaler'``, encoder at ``module.base_encoder.``.
- PixPro ``main_pretrain.py``: ``{'opt', 'model', 'optimizer', 'scheduler', 'epoch'}``, online
  encoder at ``module.encoder.`` (``opt`` is an ``argparse.Namespace``).
- DenseCL ``tools/extract_backbone_weights.py``: ``{'state_dict': backbone, 'author': 'DenseCL'}``;
  DenseCL/OpenSelfSup training checkpoints keep the backbone at ``backbone.``.
- torchvision/timm state dicts, timm ``train.py`` checkpoints (``state_dict``), and vader-hub's own
  weights files and trainer checkpoints (``trunk.``, the trainer's online network under ``encoder``).

Detection takes the first layout, in the order below, whose container holds both the stem and the
first block (``conv1.weight``, ``layer1.0.conv1.weight``) behind its prefix.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import torch

PROBE_KEYS = ("conv1.weight", "layer1.0.conv1.weight")


@dataclass(frozen=True)
class Layout:
    """Where a ResNet trunk sits in a checkpoint.

    Attributes:
        name: Short name reported to the user, e.g. ``"moco-v1/v2"``.
        description: What produces this layout.
        container: Top-level key holding the state dict; None if the file is the state dict.
        prefix: Prefix in front of the torchvision/timm names.
        marker: A top-level key that must also exist (tells a DenseCL release from a plain wrapper).
    """

    name: str
    description: str
    container: Optional[str]
    prefix: str
    marker: Optional[str] = None

    def state_dict(self, content: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
        """The mapping this layout reads, or None if ``content`` does not have it."""
        if self.marker is not None and self.marker not in content:
            return None
        inner = content if self.container is None else content.get(self.container)
        return inner if isinstance(inner, Mapping) else None

    def matches(self, content: Mapping[str, Any]) -> bool:
        """True if the stem and first block tensors exist behind this layout's container and prefix."""
        inner = self.state_dict(content)
        return inner is not None and all(
            isinstance(inner.get(self.prefix + key), torch.Tensor) for key in PROBE_KEYS
        )

    def extract(self, content: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """All tensors behind the prefix, renamed without it (the trunk plus any head, e.g. ``fc.*``)."""
        inner = self.state_dict(content) or {}
        return {
            name[len(self.prefix):]: value
            for name, value in inner.items()
            if name.startswith(self.prefix) and isinstance(value, torch.Tensor)
        }


LAYOUTS: tuple = (
    Layout("vader-hub", "vader-hub weights or trunk file", None, "trunk."),
    Layout("vader-hub-trainer", "vader-hub trainer checkpoint (online encoder)", "encoder", "trunk."),
    Layout("moco-v1/v2", "MoCo v1/v2 main_moco.py checkpoint (query encoder)", "state_dict", "module.encoder_q."),
    Layout("moco-v3", "MoCo v3 main_moco.py checkpoint (base encoder)", "state_dict", "module.base_encoder."),
    Layout("pixpro", "PixPro main_pretrain.py checkpoint (online encoder)", "model", "module.encoder."),
    Layout("densecl", "DenseCL backbone release (extract_backbone_weights.py)", "state_dict", "", marker="author"),
    Layout("densecl-train", "DenseCL/OpenSelfSup training checkpoint (backbone)", "state_dict", "backbone."),
    Layout("torchvision/timm", "torchvision or timm ResNet state dict", None, ""),
    Layout("ddp", "DistributedDataParallel state dict of a torchvision/timm ResNet", None, "module."),
    Layout("state_dict-wrapped", "timm train.py checkpoint or {'state_dict': ResNet state dict}", "state_dict", ""),
    Layout("model-wrapped", "torchvision references checkpoint or {'model': ResNet state dict}", "model", ""),
)


def find_layout(content: Mapping[str, Any], layouts: tuple = LAYOUTS) -> Layout:
    """The first layout of ``layouts`` that ``content`` matches.

    Args:
        content: A checkpoint's top-level mapping.
        layouts: Candidate layouts, most specific first.

    Returns:
        The matching layout.

    Raises:
        ValueError: If none matches; the message lists the top-level keys and the name prefixes found.
    """
    for layout in layouts:
        if layout.matches(content):
            return layout
    raise ValueError(unknown_layout_message(content, layouts))


def _prefix_counts(state_dict: Mapping[str, Any]) -> Counter:
    """Tensor counts per name prefix: the first dotted component, two when the first is ``module``."""
    counts: Counter = Counter()
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        parts = str(name).split(".")
        depth = 2 if parts[0] == "module" and len(parts) > 2 else 1
        counts[".".join(parts[:depth]) + ("." if len(parts) > depth else "")] += 1
    return counts


def _stem_prefixes(state_dict: Mapping[str, Any]) -> List[str]:
    """Prefixes in front of every ``layer1.0.conv1.weight`` (where a ResNet seems to sit)."""
    marker = PROBE_KEYS[1]
    return sorted(str(name)[: -len(marker)] for name in state_dict if str(name).endswith(marker))


def unknown_layout_message(content: Mapping[str, Any], layouts: tuple = LAYOUTS) -> str:
    """Explain why no layout matched: top-level keys, prefixes per container, ResNet candidates."""
    top_level = [f"{key!r} ({type(value).__name__})" for key, value in list(content.items())[:20]]
    lines = [f"unknown checkpoint layout. Top-level keys: {', '.join(top_level) or 'none'}"]
    containers = {None: content}
    containers.update({key: value for key, value in content.items() if isinstance(value, Mapping)})
    for container, state_dict in containers.items():
        where = "the top level" if container is None else repr(container)
        counts = _prefix_counts(state_dict)
        if counts:
            found = ", ".join(f"{prefix} ({count})" for prefix, count in counts.most_common(12))
            lines.append(f"  tensor-name prefixes in {where}: {found}")
        option = "" if container is None else f"--container {container} "
        for prefix in _stem_prefixes(state_dict):
            lines.append(f"  a ResNet seems to start in {where} at prefix {prefix!r}: try {option}--prefix '{prefix}'")
    known = "; ".join(f"{layout.name}: {layout.container or '<top level>'} / {layout.prefix!r}" for layout in layouts)
    lines.append(f"Known layouts (container / prefix): {known}.")
    lines.append("For another layout, name it: --container KEY --prefix PREFIX (Python: container=, prefix=).")
    return "\n".join(lines)
