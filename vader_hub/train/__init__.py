"""The VADeR trainer: pixel-level InfoNCE with a momentum encoder and a queue of other images' pixels.

    from vader_hub.train import TrainConfig, preset, train
    result = train(dataclasses.replace(preset("smoke"), data="photos/", out_dir="runs/smoke"))

or from the shell: `python -m vader_hub.train --preset smoke --data photos/` (also `vader-hub train`),
and `torchrun --nproc_per_node N -m vader_hub.train ...` for several processes.
"""

from .config import PRESETS, TrainConfig, apply_overrides, preset
from .loop import TrainResult, train
from .step import NonFiniteLossError

__all__ = ["PRESETS", "NonFiniteLossError", "TrainConfig", "TrainResult", "apply_overrides", "preset", "train"]
