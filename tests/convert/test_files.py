"""Safe reading (weights_only, allow-listed classes only) and atomic writing of checkpoint files."""
import argparse
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vader_hub.convert import read_checkpoint
from vader_hub.convert.files import write_atomically, write_safetensors, write_torch


@dataclass
class TrainingConfig:
    """A class a training script might pickle; not on the allow-list."""

    lr: float = 0.1


def test_safetensors_and_torch_files_are_told_apart_by_content(tmp_path: Path) -> None:
    tensors = {"a": torch.arange(6.0).reshape(2, 3)}
    write_safetensors(tensors, tmp_path / "weights.bin", {"architecture": "vader_r18_fpn"})
    write_torch({"state_dict": tensors, "opt": argparse.Namespace(lr=0.1)}, tmp_path / "weights.safetensors")
    safetensors_file = read_checkpoint(tmp_path / "weights.bin")
    torch_file = read_checkpoint(tmp_path / "weights.safetensors")
    assert safetensors_file.file_format == "safetensors"
    assert safetensors_file.metadata == {"architecture": "vader_r18_fpn"}
    assert torch.equal(safetensors_file.content["a"], tensors["a"])
    assert torch_file.file_format == "torch" and torch_file.content["opt"].lr == 0.1
    assert torch.equal(torch_file.content["state_dict"]["a"], tensors["a"])


def test_pickled_class_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {}, "config": TrainingConfig()}, tmp_path / "ckpt.pth")
    with pytest.raises(ValueError, match=r"weights_only=True.*outside the allow-list: .*TrainingConfig"):
        read_checkpoint(tmp_path / "ckpt.pth")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_and_garbage_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d2.pkl").write_bytes(pickle.dumps({"model": {}, "__author__": "x"}))
    (tmp_path / "noise.pth").write_bytes(b"\x00\x01 definitely not a checkpoint")
    for name in ("d2.pkl", "noise.pth"):
        with pytest.raises(ValueError, match="weights_only=True.*not a torch.save checkpoint"):
            read_checkpoint(tmp_path / name)


def test_non_mapping_and_missing_files(tmp_path: Path) -> None:
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="holds a Tensor, not a dict"):
        read_checkpoint(tmp_path / "tensor.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path)


def test_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.pth"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_torch({"a": torch.zeros(1)}, target)
    assert target.read_bytes() == b"precious"
    write_torch({"a": torch.ones(1)}, target, overwrite=True)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(1))


def test_failed_write_leaves_neither_target_nor_temporary(tmp_path: Path) -> None:
    def half_write(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(tmp_path / "out.pth", half_write, overwrite=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="output folder"):
        write_torch({}, tmp_path / "missing" / "out.pth")
