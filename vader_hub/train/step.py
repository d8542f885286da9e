"""The VADeR step, top to bottom: `train_step(state, batch, step, learning_rate)`.

    batch = prepare_batch(raw, device, pretrained_cfg, channels_last)   # a loader batch, normalised, on the device
    statistics = train_step(state, batch, step, learning_rate)          # one step of the method

A step computes the query encoder's features at each image's query cells, the momentum encoder's
features at the matched key points, the dense InfoNCE loss against the queue, then back-propagates,
steps the optimizer, moves the momentum encoder towards the encoder (EMA) and queues the keys.
Each phase runs inside a `torch.profiler.record_function` range named in `STEP_PHASES`, so a
profiler trace, and benchmarks/train_step.py, time exactly this code.

The key encoder's input is shuffled over the whole global batch (split-BN groups then hold other
images than the query's groups, see batchnorm.py); in several processes the key views are gathered
first, so the shuffle, and hence every number, is the same as in one process.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.profiler import record_function

from ..models.cells import sample_cells
from ..models.preprocess import normalize_images
from .distributed import all_reduce_sum, gather_interleaved, local_part, world_size
from .encoders import momentum_update
from .loss import InfoNCEResult, dense_info_nce
from .state import TrainState

SHUFFLE_SEED_OFFSET = 0x5EED  # keeps the key-shuffle stream apart from the data seeds
STEP_PHASES = ("forward_query", "forward_key", "loss", "statistics", "backward", "optimizer_ema", "queue")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stopped before applying that step."""


@dataclass(frozen=True)
class DeviceBatch:
    """A batch on the device.

    Views (B, 3, S, S) normalised; cells (B, P); points (B, P, 2); ids (B,); load_failures (B,), the
    images that failed to decode before each sample's.
    """

    query_views: torch.Tensor
    key_views: torch.Tensor
    query_cells: torch.Tensor
    key_points: torch.Tensor
    image_ids: torch.Tensor
    load_failures: torch.Tensor


@dataclass(frozen=True)
class KeyFeatures:
    """Key features at the matched points: this process's (B, P, C) and the global batch's with ids."""

    local: torch.Tensor
    global_keys: torch.Tensor
    global_ids: torch.Tensor


def train_step(state: TrainState, batch: DeviceBatch, step: int, learning_rate: float) -> dict[str, float]:
    """One VADeR step: forward both encoders, dense InfoNCE against the queue, update, enqueue.

    Args:
        state: the networks, optimizer and queue, updated in place.
        batch: this process's part of the global batch (`prepare_batch`).
        step: the 0-based step, which seeds the key shuffle (the same on every process).
        learning_rate: the learning rate of this step.

    Returns:
        `loss`, `positive_similarity` and `negative_similarity` averaged over processes, and the
        `load_failures` of the global batch.

    Raises:
        NonFiniteLossError: when the loss is NaN or inf; nothing has been updated then.
    """
    config = state.config
    with record_function("forward_query"):
        queries = query_features(state, batch)  # (B, P, C)
    with record_function("forward_key"):
        keys = key_features(state, batch, step)  # local (B, P, C), global (B_global, P, C)
    with record_function("loss"):
        in_image_points = batch.key_points if config.in_image_negatives else None
        result = dense_info_nce(queries, keys.local, state.queue.keys, batch.image_ids, state.queue.ids,
                                config.temperature, key_points=in_image_points,
                                min_distance=config.in_image_min_distance)
    with record_function("statistics"):
        statistics = global_statistics(result, batch.load_failures)
    if not math.isfinite(statistics["loss"]):
        raise NonFiniteLossError(f"the loss became {statistics['loss']} at step {step}; stopped before applying it.")
    with record_function("backward"):
        state.scaler.scale(result.loss).backward()
    with record_function("optimizer_ema"):
        optimizer_step(state, learning_rate)
        momentum_update(state.momentum_encoder, state.encoder, config.momentum)
    with record_function("queue"):
        enqueue_keys(state, keys)
    return statistics


def prepare_batch(raw: dict[str, torch.Tensor], device: torch.device, pretrained_cfg: dict[str, object],
                  channels_last: bool) -> DeviceBatch:
    """Move a loader batch to `device` and normalise its uint8 views with the model's mean and std.

    Args:
        raw: a batch of `data.ViewPairDataset` items.
        device: where the step runs.
        pretrained_cfg: the model's `pretrained_cfg`, whose `mean` and `std` normalise the views.
        channels_last: whether the views go to the networks as channels_last.
    """
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def to_device(name: str) -> torch.Tensor:
        return raw[name].to(device, non_blocking=True)

    def normalised(name: str) -> torch.Tensor:
        return normalize_images(to_device(name), pretrained_cfg).contiguous(memory_format=memory_format)  # (B, 3, S, S)

    return DeviceBatch(query_views=normalised("query_view"), key_views=normalised("key_view"),
                       query_cells=to_device("query_cells"), key_points=to_device("key_points"),
                       image_ids=to_device("image_id"), load_failures=to_device("load_failures"))


def query_features(state: TrainState, batch: DeviceBatch) -> torch.Tensor:
    """The encoder's L2-normalised features at each image's query cells: (B, P, C) float32."""
    with state.precision.autocast():
        maps = state.encoder_forward(batch.query_views)  # (B, C, h, w)
    flat = maps.flatten(2)  # (B, C, h*w)
    index = batch.query_cells.unsqueeze(1).expand(-1, flat.shape[1], -1)  # (B, C, P)
    picked = torch.gather(flat, 2, index).transpose(1, 2)  # (B, P, C)
    return F.normalize(picked.float(), dim=-1)


def sample_key_points(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of `maps` (B, C, h, w) at fractional (x, y) cells `points` (B, P, 2), normalised.

    Returns:
        (B, P, C) float32, L2-normalised along C.
    """
    return F.normalize(sample_cells(maps.float(), points), dim=-1)  # (B, P, C)


def key_shuffle(batch_size: int, seed: int, step: int, device: torch.device) -> torch.Tensor:
    """The key encoder's input order for a step: position p of the shuffled batch holds sample order[p]."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step + SHUFFLE_SEED_OFFSET)
    return torch.randperm(batch_size, generator=generator).to(device)


@torch.no_grad()
def key_features(state: TrainState, batch: DeviceBatch, step: int) -> KeyFeatures:
    """The momentum encoder's features at the key points, computed on a shuffled global batch.

    `step` seeds the shuffle (the same on every process); the queue prefill uses steps past the run's end.
    """
    views = gather_interleaved(batch.key_views)  # (B_global, 3, S, S)
    points = gather_interleaved(batch.key_points)  # (B_global, P, 2)
    ids = gather_interleaved(batch.image_ids)  # (B_global,)
    order = key_shuffle(views.shape[0], state.config.seed, step, views.device)  # (B_global,)
    mine = local_part(order)  # (B_local,) the samples this process encodes
    with state.precision.autocast():
        maps = state.momentum_forward(views[mine])  # (B_local, C, h, w)
    shuffled = gather_interleaved(sample_key_points(maps, points[mine]))  # (B_global, P, C), shuffled order
    keys = torch.empty_like(shuffled)
    keys[order] = shuffled  # (B_global, P, C) back in batch order
    return KeyFeatures(local=local_part(keys), global_keys=keys, global_ids=ids)


def global_statistics(result: InfoNCEResult, load_failures: torch.Tensor) -> dict[str, float]:
    """Loss and similarities averaged over processes, decode failures summed (one small all-reduce)."""
    local = torch.stack([result.loss.detach(), result.positive_similarity, result.negative_similarity,
                         load_failures.sum().to(torch.float32)])  # (4,)
    totals = all_reduce_sum(local).tolist()
    processes = world_size()
    return {"loss": totals[0] / processes, "positive_similarity": totals[1] / processes,
            "negative_similarity": totals[2] / processes, "load_failures": int(totals[3])}


def optimizer_step(state: TrainState, learning_rate: float) -> None:
    """Set the learning rate; unscale and clip; step (skipped by the scaler on inf gradients); zero the gradients."""
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate
    if state.config.grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.encoder.parameters(), state.config.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)


def enqueue_keys(state: TrainState, keys: KeyFeatures) -> None:
    """Queue the first `queue_keys_per_image` matched keys of every image of the global batch."""
    per_image = state.config.queue_keys_per_image
    chosen = keys.global_keys[:, :per_image].reshape(-1, keys.global_keys.shape[-1])  # (B_global * n, C)
    state.queue.enqueue(chosen, keys.global_ids.repeat_interleave(per_image))
