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


def timm_config(architecture: str, tag: str, license: str, pretrained_cfg: Optional[Mapping[str, Any]],
                num_classes: int, num_features: Optional[int]) -> Dict[str, Any]:
    """timm's Hugging Face Hub ``config.json`` for these weights; sources are left out (not timm's)."""
    cfg = {key: value for key, value in dict(pretrained_cfg or {}).items()
           if key not in TIMM_SOURCE_KEYS and value is not None}
    cfg = json.loads(json.dumps(cfg, default=list))  # tuples become lists, as timm writes them
    cfg.update(tag=tag, license=license, num_classes=num_classes)
    return {"architecture": architecture, "num_classes": num_classes, "num_features": num_features,
            "pretrained_cfg": cfg}


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
                   metrics: Optional[Mapping[str, Any]] = None, pretrained_cfg: Optional[Mapping[str, Any]] = None,
                   sources: Optional[Sequence[Source]] = None, half: bool = False, num_classes: int = 0,
                   num_features: Optional[int] = None) -> ExportResult:
    """Write a state dict as vader-hub weights: safetensors, timm config, model card, manifest entry.

    Args:
        state_dict: parameter name -> tensor, as the network's ``state_dict()`` names them.
        architecture: the timm model name the weights are for, e.g. ``"vader_r18_fpn"``.
        out_dir: the folder to write into (created if needed; files in it are replaced).
        tag: the pretrained tag (``architecture.tag`` in timm); empty for an untagged file.
        provenance: training config, data, steps, code version (missing keys are recorded as null).
        license: the weights' licence; take the training data's licence into account.
        metrics: evaluation results to record.
        pretrained_cfg: timm pretrained cfg fields for ``config.json`` (mean, std, input_size...).
        sources: the manifest entry's sources; default: the written file itself (a local file source).
        half: store floating-point tensors as float16 (half the size; loading casts them back to the
            model's dtype).
        num_classes: classes of the network's per-pixel head (0: none), for ``config.json``.
        num_features: the network's embedding width, for ``config.json``.

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
    config = timm_config(architecture, tag, license, pretrained_cfg, num_classes, num_features)
    atomic_write(out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    atomic_write(out_dir / "README.md", model_card(entry))
    atomic_write(out_dir / "manifest_entry.json", json.dumps(entry.to_dict(), indent=2) + "\n")
    return ExportResult(weights, out_dir / "config.json", out_dir / "README.md", out_dir / "manifest_entry.json",
                        entry, entry.sha256, entry.size)
