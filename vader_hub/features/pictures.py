"""Pictures of dense features: the PCA-to-RGB picture and a two-image correspondence picture.

The PCA picture projects every cell's feature onto the map's first three principal components and
shows them as red, green and blue, so cells the network finds alike share a colour (the picture
DINOv2 made familiar). The correspondence picture puts two images side by side and joins matched
points, each pair coloured by where it lies in the first image, so a consistent set of matches shows
as a smooth rainbow.
"""
import colorsys
import math
from typing import Optional, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..checks import check_positive_int
from ..models.cells import STRIDE, upsample_to_pixels
from .inputs import ImageInput, load_image
from .matching import Matches

_QUANTILE_SAMPLES = 2**20  # torch.quantile refuses more than 2**24 values; a sample fixes the range as well
_CONTRAST_QUANTILES = (0.01, 0.99)


def pca_image(features: torch.Tensor, *, image_size: Optional[Tuple[int, int]] = None) -> Image.Image:
    """Show a feature map as an RGB picture of its first three principal components.

    Each component is scaled so that its 1st..99th percentiles span 0..255. Component signs are fixed
    (the largest loading is positive), so the same features always give the same picture.

    Args:
        features: One map, (C, h, w).
        image_size: The (height, width) of the image the stride-4 map was extracted from; the picture is
            then drawn at that size, each pixel sampled at its place in the cell convention. None draws
            one picture pixel per cell (or per pixel, for ``upsample=True`` features).

    Returns:
        An RGB PIL image of size (w, h), or ``image_size`` reversed to (width, height).

    Raises:
        TypeError: If ``features`` is not a floating-point tensor.
        ValueError: If ``features`` is not a non-empty (C, h, w) map, or does not fit ``image_size``.
    """
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"features must be a floating-point torch tensor, got {type(features).__name__}")
    if features.dim() != 3 or features.numel() == 0:
        raise ValueError(f"features must be one non-empty (C, h, w) map, got shape {tuple(features.shape)}")
    channels, height, width = features.shape
    cells = features.detach().flatten(1).T.double()  # (h*w, C)
    centred = cells - cells.mean(dim=0)  # (h*w, C)
    projected = centred @ _principal_axes(centred, count=min(3, channels))  # (h*w, k)
    scaled = _stretch_contrast(projected).float()  # (h*w, k) in [0, 1]
    if scaled.shape[1] < 3:
        padding = scaled.new_full((len(scaled), 3 - scaled.shape[1]), 0.5)  # (h*w, 3-k)
        scaled = torch.cat([scaled, padding], dim=1)  # (h*w, 3)
    picture = scaled.T.reshape(3, height, width)  # (3, h, w)
    if image_size is not None:
        picture = upsample_to_pixels(picture, tuple(image_size), stride=STRIDE)  # (3, H, W)
    return to_pil_image(picture)


def _principal_axes(centred: torch.Tensor, count: int) -> torch.Tensor:
    """(C, count) top principal axes of centred (N, C) data, each signed so its largest loading is positive."""
    covariance = centred.T @ centred / max(len(centred) - 1, 1)  # (C, C)
    _, eigenvectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    axes = eigenvectors[:, -count:].flip(1)  # (C, count), largest variance first
    largest = axes.gather(0, axes.abs().argmax(dim=0, keepdim=True))  # (1, count)
    return axes * torch.where(largest < 0, -1.0, 1.0).to(axes.dtype)


def _stretch_contrast(values: torch.Tensor) -> torch.Tensor:
    """Map each column's 1st..99th percentile range onto [0, 1]; a constant column becomes 0.5."""
    sample = values[:: max(1, len(values) // _QUANTILE_SAMPLES)]
    low, high = torch.quantile(sample, torch.tensor(_CONTRAST_QUANTILES, dtype=values.dtype), dim=0)  # (k,), (k,)
    span = high - low
    flat = span <= 1e-12 * high.abs().clamp_min(1.0)
    stretched = (values - low) / torch.where(flat, torch.ones_like(span), span)
    return torch.where(flat, torch.full_like(values, 0.5), stretched).clamp(0, 1)


def to_pil_image(image: torch.Tensor) -> Image.Image:
    """An RGB PIL image of a float image tensor.

    Args:
        image: (3, H, W) float image in [0, 1], on any device; values outside are clipped, so rounding
            cannot wrap around in uint8.

    Returns:
        The (W, H) RGB PIL image.
    """
    pixels = (image.clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()  # (H, W, 3)
    return Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")


def correspondence_image(
    img_a: ImageInput,
    img_b: ImageInput,
    matches: Matches,
    *,
    max_lines: int = 100,
    line_width: int = 2,
) -> Image.Image:
    """Draw two images side by side with their best matches joined by lines.

    The best match within each cell of a grid of about ``max_lines`` cells over image A is drawn, so the
    lines cover the scene instead of piling onto its most distinctive spot. Each line is coloured by its
    point's place in image A (hue along x, brightness along y), so matches that keep the layout of the
    scene form a smooth colour field in both images.

    Args:
        img_a: Image A, any kind :func:`extract_dense_features` accepts; the points of ``matches`` must be
            in its pixel coordinates (see :func:`vader_hub.features.matching.rescale_points` for resized
            inputs).
        img_b: Image B, likewise.
        matches: Matches from :func:`match_features`.
        max_lines: Draw at most this many matches.
        line_width: Line width in pixels.

    Returns:
        An RGB PIL image of width ``W_a + W_b`` and height ``max(H_a, H_b)``.

    Raises:
        TypeError: If ``matches`` is not a :class:`Matches`.
        ValueError: If ``max_lines`` or ``line_width`` is not a positive integer, or an image is bad.
    """
    if not isinstance(matches, Matches):
        raise TypeError(f"matches must be a Matches from match_features, got {type(matches).__name__}")
    check_positive_int("max_lines", max_lines)
    check_positive_int("line_width", line_width)
    picture_a, picture_b = to_pil_image(load_image(img_a)), to_pil_image(load_image(img_b))
    canvas = Image.new("RGB", (picture_a.width + picture_b.width, max(picture_a.height, picture_b.height)))
    canvas.paste(picture_a, (0, 0))
    canvas.paste(picture_b, (picture_a.width, 0))
    best = _spread_best(matches, max_lines, (picture_a.height, picture_a.width))
    draw = ImageDraw.Draw(canvas)
    radius = line_width + 1
    pairs = zip(matches.points_a.cpu()[best].tolist(), matches.points_b.cpu()[best].tolist(), strict=True)
    for (x_a, y_a), (x_b, y_b) in pairs:
        colour = _position_colour(x_a / max(picture_a.width, 1), y_a / max(picture_a.height, 1))
        x_b += picture_a.width
        draw.line([(x_a, y_a), (x_b, y_b)], fill=colour, width=line_width)
        for x, y in ((x_a, y_a), (x_b, y_b)):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(0, 0, 0))
    return canvas


def _spread_best(matches: Matches, max_lines: int, size_a: Tuple[int, int]) -> torch.Tensor:
    """Indices of up to ``max_lines`` matches: the best of each cell of a grid over image A, best first.

    Plain top-k tends to pile every line onto one distinctive region (with random weights, the image
    border); one winner per grid cell shows how the matches cover the scene.
    """
    order = torch.argsort(matches.scores.cpu(), descending=True, stable=True)
    grid = math.ceil(math.sqrt(max_lines))
    points = matches.points_a.cpu()[order]  # (M, 2) (x, y), best first
    column = (points[:, 0] / max(size_a[1], 1) * grid).long().clamp(0, grid - 1)
    row = (points[:, 1] / max(size_a[0], 1) * grid).long().clamp(0, grid - 1)
    _, first = np.unique((row * grid + column).numpy(), return_index=True)  # the best match of each grid cell
    return order[np.sort(first)][:max_lines]


def _position_colour(x: float, y: float) -> Tuple[int, int, int]:
    """A colour that varies smoothly over the image: hue along x, brightness along y (both in [0, 1])."""
    red, green, blue = colorsys.hsv_to_rgb(0.85 * min(max(x, 0.0), 1.0), 1.0, 1.0 - 0.5 * min(max(y, 0.0), 1.0))
    return round(255 * red), round(255 * green), round(255 * blue)
