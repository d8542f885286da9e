"""One training step, as the phases the benchmark times separately.

    batch = prepare_batch(raw, ...)                    # data to the device, uint8 -> normalised float
    queries = query_features(state, batch)             # forward (query), with gradients
    keys = key_features(state, batch, step)            # forward (key): shuffled, no gradients
    result = contrastive_loss(state, queries, keys, batch)   # loss
    backward(state, result.loss)                       # backward
    optimizer_step(state, learning_rate)               # optimizer, then the momentum (EMA) update
    enqueue_keys(state, keys)                          # queue

The key encoder's input is shuffled over the whole global batch (split-BN groups then hold other
images than the query's groups, see batchnorm.py); in several processes the key views are gathered
first, so the shuffle, and hence every number, is the same as in one process.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.cells import sample_cells
from .distributed import gather_interleaved, local_part
from .encoders import momentum_update
from .loss import InfoNCEResult, dense_info_nce
from .state import TrainState

SHUFFLE_SEED_OFFSET = 0x5EED  # keeps the key-shuffle stream apart from the data seeds


@dataclass(frozen=True)
class DeviceBatch:
    """A batch on the device. Views (B, 3, S, S) normalised; cells (B, P); points (B, P, 2); ids (B,)."""

    query_views: torch.Tensor
    key_views: torch.Tensor
    query_cells: torch.Tensor
    key_points: torch.Tensor
    image_ids: torch.Tensor


@dataclass(frozen=True)
class KeyFeatures:
    """Key features at the matched points: this process's (B, P, C) and the global batch's with ids."""

    local: torch.Tensor
    global_keys: torch.Tensor
    global_ids: torch.Tensor


def prepare_batch(raw: dict[str, torch.Tensor], device: torch.device, mean: torch.Tensor, std: torch.Tensor,
                  channels_last: bool) -> DeviceBatch:
    """Move a loader batch to `device` and normalise its uint8 views with the model's mean and std."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def normalise(views: torch.Tensor) -> torch.Tensor:
        views = views.to(device, non_blocking=True).float().div_(255)  # (B, 3, S, S)
        return views.sub_(mean.view(1, 3, 1, 1)).div_(std.view(1, 3, 1, 1)).contiguous(memory_format=memory_format)

    return DeviceBatch(query_views=normalise(raw["query_view"]), key_views=normalise(raw["key_view"]),
                       query_cells=raw["query_cells"].to(device, non_blocking=True),
                       key_points=raw["key_points"].to(device, non_blocking=True),
                       image_ids=raw["image_id"].to(device, non_blocking=True))


def query_features(state: TrainState, batch: DeviceBatch) -> torch.Tensor:
    """The encoder's L2-normalised features at each image's query cells: (B, P, C) float32."""
    with state.autocast(batch.query_views.device):
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
    with state.autocast(views.device):
        maps = state.momentum_forward(views[mine])  # (B_local, C, h, w)
    shuffled = gather_interleaved(sample_key_points(maps, points[mine]))  # (B_global, P, C), shuffled order
    keys = torch.empty_like(shuffled)
    keys[order] = shuffled  # (B_global, P, C) back in batch order
    return KeyFeatures(local=local_part(keys), global_keys=keys, global_ids=ids)


def contrastive_loss(state: TrainState, queries: torch.Tensor, keys: KeyFeatures, batch: DeviceBatch) -> InfoNCEResult:
    """The dense InfoNCE loss of this process's queries against the queue (in float32)."""
    config = state.config
    return dense_info_nce(queries, keys.local, state.queue.keys, batch.image_ids, state.queue.ids,
                          config.temperature, key_points=batch.key_points if config.in_image_negatives else None,
                          min_distance=config.in_image_min_distance)


def backward(state: TrainState, loss: torch.Tensor) -> None:
    """Back-propagate the (scaled, for fp16) loss."""
    state.scaler.scale(loss).backward()


def optimizer_step(state: TrainState, learning_rate: float) -> None:
    """Unscale, clip, step the optimizer (skipped by the scaler on inf gradients), then update the EMA."""
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate
    if state.config.grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.encoder.parameters(), state.config.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    momentum_update(state.momentum_encoder, state.encoder, state.config.momentum)


def enqueue_keys(state: TrainState, keys: KeyFeatures) -> None:
    """Queue the first `queue_keys_per_image` matched keys of every image of the global batch."""
    per_image = state.config.queue_keys_per_image
    chosen = keys.global_keys[:, :per_image].reshape(-1, keys.global_keys.shape[-1])  # (B_global * n, C)
    state.queue.enqueue(chosen, keys.global_ids.repeat_interleave(per_image))
