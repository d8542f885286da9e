"""Helpers for the weights tests: small exported files and manifests."""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest
import torch

from vader_hub.weights import ExportResult

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def small_module(seed: int = 0, channels: int = 8) -> torch.nn.Module:
    """A tiny stand-in network: a weights file of a few KiB."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, channels, 3), torch.nn.BatchNorm2d(channels))


@dataclass
class Exported:
    """An exported small module, its bytes and the module it came from."""

    result: ExportResult
    module: torch.nn.Module
    data: bytes

    @property
    def entry_dict(self) -> dict:
        return json.loads(self.result.manifest_entry.read_text())


def write_manifest(path: Path, entries: List[dict]) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "entries": entries}))
    return path


def entry_with_sources(exported: Exported, sources: List[dict]) -> dict:
    return {**exported.entry_dict, "sources": sources}


def use_manifest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entries: List[dict]) -> Path:
    """Write a user manifest and point VADER_HUB_MANIFEST at it."""
    path = write_manifest(tmp_path / "user_manifest.json", entries)
    monkeypatch.setenv("VADER_HUB_MANIFEST", str(path))
    return path
