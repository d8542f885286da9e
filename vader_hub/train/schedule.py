"""The learning-rate schedule: linear warm-up, then cosine decay to zero, as a pure function of the step."""

import math

from .config import TrainConfig


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """The learning rate for step `step` (0-based) of a run of `config.steps` steps.

    Warm-up rises linearly to `config.learning_rate` over `warmup_steps` steps; the cosine then
    falls from it to 0 over the remaining steps (MoCo v2's schedule, which has no warm-up).

    Raises:
        ValueError: for a step outside [0, steps).
    """
    if not 0 <= step < config.steps:
        raise ValueError(f"step must be in [0, {config.steps}), got {step}")
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
