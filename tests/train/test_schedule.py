"""The learning-rate schedule against its closed form."""

import math

import pytest

from vader_hub.train.config import TrainConfig
from vader_hub.train.schedule import learning_rate_at


def test_cosine_without_warmup_starts_at_the_peak_and_ends_near_zero():
    config = TrainConfig(steps=100, batch_size=512)
    assert learning_rate_at(0, config) == pytest.approx(0.06)
    assert learning_rate_at(50, config) == pytest.approx(0.03)
    assert learning_rate_at(99, config) == pytest.approx(0.06 * 0.5 * (1 + math.cos(math.pi * 0.99)))
    values = [learning_rate_at(step, config) for step in range(100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_warmup_rises_linearly_then_the_cosine_takes_over():
    config = TrainConfig(steps=110, warmup_steps=10)
    assert [learning_rate_at(s, config) for s in range(3)] == pytest.approx([0.003, 0.006, 0.009])
    assert learning_rate_at(9, config) == pytest.approx(0.03)
    assert learning_rate_at(10, config) == pytest.approx(0.03)
    assert learning_rate_at(60, config) == pytest.approx(0.015)


def test_steps_outside_the_run_are_refused():
    with pytest.raises(ValueError, match=r"step must be in \[0, 100\)"):
        learning_rate_at(100, TrainConfig(steps=100))
