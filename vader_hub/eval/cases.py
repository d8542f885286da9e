"""Benchmark cases: two images, query points on a grid of the first, their true positions in the second.

- synthetic: the photo resized to ``long_side`` (the first view) and a second view of the same size
  under a random homography and photometric change (:mod:`.warps`), drawn from a generator seeded by
  ``seed`` and the photo's file name;
- real: both images of a :class:`~.pairs.GroundTruthPair` resized to ``long_side``, the ground truth
  carried through the resizes.

Queries are every ``grid_step`` px of the first image, from ``grid_step // 2``; a query counts
(``valid``) when its true position is known and inside the second image (pixel centres 0..W-1,
0..H-1). Points that leave the view are left out of the PCK, and the report gives how many counted.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple, Union

import torch

from ..features.inputs import load_image, resize
from ..features.matching import rescale_points
from ..geometry import apply_homography
from .pairs import GroundTruthPair
from .pixel_search import query_grid
from .warps import DEFAULT_RANGES, WarpRanges, synthetic_view, view_rng

LONG_SIDE = 384
GRID_STEP = 8


@dataclass(frozen=True)
class Case:
    """Two images and the true positions of query points of the first in the second.

    Attributes:
        name: Photo file name or pair name.
        kind: ``"synthetic"``, or the ``label`` of a real pair's ground truth (``"homography"``, ``"disparity"``,
            ``"flow"``).
        image_a: (3, H, W) first image in [0, 1].
        image_b: (3, H', W') second image in [0, 1].
        queries: (N, 2) float (x, y) query points in image A.
        truth: (N, 2) float (x, y) true positions in image B (NaN where unknown).
        valid: (N,) bool, queries whose true position is known and inside image B.
    """

    name: str
    kind: str
    image_a: torch.Tensor
    image_b: torch.Tensor
    queries: torch.Tensor
    truth: torch.Tensor
    valid: torch.Tensor


def resize_long_side(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize a (3, H, W) image so its longer side is ``long_side`` px (aspect kept, antialiased)."""
    height, width = image.shape[-2:]
    scale = long_side / max(height, width)
    return resize(image, (max(1, round(height * scale)), max(1, round(width * scale)))).clamp(0, 1)


def synthetic_case(
    photo: Union[str, Path], *, seed: int, long_side: int = LONG_SIDE, grid_step: int = GRID_STEP,
    ranges: WarpRanges = DEFAULT_RANGES,
) -> Case:
    """The synthetic-warp case of one photo (module docstring).

    Args:
        photo: Path of the photo.
        seed: Seed of the warp; with the photo's file name it fixes the second view.
        long_side: Length in px of the longer side of both views.
        grid_step: Spacing in px of the query grid on the first view.
        ranges: Ranges of the random homography and photometric change.

    Returns:
        The :class:`Case` of kind ``"synthetic"``, named after the photo's file name; its ``truth`` is the
        (N, 2) query grid under the homography.

    Raises:
        FileNotFoundError, ValueError: For a missing or unreadable photo.
    """
    photo = Path(photo)
    image = resize_long_side(load_image(photo), long_side)
    view = synthetic_view(image, view_rng(seed, photo.name), ranges)
    queries = query_grid(*image.shape[-2:], step=grid_step)  # (N, 2)
    truth = apply_homography(view.homography, queries)  # (N, 2)
    return Case(photo.name, "synthetic", image, view.image, queries, truth, _inside(truth, image.shape[-2:]))


def pair_case(pair: GroundTruthPair, *, long_side: int = LONG_SIDE, grid_step: int = GRID_STEP) -> Case:
    """The case of a real pair: both images resized to ``long_side``, the ground truth carried along.

    Args:
        pair: The two images and their ground truth.
        long_side: Length in px of the longer side of each image after resizing.
        grid_step: Spacing in px of the query grid on the resized image A.

    Returns:
        The :class:`Case`, with the pair's name and its ground truth's label; ``truth`` is (N, 2) in the
        resized image B.

    Raises:
        FileNotFoundError, ValueError: For a missing or unreadable image.
        ValueError: If no query point has a known true position inside image B.
    """
    original_a, original_b = load_image(pair.image_a), load_image(pair.image_b)
    image_a, image_b = resize_long_side(original_a, long_side), resize_long_side(original_b, long_side)
    queries = query_grid(*image_a.shape[-2:], step=grid_step)  # (N, 2)
    targets = pair.truth.targets(rescale_points(queries, image_a.shape[-2:], original_a.shape[-2:]))
    truth = rescale_points(targets.points, original_b.shape[-2:], image_b.shape[-2:])  # (N, 2)
    valid = targets.known & _inside(truth, image_b.shape[-2:])
    if not bool(valid.any()):
        raise ValueError(
            f"pair {pair.name!r}: no query point has a known position inside image B; check that the ground "
            f"truth ({pair.truth.label}) maps image A onto image B"
        )
    return Case(pair.name, pair.truth.label, image_a, image_b, queries, truth, valid)


def _inside(points: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(N,) bool: finite points within the pixel centres of a ``size`` = (H, W) image."""
    upper = torch.tensor([size[1] - 1, size[0] - 1], dtype=points.dtype)
    return (torch.isfinite(points) & (points >= 0) & (points <= upper)).all(dim=1)
