"""The key queue: wrap-around against a one-key-at-a-time reference, checkpoint round trip."""

import pytest
import torch

from vader_hub.train.queue import EMPTY_ID, KeyQueue


def test_starts_with_unit_vectors_of_no_image_identically_for_a_seed():
    queue, again = KeyQueue(10, 4, seed=1), KeyQueue(10, 4, seed=1)
    assert torch.equal(queue.keys, again.keys)
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(10))
    assert (queue.ids == EMPTY_ID).all() and queue.pointer == 0


def test_wraps_around_exactly_like_writing_keys_one_by_one():
    size, dim = 7, 3
    queue = KeyQueue(size, dim)
    reference_keys, reference_ids, slot = queue.keys.clone(), queue.ids.clone(), 0
    generator = torch.Generator().manual_seed(0)
    for count in [3, 5, 7, 1, 16, 2, 9]:  # below, at and above the size, crossing the end many times
        keys = torch.randn(count, dim, generator=generator)
        ids = torch.randint(0, 100, (count,), generator=generator)
        queue.enqueue(keys, ids)
        for key, image in zip(keys, ids, strict=True):
            reference_keys[slot], reference_ids[slot] = key, image
            slot = (slot + 1) % size
        assert torch.equal(queue.keys, reference_keys) and torch.equal(queue.ids, reference_ids)
        assert queue.pointer == slot


def test_state_dict_round_trip_and_size_check():
    queue = KeyQueue(6, 2)
    queue.enqueue(torch.ones(4, 2), torch.arange(4))
    restored = KeyQueue(6, 2, seed=9)
    restored.load_state_dict(queue.state_dict())
    assert torch.equal(restored.keys, queue.keys) and torch.equal(restored.ids, queue.ids)
    assert restored.pointer == 4
    with pytest.raises(ValueError, match="queue_size must match"):
        KeyQueue(8, 2).load_state_dict(queue.state_dict())


def test_bad_enqueue_shapes_are_refused():
    queue = KeyQueue(6, 2)
    with pytest.raises(ValueError, match="enqueue expects"):
        queue.enqueue(torch.ones(4, 3), torch.arange(4))
    with pytest.raises(ValueError, match="enqueue expects"):
        queue.enqueue(torch.ones(4, 2), torch.arange(3))
