"""The resume policy: a resumed run continues the interrupted one exactly, or is refused with the reason.

`check_resume` (settings and step count, before anything is built) and `check_resume_data` (once
the images are listed) are the whole policy. What may change is `RESUMABLE_CHANGES`: settings
that do not alter what the remaining steps compute, plus `steps`, which re-plans the schedule.
A resume continues in the folder it was resumed from (`resumed_config`), not in the `out_dir` its
checkpoint recorded, so resuming a copy of a run folder never writes into the original.
"""

import dataclasses
import os
import warnings
from pathlib import Path

from .checkpoint import load_checkpoint, resolve_checkpoint_path
from .config import TrainConfig, config_from_dict
from .data import ImageList

# Fields a resumed run may change: they do not alter what the remaining steps compute, except
# `steps`, which re-plans the cosine schedule from the resumed step on (a warning says so).
RESUMABLE_CHANGES = frozenset({"out_dir", "data", "steps", "num_workers", "log_every", "checkpoint_every",
                               "export", "weights_tag", "weights_license", "compile"})


def resumed_run_folder(resume: str | os.PathLike) -> Path:
    """The run folder a resume continues in: the folder given, or the one holding the checkpoint file given.

    Raises:
        FileNotFoundError: if there is no checkpoint at `resume`.
    """
    return resolve_checkpoint_path(resume).parent


def resumed_config(resume: str | os.PathLike) -> TrainConfig:
    """The config of the checkpoint at `resume`, with `out_dir` the folder it is resumed from.

    Args:
        resume: a run folder, or a checkpoint file.

    Returns:
        The checkpoint's `TrainConfig`, writing into `resumed_run_folder(resume)`.

    Raises:
        FileNotFoundError: if there is no checkpoint at `resume`.
        ValueError: if the file is not a trainer checkpoint, or its config is not one this version reads.
    """
    saved = config_from_dict(load_checkpoint(resume)["config"])
    return dataclasses.replace(saved, out_dir=str(resumed_run_folder(resume)))


def check_resume(config: TrainConfig, checkpoint: dict[str, object]) -> None:
    """Refuse to resume `checkpoint` with `config` when the run could not continue exactly.

    Raises:
        ValueError: for settings outside `RESUMABLE_CHANGES` that differ from the checkpoint's, or
            for fewer `steps` than the checkpoint has already done.
    """
    check_resume_config(config, config_from_dict(checkpoint["config"]))
    done = int(checkpoint["step"])
    if config.steps < done:
        raise ValueError(f"steps={config.steps} is below the checkpoint's step {done}: a resume cannot go back; "
                         "pass --steps of at least that many, or start a new run")


def check_resume_config(config: TrainConfig, saved: TrainConfig) -> None:
    """Refuse to resume with settings that would change what the remaining steps compute.

    Raises:
        ValueError: naming each differing field with both values.
    """
    differing = [f"{name}: checkpoint {getattr(saved, name)!r}, now {getattr(config, name)!r}"
                 for name in (f.name for f in dataclasses.fields(TrainConfig))
                 if name not in RESUMABLE_CHANGES and getattr(saved, name) != getattr(config, name)]
    if differing:
        raise ValueError("resuming continues a run exactly, but these settings differ from the checkpoint's: "
                         + "; ".join(differing) + ". Drop these overrides, or start a new run (--init reuses weights).")
    if config.steps != saved.steps:
        warnings.warn(f"resuming with steps={config.steps} instead of {saved.steps}: the warm-up and cosine "
                      "schedule are re-planned for the new total, so the learning rate changes from the resumed "
                      "step on; keep steps unchanged to continue the run exactly", stacklevel=2)


def check_resume_data(checkpoint: dict[str, object], images: ImageList, source: str) -> None:
    """Refuse to resume on other images than the checkpoint was trained on (older checkpoints: no check).

    Raises:
        ValueError: if the images' fingerprint differs from the one the checkpoint recorded.
    """
    saved_fingerprint = checkpoint["data_position"].get("data_fingerprint")
    if saved_fingerprint is not None and saved_fingerprint != images.fingerprint():
        raise ValueError(f"the images under {source!r} are not the ones the checkpoint was trained on "
                         f"(their list or sizes differ); resume needs the same data to continue exactly")
