"""Checkpoints: atomic writes, weights_only loading, the older flat queue, RNG states, the weights reader."""

import random

import numpy as np
import pytest
import torch

from vader_hub.train.checkpoint import (
    REQUIRED_KEYS,
    capture_rng_state,
    is_trainer_checkpoint,
    load_checkpoint,
    read_trained_weights,
    restore_rng_state,
    save_checkpoint,
)
from vader_hub.train.queue import KeyQueue
from vader_hub.weights.errors import NotAWeightsFileError


def minimal(step):
    checkpoint = {key: {} for key in REQUIRED_KEYS}
    checkpoint.update(encoder={"w": torch.full((3,), float(step))}, step=step, rng=capture_rng_state(),
                      queue={"keys": torch.zeros(2, 2), "ids": torch.zeros(2, dtype=torch.long), "pointer": 0},
                      config={"model": "vader_r18_fpn", "data": "photos/"}, code_version="0.1.0+gabc")
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


def test_a_checkpoint_with_the_older_flat_queue_still_loads_and_restores(tmp_path):
    queue = KeyQueue(4, 2)
    queue.enqueue(torch.ones(3, 2), torch.arange(3))
    flat = minimal(5)
    flat.update(queue=queue.keys.clone(), queue_ids=queue.ids.clone(), queue_ptr=queue.pointer)
    torch.save(flat, tmp_path / "checkpoint.pt")
    loaded = load_checkpoint(tmp_path)
    assert "queue_ids" not in loaded and "queue_ptr" not in loaded
    restored = KeyQueue(4, 2, seed=7)
    restored.load_state_dict(loaded["queue"])
    assert torch.equal(restored.keys, queue.keys) and torch.equal(restored.ids, queue.ids) and restored.pointer == 3
    del flat["queue_ptr"]
    torch.save(flat, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(tmp_path / "broken.pt")


def test_trained_weights_come_with_the_provenance_export_records(tmp_path):
    save_checkpoint(minimal(7), tmp_path / "run" / "checkpoint.pt")
    weights = read_trained_weights(tmp_path / "run")
    assert is_trainer_checkpoint(minimal(7)) and not is_trainer_checkpoint({"state_dict": {}})
    assert weights.architecture == "vader_r18_fpn" and torch.equal(weights.state_dict["w"], torch.full((3,), 7.0))
    assert weights.provenance == {"config": {"model": "vader_r18_fpn", "data": "photos/"}, "data": "photos/",
                                  "steps": 7, "code_version": "0.1.0+gabc"}


@pytest.mark.parametrize("change, message", [
    ({"config": {"data": "photos/"}}, "'model' name"),
    ({"encoder": {"w": [1.0]}}, "state dict of tensors"),
    ({"encoder": None}, "state dict of tensors"),
])
def test_trained_weights_refuse_a_checkpoint_without_a_model_or_tensors(tmp_path, change, message):
    torch.save({**minimal(1), **change}, tmp_path / "checkpoint.pt")
    with pytest.raises(NotAWeightsFileError, match=message):
        read_trained_weights(tmp_path / "checkpoint.pt")


def test_trained_weights_refuse_other_files(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(NotAWeightsFileError, match=r"missing \['encoder', 'config', 'step'\]"):
        read_trained_weights(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(NotAWeightsFileError, match="weights_only"):
        read_trained_weights(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        read_trained_weights(tmp_path / "nowhere")
