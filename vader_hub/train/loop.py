"""Training VADeR end to end: `train(TrainConfig(...))`, the engine behind `python -m vader_hub.train`.

    python -m vader_hub.train --preset smoke --data photos/ --out-dir runs/smoke      # one CPU process
    torchrun --nproc_per_node 8 -m vader_hub.train --data imagenet/train --out-dir runs/r50
    python -m vader_hub.train --resume runs/r50                                      # continue exactly

A run folder holds `config.json` (the resolved config), `data.txt` (the images used),
`log.jsonl`, `checkpoint.pt` (atomic, every `checkpoint_every` steps and at the end) and
`export/` (the query encoder as release weights, through `vader_hub.weights.export_weights`).
"""

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..fileio import atomic_write
from ..pathlist import write_path_list
from .batchnorm import sync_running_stats
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .config import TrainConfig, config_from_dict
from .data import ImageList, ResumableSampler, ViewPairDataset, build_loader, list_images
from .distributed import DistributedContext, all_reduce_sum, barrier, setup_distributed, teardown_distributed
from .progress import ProgressLog
from .schedule import learning_rate_at
from .state import TrainState, build_state, check_resume_config, checkpoint_dict, code_version, load_state
from .step import (
    backward,
    contrastive_loss,
    enqueue_keys,
    key_features,
    optimizer_step,
    prepare_batch,
    query_features,
)

PREFILL_EPOCH = 2**32  # the prefill's data stream, apart from every training epoch


@dataclass(frozen=True)
class RunContext:
    """Where a run reports and saves: the process's place, the log, the run folder, the data's identity."""

    process: DistributedContext
    log: ProgressLog
    out_dir: Path
    data_fingerprint: str


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stopped before applying that step."""


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
        export: the `vader_hub.weights.ExportResult` on rank 0 when exporting, else None.
        wall_time_s: seconds this call took.
    """

    out_dir: Path
    checkpoint: Path
    steps: int
    losses: list[float]
    skipped_images: list[tuple[str, str]]
    load_failures: int
    export: object | None
    wall_time_s: float


def train(config: TrainConfig, *, resume: str | Path | None = None, show_progress: bool = True) -> TrainResult:
    """Train a VADeR network (one process, or one of several started by torchrun).

    Args:
        config: the run's settings; `config.data` is required.
        resume: a run folder or checkpoint to continue exactly from; `config` must then match the
            checkpoint's config except for `RESUMABLE_CHANGES` (a changed `steps` re-plans the schedule).
        show_progress: draw the tqdm bar on rank 0 (the JSONL log is always written).

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: for a missing data source, a config that does not fit the process count, or a
            resume config that differs from the checkpoint's in a field that changes the maths.
        FileNotFoundError: for missing data, init or resume files.
        NonFiniteLossError: when the loss becomes NaN or inf (the last good checkpoint is kept).
    """
    if config.data is None:
        raise ValueError("config.data is not set: give a folder of images or a file of image paths (--data)")
    joined_here = not (dist.is_available() and dist.is_initialized())
    context = setup_distributed(config.device)
    try:
        return _run(config, context, resume, show_progress)
    finally:
        if joined_here:
            teardown_distributed()


def _run(config: TrainConfig, context: DistributedContext, resume, show_progress: bool) -> TrainResult:
    started = time.perf_counter()
    checkpoint = load_checkpoint(resume) if resume is not None else None
    if checkpoint is not None:
        check_resume_config(config, config_from_dict(checkpoint["config"]))
        if config.steps < int(checkpoint["step"]):
            raise ValueError(f"steps={config.steps} is below the checkpoint's step {int(checkpoint['step'])}: a resume "
                             "cannot go back; pass --steps of at least that many, or start a new run")
    _check_world(config, context)
    out_dir = Path(config.out_dir)
    images = list_images(config.data)
    saved_fingerprint = checkpoint["data_position"].get("data_fingerprint") if checkpoint is not None else None
    if saved_fingerprint is not None and saved_fingerprint != images.fingerprint():
        raise ValueError(f"the images under {config.data!r} are not the ones the checkpoint was trained on "
                         f"(their list or sizes differ); resume needs the same data to continue exactly")
    torch.manual_seed(config.seed)
    state = build_state(config, context.device)
    if checkpoint is not None:
        load_state(state, checkpoint)
    _wrap_for_speed(state, context)
    sampler = ResumableSampler(len(images.paths), config.batch_size, context.world_size, context.rank, config.seed)
    loader = build_loader(ViewPairDataset(images, config), sampler, config, context.world_size,
                          pin_memory=context.device.type == "cuda")
    start_step = int(checkpoint["step"]) if checkpoint is not None else 0
    if context.is_main:
        _write_run_files(out_dir, config, images)
    log = ProgressLog(out_dir / "log.jsonl", config.steps, start_step, config.batch_size,
                      enabled=context.is_main, show_bar=show_progress)
    log.message(f"training {config.model} on {len(images.paths)} images ({len(images.skipped)} unreadable, "
                f"skipped) for steps {start_step}..{config.steps} on {context.world_size} x {context.device.type}")
    if config.batch_size // config.bn_group_size == 1:
        log.message("warning: the batch is a single batch-norm group, so the key shuffle cannot give keys other "
                    "statistics than their queries (MoCo's BN leak); set bn_group_size to batch_size / 2 or less")
    try:
        if checkpoint is None and config.prefill_queue:
            batches = prefill_queue(state, loader, sampler, context.device)
            log.message(f"filled the queue with {config.queue_size} keys from {batches} batches")
        run = RunContext(process=context, log=log, out_dir=out_dir, data_fingerprint=images.fingerprint())
        losses, failures = _train_steps(state, loader, sampler, start_step, run)
    finally:
        log.close()
    exported = _export(state, images, out_dir) if config.export and context.is_main else None
    barrier()
    return TrainResult(out_dir=out_dir, checkpoint=out_dir / CHECKPOINT_NAME, steps=config.steps, losses=losses,
                       skipped_images=images.skipped, load_failures=failures, export=exported,
                       wall_time_s=time.perf_counter() - started)


def _check_world(config: TrainConfig, context: DistributedContext) -> None:
    if config.batch_size % context.world_size:
        raise ValueError(f"batch_size {config.batch_size} does not split over {context.world_size} processes")
    if (config.batch_size // context.world_size) % config.bn_group_size:
        raise ValueError(f"each process's batch ({config.batch_size // context.world_size}) must be a multiple of "
                         f"bn_group_size ({config.bn_group_size}) so that processes hold whole BN groups")


def _wrap_for_speed(state: TrainState, context: DistributedContext) -> None:
    if context.world_size > 1:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        state.encoder_forward = DistributedDataParallel(state.encoder, device_ids=device_ids, broadcast_buffers=False)
    if state.config.compile:
        # Training batches have fixed shapes; compiling for static shapes avoids a failure of
        # inductor's dynamic-shape path seen on CPU with torch 2.14.1.
        state.encoder_forward = torch.compile(state.encoder_forward, dynamic=False)
        state.momentum_forward = torch.compile(state.momentum_forward, dynamic=False)
    if context.device.type == "cuda":
        enable_fast_cuda_math()


def enable_fast_cuda_math() -> None:
    """cuDNN autotuning (fixed input sizes) and TF32 for the float32 loss matmuls."""
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


def _normalisation(state: TrainState, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(state.encoder.pretrained_cfg["mean"], device=device),
            torch.tensor(state.encoder.pretrained_cfg["std"], device=device))


def prefill_queue(state: TrainState, loader, sampler: ResumableSampler, device: torch.device) -> int:
    """Fill the queue with real keys before step 0, from a data stream of its own; returns the batches used."""
    config = state.config
    batches = math.ceil(config.queue_size / (config.batch_size * config.queue_keys_per_image))
    mean, std = _normalisation(state, device)
    sampler.set_steps(0, batches, epoch_offset=PREFILL_EPOCH)
    for done, raw in enumerate(loader):
        batch = prepare_batch(raw, device, mean, std, state.channels_last)
        enqueue_keys(state, key_features(state, batch, config.steps + done))
    return batches


def _train_steps(state: TrainState, loader, sampler: ResumableSampler, start_step: int,
                 run: RunContext) -> tuple[list[float], int]:
    """Run steps start_step..steps-1; returns the per-step losses and the decode failures seen."""
    config, device = state.config, run.process.device
    mean, std = _normalisation(state, device)
    losses, failures, step, last_saved = [], 0, start_step, start_step
    sampler.set_steps(start_step, config.steps)
    waiting_since = time.perf_counter()
    for raw in loader:
        data_wait = time.perf_counter() - waiting_since
        # --- forward: queries with gradients, keys from the momentum encoder, loss against the queue
        batch = prepare_batch(raw, device, mean, std, state.channels_last)
        learning_rate = learning_rate_at(step, config)
        queries = query_features(state, batch)
        keys = key_features(state, batch, step)
        result = contrastive_loss(state, queries, keys, batch)
        values = _global_statistics(result, raw["load_failures"], device)
        if not math.isfinite(values["loss"]):
            raise NonFiniteLossError(
                f"the loss became {values['loss']} at step {step}; stopped before applying it. The last good "
                f"checkpoint (step {last_saved}) is {run.out_dir / CHECKPOINT_NAME}. Lower base_lr, set "
                f"grad_clip, or use amp=fp32/bf16, then resume from it.")
        # --- update: backward, optimizer and EMA, then the keys join the queue
        backward(state, result.loss)
        optimizer_step(state, learning_rate)
        enqueue_keys(state, keys)
        step += 1
        # --- log and checkpoint
        losses.append(values["loss"])
        failures += values["load_failures"]
        run.log.record(step, values, learning_rate, data_wait, values["load_failures"],
                       write=step % config.log_every == 0 or step == config.steps)
        if step % config.checkpoint_every == 0 or step == config.steps:
            _save(state, step, sampler.steps_per_epoch, run)
            last_saved = step
        waiting_since = time.perf_counter()
    return losses, failures


def _global_statistics(result, load_failures: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Loss and similarities averaged over processes, decode failures summed (one small all-reduce)."""
    local = torch.stack([result.loss.detach(), result.positive_similarity, result.negative_similarity,
                         load_failures.sum().to(device, torch.float32)])  # (4,)
    totals = all_reduce_sum(local).tolist()
    world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    return {"loss": totals[0] / world_size, "positive_similarity": totals[1] / world_size,
            "negative_similarity": totals[2] / world_size, "load_failures": int(totals[3])}


def _save(state: TrainState, step: int, steps_per_epoch: int, run: RunContext) -> None:
    sync_running_stats(state.encoder)
    sync_running_stats(state.momentum_encoder)
    if run.process.is_main:
        save_checkpoint(checkpoint_dict(state, step, steps_per_epoch, run.data_fingerprint),
                        run.out_dir / CHECKPOINT_NAME)


def _write_run_files(out_dir: Path, config: TrainConfig, images: ImageList) -> None:
    atomic_write(out_dir / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    skipped = [" ".join(f"skipped {path}: {reason}".split()) for path, reason in images.skipped]
    write_path_list(out_dir / "data.txt", images.paths, comments=skipped)


def _export(state: TrainState, images: ImageList, out_dir: Path):
    """Export the query encoder as release weights into `out_dir/export` (rank 0)."""
    from ..weights import export_weights

    config = state.config
    provenance = {"config": dataclasses.asdict(config), "steps": config.steps, "code_version": code_version(),
                  "data": {"source": config.data, "images": len(images.paths), "skipped": len(images.skipped),
                           "sha256_of_paths_and_sizes": images.fingerprint(), "list": "data.txt"}}
    return export_weights(state.encoder.state_dict(), config.model, out_dir / "export", tag=config.weights_tag,
                          provenance=provenance, license=config.weights_license)


