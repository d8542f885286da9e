"""Exporting a state dict as a publishable weights folder.

``export_weights`` writes, into one folder::

    model.safetensors      the tensors, with metadata {"architecture", "format": "vader-hub/1", "tag", "provenance"}
    config.json            timm's Hugging Face Hub config (architecture, num_classes, num_features, pretrained_cfg)
    README.md              a model card: what the weights are, their provenance, metrics, licence, how to load
    manifest_entry.json    the manifest entry for the file (add it to a VADER_HUB_MANIFEST file to use it)
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from safetensors.torch import save as save_safetensors_bytes

from ..fileio import atomic_write
from .schema import PROVENANCE_KEYS, FileSource, Source, WeightsEntry, parse_entry
from .verify import WEIGHTS_FORMAT

WEIGHTS_FILENAME = "model.safetensors"
CONFIG_FILENAME = "config.json"
CARD_FILENAME = "README.md"
ENTRY_FILENAME = "manifest_entry.json"
EXPORT_FILES = (WEIGHTS_FILENAME, CONFIG_FILENAME, CARD_FILENAME, ENTRY_FILENAME)  # all that an export writes
DEFAULT_LICENSE = "other"
TIMM_SOURCE_KEYS = ("url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "architecture")


@dataclass(frozen=True)
class ExportResult:
    """The files written by :func:`export_weights`, and the weights file's sha256 and size."""

    weights: Path
    config: Path
    model_card: Path
    manifest_entry: Path
    entry: WeightsEntry
    sha256: str
    size: int


def _tensors(state_dict: Mapping[str, torch.Tensor], half: bool = False) -> Dict[str, torch.Tensor]:
    """Contiguous CPU copies, floating point ones in float16 if ``half``; safetensors refuses tensors
    that share storage, so each gets its own."""
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise TypeError("state_dict must be a non-empty mapping of parameter names to tensors")
    bad = [key for key, value in state_dict.items() if not isinstance(key, str) or not torch.is_tensor(value)]
    if bad:
        raise TypeError(f"state_dict values must be tensors under string keys; not so for {bad[:5]}")
    copies = {key: value.detach().to("cpu").contiguous().clone() for key, value in state_dict.items()}
    if half:
        copies = {key: value.half() if value.is_floating_point() else value for key, value in copies.items()}
    return copies


def _provenance(provenance: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    data = {key: None for key in PROVENANCE_KEYS}
    data.update(dict(provenance or {}))
    try:
        json.dumps(data)
    except TypeError as error:
        raise TypeError(f"provenance must be JSON-serialisable: {error}") from error
    return data


def timm_config(architecture: str, tag: str, license: str, config: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """timm's Hugging Face Hub ``config.json`` for these weights: the network's own, with this export's
    tag and licence; source fields (not timm's to load) and the description of other weights left out.

    Args:
        architecture: the timm name.
        tag: the pretrained tag.
        license: the weights' licence.
        config: the network's config as ``vader_hub.models.hub_config`` (timm's ``save_for_hf``) gives it;
            None for a bare one (no head, ``num_features`` unknown).
    """
    config = json.loads(json.dumps(dict(config or {}), default=list))  # tuples become lists, as timm writes them
    cfg = {key: value for key, value in config.get("pretrained_cfg", {}).items()
           if key not in TIMM_SOURCE_KEYS and key != "description" and value is not None}
    num_classes = int(config.get("num_classes", 0))
    cfg.update(tag=tag, license=license, num_classes=num_classes)
    return {**config, "architecture": architecture, "num_classes": num_classes,
            "num_features": config.get("num_features"), "pretrained_cfg": cfg}


def model_card(entry: WeightsEntry) -> str:
    """A Hugging Face model card (YAML front matter + markdown) for ``entry``."""
    provenance = json.dumps(entry.provenance, indent=2, default=str)
    metrics = "\n".join(f"| {k} | {v} |" for k, v in entry.metrics.items()) or "| (none recorded) | |"
    return f"""---
license: {entry.license}
library_name: timm
tags: [image-feature-extraction, timm, vader-hub, dense-representations]
---
# {entry.name}

VADeR dense features (Pinheiro et al., *Unsupervised Learning of Dense Visual Representations*,
NeurIPS 2020): a `{entry.architecture}` network giving a 128-d feature per stride-4 cell.
{entry.description}

- file: `{WEIGHTS_FILENAME}`, {entry.size} bytes, sha256 `{entry.sha256}`
- licence: `{entry.license}`. Weights inherit the terms of their training data: check them
  (e.g. ImageNet's are for non-commercial research) before using these weights.

## Use

```python
import timm, vader_hub
model = timm.create_model("{entry.architecture}", pretrained=True,
                          pretrained_cfg_overlay=dict(file="{WEIGHTS_FILENAME}"))
```

Or add `manifest_entry.json` to a `VADER_HUB_MANIFEST` file and use
`timm.create_model("{entry.name}", pretrained=True)`: the file is then verified against its sha256
every time it is loaded.

## Metrics

| metric | value |
|---|---|
{metrics}

## Provenance

```json
{provenance}
```
"""


def export_weights(state_dict: Mapping[str, torch.Tensor], architecture: str, out_dir: Path, *, tag: str = "",
                   provenance: Optional[Mapping[str, Any]] = None, license: str = DEFAULT_LICENSE,
                   metrics: Optional[Mapping[str, Any]] = None,
                   sources: Optional[Sequence[Source]] = None, half: bool = False,
                   config: Optional[Mapping[str, Any]] = None) -> ExportResult:
    """Write a state dict as vader-hub weights: safetensors, timm config, model card, manifest entry.

    Args:
        state_dict: parameter name -> tensor, as the network's ``state_dict()`` names them.
        architecture: the timm model name the weights are for, e.g. ``"vader_r18_fpn"``.
        out_dir: the folder to write into (created if needed; files in it are replaced).
        tag: the pretrained tag (``architecture.tag`` in timm); empty for an untagged file.
        provenance: training config, data, steps, code version (missing keys are recorded as null).
        license: the weights' licence; take the training data's licence into account.
        metrics: evaluation results to record.
        sources: the manifest entry's sources; default: the written file itself (a local file source).
        half: store floating-point tensors as float16 (half the size; loading casts them back to the
            model's dtype).
        config: the network's timm config (``vader_hub.models.hub_config(model)``) for ``config.json``,
            so that a network built from it is the exported one; None writes a bare one.

    Returns:
        An :class:`ExportResult` with the paths, the entry, and the file's sha256 and size.

    Raises:
        TypeError: if the state dict, provenance or metrics are not of the right kind.
        ManifestError: if the architecture, tag or licence are not valid manifest values.
    """
    out_dir = Path(out_dir)
    tensors = _tensors(state_dict, half)
    provenance = _provenance(provenance)
    metadata = {"architecture": architecture, "format": WEIGHTS_FORMAT, "tag": tag,
                "provenance": json.dumps(provenance, sort_keys=True)}
    data = save_safetensors_bytes(tensors, metadata=metadata)
    weights = out_dir / WEIGHTS_FILENAME
    filename = f"{architecture}.{tag}.safetensors" if tag else f"{architecture}.safetensors"
    raw_entry = {
        "architecture": architecture, "tag": tag, "filename": filename,
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
        "sources": [s.to_dict() for s in (sources or [FileSource(weights.resolve())])],
        "provenance": provenance, "license": license, "metrics": dict(metrics or {}),
    }
    try:
        json.dumps(raw_entry["metrics"])
    except TypeError as error:
        raise TypeError(f"metrics must be JSON-serialisable: {error}") from error
    entry = parse_entry(raw_entry, f"export of {architecture}", out_dir.resolve())
    atomic_write(weights, data)
    hub_config = timm_config(architecture, tag, license, config)
    atomic_write(out_dir / CONFIG_FILENAME, json.dumps(hub_config, indent=2) + "\n")
    atomic_write(out_dir / CARD_FILENAME, model_card(entry))
    atomic_write(out_dir / ENTRY_FILENAME, json.dumps(entry.to_dict(), indent=2) + "\n")
    return ExportResult(weights, out_dir / CONFIG_FILENAME, out_dir / CARD_FILENAME, out_dir / ENTRY_FILENAME,
                        entry, entry.sha256, entry.size)
