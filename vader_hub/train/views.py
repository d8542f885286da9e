"""Two augmented views of one image, with exact stride-4 correspondences between them.

A view's geometry is a 3x3 matrix that maps view pixel coordinates (x, y, 1) to source pixel
coordinates (pixel centres at integers, as in `vader_hub.models.cells`). It is composed of a
horizontal flip, an optional homography of the unit square, the random resized crop (MoCo v2:
scale 0.2 to 1, ratio 3/4 to 4/3) and an optional rotation/shear about the crop centre:

    view pixel --flip--> unit square --homography--> unit square --crop--> source --rotate/shear--> source

Because both views are exact maps of the same source, every output cell (i, j) of the query view
(centred on view pixel (4i, 4j)) lands on a known, generally fractional, point of the key view's
cell grid; the trainer samples the key map there bilinearly. Views are rendered from the matrices
with one `grid_sample` call, so what the network sees is exactly what the matrices say.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from ..geometry import apply_homography, homography_from_points
from ..models.cells import cell_to_pixel, output_size, pixel_to_cell
from .config import TrainConfig


@dataclass(frozen=True)
class CellMatches:
    """Query cells whose scene point is visible in the key view.

    Attributes:
        query_cells: (M,) long, flat index `i * w + j` into the query view's (h, w) cell grid.
        key_points: (M, 2) float64, the same scene points as fractional (x, y) key-view cells.
    """

    query_cells: torch.Tensor
    key_points: torch.Tensor


@dataclass(frozen=True)
class ViewPair:
    """The geometry of two views of one source image and their sampled matching cells.

    Attributes:
        query_matrix: (3, 3) float64, query view pixel (x, y, 1) -> source pixel.
        key_matrix: (3, 3) float64, key view pixel (x, y, 1) -> source pixel.
        query_cells: (P,) long, flat indices into the query view's cell grid.
        key_points: (P, 2) float64, matching fractional (x, y) cells of the key view.
        attempts: how many geometry pairs were drawn.
        fallback: True when no draw shared enough cells and the guaranteed-overlap pair was used.
    """

    query_matrix: torch.Tensor
    key_matrix: torch.Tensor
    query_cells: torch.Tensor
    key_points: torch.Tensor
    attempts: int
    fallback: bool


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64).item()


def _bernoulli(generator: torch.Generator, prob: float) -> bool:
    return torch.rand((), generator=generator, dtype=torch.float64).item() < prob


def unit_square_to_view_matrix(size: int, flip: bool) -> torch.Tensor:
    """Map view pixels (centres 0..size-1) to the unit square (edges 0 and 1), mirrored if `flip`."""
    to_unit = torch.tensor([[1 / size, 0, 0.5 / size], [0, 1 / size, 0.5 / size], [0, 0, 1]],
                           dtype=torch.float64)
    mirror = torch.tensor([[-1.0, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    return mirror @ to_unit if flip else to_unit


def crop_matrix(x0: float, y0: float, width: float, height: float) -> torch.Tensor:
    """Map the unit square onto the crop box [x0, x0+width] x [y0, y0+height] (pixel-edge units)."""
    return torch.tensor([[width, 0, x0 - 0.5], [0, height, y0 - 0.5], [0, 0, 1]], dtype=torch.float64)


def rotation_shear_matrix(center_x: float, center_y: float, degrees: float, shear_degrees: float) -> torch.Tensor:
    """Rotate by `degrees` and shear along x by `shear_degrees`, both about (center_x, center_y)."""
    angle, shear = math.radians(degrees), math.tan(math.radians(shear_degrees))
    cos, sin = math.cos(angle), math.sin(angle)
    linear = torch.tensor([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], dtype=torch.float64)
    linear = linear @ torch.tensor([[1, shear, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    to_center = torch.tensor([[1, 0, center_x], [0, 1, center_y], [0, 0, 1]], dtype=torch.float64)
    from_center = torch.tensor([[1, 0, -center_x], [0, 1, -center_y], [0, 0, 1]], dtype=torch.float64)
    return to_center @ linear @ from_center


def sample_crop_box(source_hw: tuple[int, int], config: TrainConfig,
                    generator: torch.Generator) -> tuple[float, float, float, float]:
    """A random resized crop (x0, y0, width, height) in pixel-edge units, as torchvision draws it."""
    height, width = source_hw
    log_ratio = (math.log(config.crop_ratio_min), math.log(config.crop_ratio_max))
    for _ in range(10):
        area = height * width * _uniform(generator, config.crop_scale_min, config.crop_scale_max)
        ratio = math.exp(_uniform(generator, *log_ratio))
        crop_w, crop_h = math.sqrt(area * ratio), math.sqrt(area / ratio)
        if crop_w <= width and crop_h <= height:
            return _uniform(generator, 0, width - crop_w), _uniform(generator, 0, height - crop_h), crop_w, crop_h
    # torchvision's fallback: the largest centred crop with a ratio inside the allowed range
    ratio = min(max(width / height, config.crop_ratio_min), config.crop_ratio_max)
    crop_w, crop_h = (width, width / ratio) if width / height < ratio else (height * ratio, height)
    return (width - crop_w) / 2, (height - crop_h) / 2, crop_w, crop_h


def sample_view_matrix(source_hw: tuple[int, int], config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A random view geometry: (3, 3) float64 matrix from view pixels to source pixels."""
    x0, y0, crop_w, crop_h = sample_crop_box(source_hw, config, generator)
    flip = _bernoulli(generator, config.flip_prob)
    matrix = crop_matrix(x0, y0, crop_w, crop_h)
    if config.homography_strength > 0:
        corners = torch.tensor([[0.0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float64)
        shift = (torch.rand(4, 2, generator=generator, dtype=torch.float64) * 2 - 1) * config.homography_strength
        matrix = matrix @ homography_from_points(corners, corners + shift)
    matrix = matrix @ unit_square_to_view_matrix(config.image_size, flip)
    if config.max_rotation_degrees > 0 or config.max_shear_degrees > 0:
        degrees = _uniform(generator, -config.max_rotation_degrees, config.max_rotation_degrees)
        shear = _uniform(generator, -config.max_shear_degrees, config.max_shear_degrees)
        center = (x0 + crop_w / 2 - 0.5, y0 + crop_h / 2 - 0.5)
        matrix = rotation_shear_matrix(*center, degrees, shear) @ matrix
    return matrix


def cell_centers(view_size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(h * w, 2) (x, y) pixel centres of a square view's output cells, in flat `i * w + j` order."""
    height, width = output_size(view_size, view_size)
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    cells = torch.stack([cols, rows], dim=-1).reshape(-1, 2)  # (h*w, 2) as (x=j, y=i)
    return cell_to_pixel(cells).to(dtype)


def match_cells(query_matrix: torch.Tensor, key_matrix: torch.Tensor,
                source_hw: tuple[int, int], view_size: int) -> CellMatches:
    """Every query cell whose scene point lies inside the source image and inside the key's cell grid.

    Inside the source means within the hull of pixel centres, [0, W-1] x [0, H-1], so that both
    views render it from real pixels; inside the key grid means within [0, w-1] x [0, h-1] cells,
    so that bilinear sampling of the key map needs no extrapolation.
    """
    height, width = source_hw
    grid_h, grid_w = output_size(view_size, view_size)
    source_points = apply_homography(query_matrix, cell_centers(view_size))  # (h*w, 2) source (x, y)
    key_pixels = apply_homography(torch.linalg.inv(key_matrix), source_points)  # (h*w, 2) key view (x, y)
    key_points = pixel_to_cell(key_pixels).double()  # (h*w, 2) key cells (x, y)
    eps = 1e-9  # cells exactly on a border are inside; float64 round-off must not drop them
    inside_source = ((source_points >= -eps) & (source_points <= torch.tensor([width - 1, height - 1]) + eps)).all(-1)
    inside_key = ((key_points >= -eps) & (key_points <= torch.tensor([grid_w - 1, grid_h - 1]) + eps)).all(-1)
    valid = torch.nonzero(inside_source & inside_key).flatten()  # (M,)
    return CellMatches(query_cells=valid, key_points=key_points[valid].clamp_min(0))


def sample_view_pair(source_hw: tuple[int, int], config: TrainConfig, generator: torch.Generator) -> ViewPair:
    """Draw two view geometries sharing >= `min_overlap_cells` cells, and `pairs_per_image` matches.

    Up to `max_view_attempts` pairs are drawn; if none shares enough cells, both views take the
    same plain crop of the whole image (no flip, rotation or homography), which shares every
    interior cell; the two views still differ by their pixel-level augmentations.

    Raises:
        ValueError: if even the fallback cannot share enough cells (views too small for the setting).
    """
    for attempt in range(1, config.max_view_attempts + 1):
        query_matrix = sample_view_matrix(source_hw, config, generator)
        key_matrix = sample_view_matrix(source_hw, config, generator)
        matches = match_cells(query_matrix, key_matrix, source_hw, config.image_size)
        if len(matches.query_cells) >= config.min_overlap_cells:
            return _choose_pairs(query_matrix, key_matrix, matches, config, generator, attempt, fallback=False)
    height, width = source_hw
    matrix = crop_matrix(0.0, 0.0, width, height) @ unit_square_to_view_matrix(config.image_size, flip=False)
    matches = match_cells(matrix, matrix, source_hw, config.image_size)
    if len(matches.query_cells) < config.pairs_per_image:
        raise ValueError(f"views of {config.image_size} px share only {len(matches.query_cells)} cells even "
                         f"when identical; lower pairs_per_image ({config.pairs_per_image}) or raise image_size")
    return _choose_pairs(matrix, matrix, matches, config, generator, config.max_view_attempts, fallback=True)


def _choose_pairs(query_matrix: torch.Tensor, key_matrix: torch.Tensor, matches: CellMatches, config: TrainConfig,
                  generator: torch.Generator, attempts: int, fallback: bool) -> ViewPair:
    chosen = torch.randperm(len(matches.query_cells), generator=generator)[: config.pairs_per_image]  # (P,)
    return ViewPair(query_matrix=query_matrix, key_matrix=key_matrix, query_cells=matches.query_cells[chosen],
                    key_points=matches.key_points[chosen], attempts=attempts, fallback=fallback)


def render_views(source: torch.Tensor, matrices: torch.Tensor, view_size: int) -> torch.Tensor:
    """Render views of `source` (C, H, W) float for `matrices` (V, 3, 3) with one `grid_sample`.

    Returns:
        (V, C, view_size, view_size) views; outside the source the image is mirrored (reflection),
        which also keeps the half-pixel rim of upsampled crops free of dark borders.
    """
    channels, height, width = source.shape
    centers = torch.arange(view_size, dtype=torch.float64)
    ys, xs = torch.meshgrid(centers, centers, indexing="ij")
    view_points = torch.stack([xs, ys], dim=-1).view(1, view_size, view_size, 2)  # (1, S, S, 2)
    source_points = apply_homography(matrices.view(-1, 1, 1, 3, 3), view_points)  # (V, S, S, 2)
    # grid_sample with align_corners=False puts -1 and +1 on the outer pixel edges (-0.5, W - 0.5)
    extent = torch.tensor([width, height], dtype=torch.float64)
    grid = ((2 * source_points + 1) / extent - 1).to(source.dtype)  # (V, S, S, 2)
    batch = source.unsqueeze(0).expand(len(matrices), channels, height, width)  # (V, C, H, W)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def photometric_augment(view: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """MoCo v2's pixel-level augmentations plus pixel noise on a (3, S, S) float view in [0, 1].

    Colour jitter (its four parts in random order) with `jitter_prob`, greyscale with
    `greyscale_prob`, Gaussian blur (sigma in [blur_sigma_min, blur_sigma_max]) with `blur_prob`,
    and additive Gaussian noise (std up to `noise_std_max`) with `noise_prob`.
    """
    if _bernoulli(generator, config.jitter_prob):
        adjustments = [
            (TF.adjust_brightness, _uniform(generator, max(0.0, 1 - config.brightness), 1 + config.brightness)),
            (TF.adjust_contrast, _uniform(generator, max(0.0, 1 - config.contrast), 1 + config.contrast)),
            (TF.adjust_saturation, _uniform(generator, max(0.0, 1 - config.saturation), 1 + config.saturation)),
            (TF.adjust_hue, _uniform(generator, -config.hue, config.hue)),
        ]
        for index in torch.randperm(4, generator=generator).tolist():
            adjust, factor = adjustments[index]
            view = adjust(view, factor)
    if _bernoulli(generator, config.greyscale_prob):
        view = TF.rgb_to_grayscale(view, num_output_channels=3)
    if _bernoulli(generator, config.blur_prob):
        sigma = _uniform(generator, config.blur_sigma_min, config.blur_sigma_max)
        radius = min(math.ceil(3 * sigma), (view.shape[-1] - 1) // 2)  # PIL-like support, within the view
        view = TF.gaussian_blur(view, kernel_size=[2 * radius + 1] * 2, sigma=[sigma, sigma])
    if _bernoulli(generator, config.noise_prob):
        std = _uniform(generator, 0.0, config.noise_std_max)
        view = (view + std * torch.randn(view.shape, generator=generator, dtype=view.dtype)).clamp(0, 1)
    return view
