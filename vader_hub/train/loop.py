"""Training VADeR end to end: `train(TrainConfig(...))`, the engine behind `python -m vader_hub.train`.

    python -m vader_hub.train --preset smoke --data photos/ --out runs/smoke      # one CPU process
    torchrun --nproc_per_node 8 -m vader_hub.train --data imagenet/train --out runs/r50
    python -m vader_hub.train --resume runs/r50                                      # continue exactly

A run folder holds `config.json` (the resolved config), `data.txt` (the images used),
`log.jsonl`, `checkpoint.pt` (atomic, every `checkpoint_every` steps and at the end) and
`export/` (the query encoder as release weights, through `vader_hub.weights.export_weights`).
A run writes only into a folder without another run's files: a resume continues the run in its
own folder, and `overwrite=True` (`--overwrite`) replaces the run a folder holds.
"""

import dataclasses
import json
import math
import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..fileio import atomic_write
from ..models import hub_config
from ..pathlist import write_path_list
from ..weights import ExportResult, export_weights
from ..weights.export import EXPORT_FILES
from ..weights.names import check_architecture
from .batchnorm import sync_running_stats
from .checkpoint import (
    CHECKPOINT_NAME,
    assemble_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    restore_state,
    save_checkpoint,
)
from .config import TrainConfig
from .data import ImageList, ResumableSampler, ViewPairDataset, build_loader, list_images
from .distributed import DistributedContext, barrier, has_process_group, setup_distributed, teardown_distributed
from .progress import ProgressLog
from .provenance import export_provenance
from .resume import check_resume, check_resume_data, resumed_run_folder
from .schedule import learning_rate_at
from .state import TrainState, build_state, wrap_for_speed
from .step import NonFiniteLossError, enqueue_keys, key_features, prepare_batch, train_step

PREFILL_EPOCH = 2**32  # the prefill's data stream, apart from every training epoch
RUN_FILES = (CHECKPOINT_NAME, "config.json", "data.txt", "log.jsonl")  # what a run writes into its folder
EXPORT_FOLDER = "export"


@dataclass(frozen=True)
class RunContext:
    """Where a run reports and saves: the process's place, the log, the run folder, the data's identity."""

    process: DistributedContext
    log: ProgressLog
    out_dir: Path
    data_fingerprint: str


@dataclass(frozen=True)
class StepsDone:
    """What `_train_steps` ran: the loss of every step (averaged over processes) and the decode failures."""

    losses: list[float]
    load_failures: int


@dataclass(frozen=True)
class TrainResult:
    """What a run produced.

    Attributes:
        out_dir: the run folder.
        checkpoint: the final checkpoint.
        steps: steps completed in total (including those before a resume).
        losses: the loss of every step this call ran, averaged over processes.
        skipped_images: (path, reason) of listed files that could not be read.
        load_failures: images that failed to decode during training (replaced by the next one).
        export: the exported weights on rank 0 when exporting, else None.
        wall_time_s: seconds this call took.
    """

    out_dir: Path
    checkpoint: Path
    steps: int
    losses: list[float]
    skipped_images: list[tuple[str, str]]
    load_failures: int
    export: ExportResult | None
    wall_time_s: float


def train(config: TrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
          show_progress: bool = True) -> TrainResult:
    """Train a VADeR network (one process, or one of several started by torchrun).

    Args:
        config: the run's settings; `config.data` is required.
        resume: a run folder or checkpoint to continue exactly from; `config` must then match the
            checkpoint's config except for `resume.RESUMABLE_CHANGES` (a changed `steps` re-plans the schedule).
        overwrite: replace the run that `config.out_dir` holds (its `RUN_FILES` and export), if it is
            not the run being resumed; without it such a folder is refused.
        show_progress: draw the tqdm bar on rank 0 (the JSONL log is always written).

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: for a missing data source, a model that is not a VADeR architecture, a config that
            does not fit the process count, a resume config that differs from the checkpoint's in a
            field that changes the maths, or a file that is not a trainer checkpoint.
        FileExistsError: for an `out_dir` that holds another run's files, without `overwrite`.
        FileNotFoundError: for missing data, init or resume files.
        NonFiniteLossError: when the loss becomes NaN or inf (the last good checkpoint is kept).
    """
    if config.data is None:
        raise ValueError("config.data is not set: give a folder of images or a file of image paths (--data)")
    check_architecture(config.model)
    replace = _claim_run_folder(Path(config.out_dir), resume, overwrite)
    joined_here = not has_process_group()
    context = setup_distributed(config.device)
    try:
        return _run(config, context, resume, replace, show_progress)
    finally:
        if joined_here:
            teardown_distributed()


def _claim_run_folder(out_dir: Path, resume: str | Path | None, overwrite: bool) -> bool:
    """Check that a run may write into `out_dir`, before any work; returns whether to remove an old run there.

    A folder without `RUN_FILES` or an export is free, and a resume may continue in its own folder;
    any other run's files are replaced only with `overwrite`.

    Raises:
        FileExistsError: for another run's folder without `overwrite`, naming the ways on.
    """
    found = [name for name in (*RUN_FILES, EXPORT_FOLDER) if os.path.lexists(out_dir / name)]
    if not found or (resume is not None and _same_folder(out_dir, resumed_run_folder(resume))):
        return False
    if overwrite:
        return True
    raise FileExistsError(f"{out_dir} already holds a training run ({', '.join(found)}); continue it with "
                          f"--resume {out_dir}, choose a new --out folder, or pass --overwrite to replace it")


def _same_folder(first: Path, second: Path) -> bool:
    return first.is_dir() and second.is_dir() and os.path.samefile(first, second)


def _remove_old_run(out_dir: Path) -> None:
    """Remove the files an earlier run wrote into `out_dir` (and nothing else), so none mix with the new run's."""
    export = out_dir / EXPORT_FOLDER
    exported = [] if export.is_symlink() else [export / name for name in EXPORT_FILES]  # never through a link
    for path in [out_dir / name for name in RUN_FILES] + exported:
        if path.is_file() or path.is_symlink():
            path.unlink()  # a link is removed itself, never what it points to
    if exported and export.is_dir() and not any(export.iterdir()):
        export.rmdir()
    remove_stale_temporaries(out_dir / CHECKPOINT_NAME)


def _run(config: TrainConfig, context: DistributedContext, resume, replace: bool,
         show_progress: bool) -> TrainResult:
    """The run's outline: check, list the data, build, write the run files, prefill, train, export."""
    started = time.perf_counter()
    checkpoint = _load_resume(config, resume)
    _check_world(config, context)
    images = _list_data(config, checkpoint)
    state = _build_state(config, context, checkpoint)
    loader = build_loader(ViewPairDataset(images, config), _sampler(config, images, context), config,
                          context.world_size, pin_memory=context.device.type == "cuda")
    start_step = int(checkpoint["step"]) if checkpoint is not None else 0
    out_dir = Path(config.out_dir)
    if context.is_main:
        if replace:  # only now, once the new run has its data and state: a failed start keeps the old run
            _remove_old_run(out_dir)
        _write_run_files(out_dir, config, images)
    log = ProgressLog(out_dir / "log.jsonl", config.steps, start_step, config.batch_size,
                      enabled=context.is_main, show_bar=show_progress)
    _log_start(log, state, images, start_step, context, resumed=checkpoint is not None)
    try:
        if checkpoint is None and config.prefill_queue:
            batches = prefill_queue(state, loader, context.device)
            log.message(f"filled the queue with {config.queue_size} keys from {batches} batches")
        run = RunContext(process=context, log=log, out_dir=out_dir, data_fingerprint=images.fingerprint())
        done = _train_steps(state, loader, start_step, run)
    finally:
        log.close()
    exported = _export(state, images, out_dir) if config.export and context.is_main else None
    barrier()
    return TrainResult(out_dir=out_dir, checkpoint=out_dir / CHECKPOINT_NAME, steps=config.steps,
                       losses=done.losses, skipped_images=images.skipped, load_failures=done.load_failures,
                       export=exported, wall_time_s=time.perf_counter() - started)


def _load_resume(config: TrainConfig, resume) -> dict[str, object] | None:
    """The checkpoint to resume from, once the resume policy accepts `config` for it; None for a new run."""
    if resume is None:
        return None
    checkpoint = load_checkpoint(resume)
    check_resume(config, checkpoint)
    return checkpoint


def _check_world(config: TrainConfig, context: DistributedContext) -> None:
    if config.batch_size % context.world_size:
        raise ValueError(f"batch_size {config.batch_size} does not split over {context.world_size} processes")
    if (config.batch_size // context.world_size) % config.bn_group_size:
        raise ValueError(f"each process's batch ({config.batch_size // context.world_size}) must be a multiple of "
                         f"bn_group_size ({config.bn_group_size}) so that processes hold whole BN groups")


def _list_data(config: TrainConfig, checkpoint: dict[str, object] | None) -> ImageList:
    """The run's images; a resume must see the images its checkpoint was trained on."""
    images = list_images(config.data)
    if checkpoint is not None:
        check_resume_data(checkpoint, images, config.data)
    if len(images.paths) < 2 and not config.in_image_negatives:
        raise ValueError(
            f"the training data {config.data!r} has {len(images.paths)} readable image: a pixel's negatives are "
            "pixels of other images, so every queued key would be masked and the loss would have no negatives "
            "(it would sit at 0 and learn nothing); add images, or pass --in-image-negatives to use far pixels "
            "of the same image as negatives"
        )
    return images


def _build_state(config: TrainConfig, context: DistributedContext, checkpoint: dict[str, object] | None) -> TrainState:
    """A fresh state under the run's seed, restored from `checkpoint` if resuming, wrapped for speed."""
    torch.manual_seed(config.seed)
    state = build_state(config, context.device)
    if checkpoint is not None:
        restore_state(state, checkpoint)
    return wrap_for_speed(state, context)


def _sampler(config: TrainConfig, images: ImageList, context: DistributedContext) -> ResumableSampler:
    return ResumableSampler(len(images.paths), config.batch_size, context.world_size, context.rank, config.seed)


def _log_start(log: ProgressLog, state: TrainState, images: ImageList, start_step: int,
               context: DistributedContext, resumed: bool) -> None:
    """Say what the run trains on, where its trunk came from, and warn about a BN leak."""
    config = state.config
    log.message(f"training {config.model} on {len(images.paths)} images ({len(images.skipped)} unreadable, "
                f"skipped) for steps {start_step}..{config.steps} on {context.world_size} x {context.device.type}")
    if state.trunk_init is not None and not resumed:
        log.message(f"trunk initialised from {config.init}:\n{textwrap.indent(state.trunk_init, '  ')}")
    if config.batch_size // config.bn_group_size == 1:
        log.message("warning: the batch is a single batch-norm group, so the key shuffle cannot give keys other "
                    "statistics than their queries (MoCo's BN leak); set bn_group_size to batch_size / 2 or less")


def prefill_queue(state: TrainState, loader: DataLoader, device: torch.device) -> int:
    """Fill the queue with real keys before step 0, from a data stream of its own; returns the batches used."""
    config = state.config
    batches = math.ceil(config.queue_size / (config.batch_size * config.queue_keys_per_image))
    loader.sampler.set_steps(0, batches, epoch_offset=PREFILL_EPOCH)
    for done, raw in enumerate(loader):
        batch = prepare_batch(raw, device, state.encoder.pretrained_cfg, state.channels_last)
        enqueue_keys(state, key_features(state, batch, config.steps + done))
    return batches


def _train_steps(state: TrainState, loader: DataLoader, start_step: int, run: RunContext) -> StepsDone:
    """Run steps start_step..steps-1, logging and checkpointing as the config says."""
    config, device, sampler = state.config, run.process.device, loader.sampler
    losses, failures, step, last_saved = [], 0, start_step, start_step
    sampler.set_steps(start_step, config.steps)
    waiting_since = time.perf_counter()
    for raw in loader:
        data_wait = time.perf_counter() - waiting_since
        batch = prepare_batch(raw, device, state.encoder.pretrained_cfg, state.channels_last)
        learning_rate = learning_rate_at(step, config)
        try:
            values = train_step(state, batch, step, learning_rate)
        except NonFiniteLossError as error:
            raise NonFiniteLossError(
                f"{error} The last good checkpoint (step {last_saved}) is {run.out_dir / CHECKPOINT_NAME}. "
                "Lower base_lr, set grad_clip, or use amp=fp32/bf16, then resume from it.") from None
        step += 1
        losses.append(values["loss"])
        failures += values["load_failures"]
        run.log.record(step, values, learning_rate, data_wait, values["load_failures"],
                       write=step % config.log_every == 0 or step == config.steps)
        if step % config.checkpoint_every == 0 or step == config.steps:
            _save(state, step, sampler.steps_per_epoch, run)
            last_saved = step
        waiting_since = time.perf_counter()
    return StepsDone(losses=losses, load_failures=failures)


def _save(state: TrainState, step: int, steps_per_epoch: int, run: RunContext) -> None:
    sync_running_stats(state.encoder)
    sync_running_stats(state.momentum_encoder)
    if run.process.is_main:
        save_checkpoint(assemble_checkpoint(state, step, steps_per_epoch, run.data_fingerprint),
                        run.out_dir / CHECKPOINT_NAME)


def _write_run_files(out_dir: Path, config: TrainConfig, images: ImageList) -> None:
    atomic_write(out_dir / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    skipped = [" ".join(f"skipped {path}: {reason}".split()) for path, reason in images.skipped]
    write_path_list(out_dir / "data.txt", images.paths, comments=skipped)


def _export(state: TrainState, images: ImageList, out_dir: Path) -> ExportResult:
    """Export the query encoder as release weights into `out_dir/export` (rank 0)."""
    config, encoder = state.config, state.encoder
    return export_weights(encoder.state_dict(), config.model, out_dir / "export", tag=config.weights_tag,
                          provenance=export_provenance(config, images), license=config.weights_license,
                          config=hub_config(encoder))
