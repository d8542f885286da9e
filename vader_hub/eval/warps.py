"""Synthetic second views: a known random homography plus a photometric change.

The first view is a photo; the second is that photo seen through a random homography
(:func:`random_homography`) with its brightness, contrast, gamma, colour balance and noise changed
(:func:`photometric_change`). Every pixel of the first view then has a known position in the second,
``apply_homography(H, p)``, which is the ground truth of the synthetic-warp benchmark.

Coordinates are (x, y) pixel positions with pixel centres at integers (the cell convention of
:mod:`vader_hub.models.cells`); a homography maps first-view pixels to second-view pixels.
"""
import hashlib
import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import apply_homography, homography_from_points


@dataclass(frozen=True)
class WarpRanges:
    """Ranges of the random second view, all sampled uniformly (``log`` ones uniformly in log space).

    Attributes:
        rotation_deg: Rotation about the image centre, in [-rotation_deg, rotation_deg] degrees.
        scale: Zoom about the image centre, log-uniform in [scale[0], scale[1]].
        translation: Shift of up to this fraction of the width (x) and height (y).
        perspective: Each corner moves independently by up to this fraction of the width and height.
        brightness: Added to every value, in [-brightness, brightness] (values in [0, 1]).
        contrast: Contrast factor about mid-grey, uniform in [contrast[0], contrast[1]].
        gamma: Exponent applied first, log-uniform in [gamma[0], gamma[1]].
        channel_gain: Each channel is multiplied by a factor in [1 - channel_gain, 1 + channel_gain].
        noise_std: Standard deviation of the added Gaussian noise.
    """

    rotation_deg: float = 25.0
    scale: Tuple[float, float] = (0.8, 1.25)
    translation: float = 0.08
    perspective: float = 0.08
    brightness: float = 0.1
    contrast: Tuple[float, float] = (0.7, 1.3)
    gamma: Tuple[float, float] = (0.7, 1.4)
    channel_gain: float = 0.1
    noise_std: float = 0.01


DEFAULT_RANGES = WarpRanges()
"""The ranges of the benchmark (documented in docs/eval.md)."""


@dataclass(frozen=True)
class SyntheticView:
    """A second view of a photo.

    Attributes:
        image: The second view, (3, H, W) float in [0, 1]; pixels seen from outside the photo are black.
        homography: (3, 3) float64, maps first-view pixels (x, y, 1) to second-view pixels.
    """

    image: torch.Tensor
    homography: torch.Tensor


def view_rng(seed: int, name: str) -> np.random.Generator:
    """The random generator of one photo's view: fixed by the seed and the photo's name, not its order."""
    digest = int(hashlib.sha256(name.encode()).hexdigest()[:16], 16)
    return np.random.default_rng([seed, digest])


def random_homography(height: int, width: int, rng: np.random.Generator, ranges: WarpRanges) -> torch.Tensor:
    """A random homography of a ``height`` x ``width`` view: similarity about the centre, then corner jitter.

    Returns:
        (3, 3) float64 homography from the photo to its second view.
    """
    size = torch.tensor([width, height], dtype=torch.float64)
    corners = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float64) * (size - 1)  # (4, 2)
    centre = (size - 1) / 2
    angle = math.radians(rng.uniform(-ranges.rotation_deg, ranges.rotation_deg))
    zoom = math.exp(rng.uniform(math.log(ranges.scale[0]), math.log(ranges.scale[1])))
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    shift = torch.from_numpy(rng.uniform(-ranges.translation, ranges.translation, 2)) * size  # (2,)
    jitter = torch.from_numpy(rng.uniform(-ranges.perspective, ranges.perspective, (4, 2))) * size  # (4, 2)
    moved = centre + zoom * (corners - centre) @ rotation.T + shift + jitter  # (4, 2)
    return homography_from_points(corners, moved)


def warp_image(image: torch.Tensor, homography: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resample ``image`` so that output pixel ``p`` shows input pixel ``H^-1 p`` (bilinear, black outside).

    Args:
        image: (C, H, W) float image.
        homography: (3, 3) map from input pixels to output pixels.
        size: Output (height, width).

    Returns:
        (C, height, width) warped image.
    """
    height, width = size
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    output_pixels = torch.stack([xs, ys], dim=-1).double()  # (height, width, 2)
    source = apply_homography(torch.linalg.inv(homography.double()), output_pixels)  # (height, width, 2)
    in_height, in_width = image.shape[-2:]
    scale = torch.tensor([max(in_width - 1, 1), max(in_height - 1, 1)], dtype=torch.float64)
    grid = (2 * source / scale - 1).to(image.dtype)  # (height, width, 2), align_corners=True coordinates
    warped = F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped[0]  # (C, height, width)


def photometric_change(image: torch.Tensor, rng: np.random.Generator, ranges: WarpRanges) -> torch.Tensor:
    """Random gamma, contrast, brightness, per-channel gain and Gaussian noise; result clipped to [0, 1].

    Args:
        image: (3, H, W) float image in [0, 1].
        rng: Random generator.
        ranges: The ranges to sample from.

    Returns:
        (3, H, W) changed image.
    """
    gamma = math.exp(rng.uniform(math.log(ranges.gamma[0]), math.log(ranges.gamma[1])))
    contrast = rng.uniform(*ranges.contrast)
    brightness = rng.uniform(-ranges.brightness, ranges.brightness)
    gain = torch.from_numpy(rng.uniform(1 - ranges.channel_gain, 1 + ranges.channel_gain, (3, 1, 1)))
    noise = torch.from_numpy(rng.standard_normal(image.shape)) * ranges.noise_std
    changed = ((image.double().clamp(0, 1) ** gamma - 0.5) * contrast + 0.5 + brightness) * gain + noise
    return changed.clamp(0, 1).to(image.dtype)


def synthetic_view(image: torch.Tensor, rng: np.random.Generator, ranges: WarpRanges) -> SyntheticView:
    """A second view of ``image``, the same size: a random homography, then a photometric change.

    Args:
        image: (3, H, W) float image in [0, 1].
        rng: Random generator (see :func:`view_rng`).
        ranges: The ranges to sample from.

    Returns:
        The :class:`SyntheticView`.
    """
    height, width = image.shape[-2:]
    homography = random_homography(height, width, rng, ranges)
    warped = warp_image(image, homography, (height, width))
    return SyntheticView(image=photometric_change(warped, rng, ranges), homography=homography)
