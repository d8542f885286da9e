"""Training data: image lists, two-view samples with their correspondences, and a resumable loader.

A data source is a folder tree (every image file below it, in sorted order) or a path list
(`vader_hub.pathlist`: one image path per line, relative to the list's folder). Images
that cannot be read are skipped and counted, never fatal: at start-up every file's header is
checked, and an image that fails to decode later is replaced by the next readable one and counted
in the batch's `load_failures`.

Every random choice of a sample is drawn from a generator seeded by (seed, epoch, image index), so
a sample is the same whatever the number of workers or processes, and a resumed run sees exactly
the batches the interrupted one would have seen.
"""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler

from ..pathlist import is_image_file, read_path_list
from .config import TrainConfig
from .views import photometric_augment, render_views, sample_view_pair


@dataclass(frozen=True)
class ImageList:
    """The readable images of a data source and what was skipped.

    Attributes:
        paths: readable image files, in a fixed order (the image id is the index here).
        root: the folder the paths are listed from (the folder, or the path file's folder).
        skipped: (path, reason) of every file that was listed but cannot be read.
    """

    paths: list[Path]
    root: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def fingerprint(self) -> str:
        """sha256 over the image paths (relative to `root` where possible) and sizes: the data's identity.

        It survives moving the data folder, and changes when an image is added, removed or rewritten
        with another size, so a resumed run can check that it sees the same images in the same order.
        """
        digest = hashlib.sha256()
        for path in self.paths:
            name = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            digest.update(f"{name}\t{path.stat().st_size}\n".encode())
        return digest.hexdigest()


def _listed_paths(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if is_image_file(p) and not _in_hidden_folder(p, source))
    return read_path_list(source)


def _in_hidden_folder(path: Path, root: Path) -> bool:
    """Hidden folders are skipped like hidden files: they hold no photos (e.g. a thumbnail cache)."""
    return any(part.startswith(".") for part in path.relative_to(root).parent.parts)


def _unreadable_reason(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            width, height = image.size
        return None if width > 0 and height > 0 else "empty image"
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"{type(error).__name__}: {error}"


def list_images(source: str | os.PathLike, max_threads: int = 8) -> ImageList:
    """The readable images of a folder tree or a file of paths.

    Args:
        source: a directory (searched recursively) or a text file with one path per line.
        max_threads: threads for the header checks (I/O bound).

    Returns:
        An `ImageList`.

    Raises:
        FileNotFoundError: if `source` does not exist.
        ValueError: if no readable image is found (the message lists the first skipped files).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"training data {str(source)!r} does not exist; give a folder of images "
                                f"or a text file with one image path per line")
    candidates = _listed_paths(source)
    with ThreadPoolExecutor(max_threads) as pool:
        reasons = list(pool.map(_unreadable_reason, candidates))
    paths = [p for p, reason in zip(candidates, reasons, strict=True) if reason is None]
    skipped = [(str(p), reason) for p, reason in zip(candidates, reasons, strict=True) if reason is not None]
    if not paths:
        shown = "; ".join(f"{p} ({r})" for p, r in skipped[:5]) or "no image files found"
        raise ValueError(f"no readable images in {str(source)!r}: {shown}")
    return ImageList(paths=paths, root=source if source.is_dir() else source.parent, skipped=skipped)


def read_image(path: Path, short_side: int | None) -> torch.Tensor:
    """An RGB image as (3, H, W) uint8, EXIF-rotated, resized (antialiased) to `short_side` if given."""
    with Image.open(path) as image:
        if short_side is not None:
            scale = short_side / min(image.size)
            image.draft("RGB", (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))))
        image = ImageOps.exif_transpose(image).convert("RGB")
    if short_side is not None and min(image.size) != short_side:
        scale = short_side / min(image.size)
        size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
        image = image.resize(size, Image.BILINEAR, reducing_gap=3.0)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)  # (3, H, W)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's random choices, a pure function of (seed, epoch, index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0])


class ViewPairDataset(Dataset):
    """Two augmented views of an image and their matched cells, addressed by (epoch, index).

    Each item is a dict: `query_view`, `key_view` (3, S, S) uint8; `query_cells` (P,) long;
    `key_points` (P, 2) float32 (x, y) key cells; `image_id` (the index of the image actually
    used); `load_failures` (images that failed to decode before it).
    """

    def __init__(self, images: ImageList, config: TrainConfig) -> None:
        self.paths = images.paths
        self.config = config

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        generator = torch.Generator().manual_seed(sample_seed(self.config.seed, epoch, index))
        source, image_id, failures = self._read_with_fallback(index)
        pair = sample_view_pair(tuple(source.shape[1:]), self.config, generator)
        matrices = torch.stack([pair.query_matrix, pair.key_matrix])  # (2, 3, 3)
        views = render_views(source.float().div_(255), matrices, self.config.image_size)  # (2, 3, S, S)
        views = [photometric_augment(view, self.config, generator) for view in views]
        as_bytes = [view.mul(255).round_().to(torch.uint8) for view in views]
        return {"query_view": as_bytes[0], "key_view": as_bytes[1], "query_cells": pair.query_cells,
                "key_points": pair.key_points.float(), "image_id": image_id, "load_failures": failures}

    def _read_with_fallback(self, index: int) -> tuple[torch.Tensor, int, int]:
        for failures in range(len(self.paths)):
            image_id = (index + failures) % len(self.paths)
            try:
                return read_image(self.paths[image_id], self.config.source_side), image_id, failures
            except (OSError, ValueError, SyntaxError):
                continue
        raise RuntimeError(f"none of the {len(self.paths)} training images could be decoded")


class ResumableSampler(Sampler):
    """This process's (epoch, index) items for a range of global steps, across epoch boundaries.

    Each epoch's order is a permutation seeded by (seed, epoch), the same on every process; an
    epoch has len(dataset) // batch_size full global batches (a different rest is dropped each
    epoch); rank r takes positions r, r + W, ... of each global batch (DistributedSampler's
    interleaving). One sampler spans the whole run, so the loader prefetches across epochs.
    """

    def __init__(self, dataset_size: int, batch_size: int, world_size: int, rank: int, seed: int) -> None:
        self.dataset_size, self.batch_size = dataset_size, batch_size
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.steps_per_epoch = dataset_size // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"the data has {dataset_size} readable images, fewer than one batch of "
                             f"{batch_size}; add images or lower batch_size")
        self.set_steps(0, self.steps_per_epoch)

    def set_steps(self, first_step: int, end_step: int, epoch_offset: int = 0) -> None:
        """Iterate global steps [first_step, end_step); epoch e of this stream is seeded as epoch_offset + e."""
        self.first_step, self.end_step, self.epoch_offset = first_step, end_step, epoch_offset

    def __len__(self) -> int:
        return max(0, self.end_step - self.first_step) * (self.batch_size // self.world_size)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The global order of epoch `epoch` (already offset): (dataset_size,) image indices."""
        return torch.randperm(self.dataset_size, generator=torch.Generator().manual_seed(self.seed + epoch))

    def __iter__(self):
        order, order_epoch = None, None
        for step in range(self.first_step, self.end_step):
            epoch, batch = divmod(step, self.steps_per_epoch)
            epoch += self.epoch_offset
            if epoch != order_epoch:
                order, order_epoch = self.epoch_order(epoch), epoch
            mine = order[batch * self.batch_size + self.rank:(batch + 1) * self.batch_size:self.world_size]
            yield from ((epoch, int(index)) for index in mine)


def default_num_workers(world_size: int) -> int:
    """Loader workers per process: the CPUs left over by the training processes, at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus // world_size - 1))


def build_loader(dataset: ViewPairDataset, sampler: ResumableSampler, config: TrainConfig,
                 world_size: int, pin_memory: bool) -> DataLoader:
    """A DataLoader of per-process batches (batch_size / world_size) over `sampler`."""
    workers = config.num_workers if config.num_workers is not None else default_num_workers(world_size)
    return DataLoader(dataset, batch_size=config.batch_size // world_size, sampler=sampler, drop_last=True,
                      num_workers=workers, persistent_workers=workers > 0, pin_memory=pin_memory,
                      prefetch_factor=2 if workers > 0 else None)
