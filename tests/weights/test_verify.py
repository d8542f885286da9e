import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vader_hub.weights import ArchitectureMismatchError, NotAWeightsFileError
from vader_hub.weights.verify import recorded_architecture


def safetensors_with(path, metadata):
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
    return path


def test_the_recorded_architecture_is_read_from_the_header(exported):
    assert recorded_architecture(exported.result.weights) == "vader_r18_fpn"


def test_only_the_header_is_read(tmp_path, monkeypatch):
    path = safetensors_with(tmp_path / "w.safetensors", {"architecture": "vader_r18_fpn"})
    reads = []
    real_open = Path.open

    def counting_open(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read
        handle.read = lambda size=-1: reads.append(size) or real_read(size)
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read the whole file"))
    assert recorded_architecture(path) == "vader_r18_fpn"
    assert reads and all(0 <= size < path.stat().st_size for size in reads)


@pytest.mark.parametrize("metadata, message", [
    ({}, "records no architecture"),
    ({"architecture": "resnet50"}, "not a VADeR model"),
    ({"architecture": "vader_r34_fpn"}, "upgrade vader-hub"),
    ({"architecture": ""}, "records no architecture"),
])
def test_files_without_a_vader_architecture_are_refused(tmp_path, metadata, message):
    path = safetensors_with(tmp_path / "w.safetensors", metadata)
    with pytest.raises(ArchitectureMismatchError, match=message):
        recorded_architecture(path)


@pytest.mark.parametrize("content", [b"", b"abc", struct.pack("<Q", 10**12) + b"{}", b"PK\x03\x04 a pickle zip"])
def test_non_safetensors_files_are_refused(tmp_path, content):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(NotAWeightsFileError, match="not a safetensors file"):
        recorded_architecture(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        recorded_architecture(tmp_path / "missing.safetensors")
