"""Checkpoints: atomic writes, weights_only loading, RNG states."""

import random

import numpy as np
import pytest
import torch

from vader_hub.train.checkpoint import (
    REQUIRED_KEYS,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


def minimal(step):
    checkpoint = {key: {} for key in REQUIRED_KEYS}
    checkpoint.update(encoder={"w": torch.full((3,), float(step))}, step=step, queue=torch.zeros(2, 2),
                      queue_ids=torch.zeros(2, dtype=torch.long), queue_ptr=0, rng=capture_rng_state(),
                      config={"model": "vader_r18_fpn"})
    return checkpoint


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full, say")


def test_round_trip_with_weights_only(tmp_path):
    save_checkpoint(minimal(3), tmp_path / "run" / "checkpoint.pt")
    loaded = load_checkpoint(tmp_path / "run")  # a run folder works as well as the file
    assert loaded["step"] == 3 and torch.equal(loaded["encoder"]["w"], torch.full((3,), 3.0))
    torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(minimal(1), path)
    broken = minimal(2)
    broken["optimizer"] = {"state": Unpicklable()}
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(broken, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_missing_keys_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        save_checkpoint({"encoder": {}}, tmp_path / "c.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a vader-hub training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "empty_run")


def test_rng_states_are_restored(tmp_path):
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    save_checkpoint(minimal(0), tmp_path / "c.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]
