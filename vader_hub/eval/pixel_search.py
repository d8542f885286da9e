"""Nearest neighbours of query points over a whole feature map, to the pixel, and their PCK.

A stride-4 map alone cannot score PCK at 2 px: its cells are 4 px apart. The per-pixel features of
the cell convention (pixel ``p`` gets the bilinear sample at cell ``p / 4``, see
:func:`vader_hub.models.cells.upsample_to_pixels`) can, and :func:`find_matches` searches them
coarse-to-fine: the cosine nearest cell over the *whole* second map (no prior on where the match is),
then every pixel within ``STRIDE`` px of that cell's centre (all pixels of the four cell squares that
touch it), each compared by the cosine of its L2-normalised interpolated feature. The answer is the
best of those pixels. Only the query's neighbourhood is upsampled, so a 384 x 288 pair with 1.7k
queries costs one 1.7k x 7k cell similarity matrix instead of a 1.7k x 110k per-pixel one. It finds the
per-pixel optimum whenever that lies next to the best cell, which is where a smooth map puts it.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..models.cells import STRIDE, cell_to_pixel, output_size, pixel_to_cell, sample_cells

_QUERY_BLOCK = 512  # queries per block: bounds the (block, cells) similarity and (block, 81, C) windows


def query_grid(height: int, width: int, step: int = 8) -> torch.Tensor:
    """Query points every ``step`` px, starting ``step // 2`` px from the top-left corner.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
        step: Grid spacing in pixels.

    Returns:
        (N, 2) float (x, y) pixel coordinates, row by row.
    """
    ys = torch.arange(step // 2, height, step, dtype=torch.float32)
    xs = torch.arange(step // 2, width, step, dtype=torch.float32)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)  # (N, 2)


def sample_features(features: torch.Tensor, points: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Bilinear features of a map at pixel positions, under the cell convention (border repeated).

    Args:
        features: (C, h, w) map.
        points: (N, 2) float (x, y) input-pixel coordinates.
        stride: Pixels per cell.

    Returns:
        (N, C) features, not normalised.
    """
    cells = pixel_to_cell(points, stride).to(features.dtype)  # (N, 2) fractional (x, y) cells
    return sample_cells(features[None], cells[None])[0]  # (N, C)


def find_matches(
    features_a: torch.Tensor, features_b: torch.Tensor, queries: torch.Tensor, size_b: Tuple[int, int]
) -> torch.Tensor:
    """The pixel of image B whose feature is most cosine-similar to each query point of image A.

    Both maps are L2-normalised per cell first; a pixel's feature is the bilinear sample of its map at
    cell ``p / 4``, normalised again (the module docstring gives the coarse-to-fine search).

    Args:
        features_a: (C, h, w) map of image A.
        features_b: (C, h', w') map of image B, ``(h', w') == output_size(*size_b)``.
        queries: (N, 2) float (x, y) pixel positions in image A.
        size_b: (height, width) of image B in pixels.

    Returns:
        (N, 2) float (x, y) integer pixel positions in image B, on the maps' device.

    Raises:
        ValueError: If the maps differ in channels or ``features_b`` does not fit ``size_b``.
    """
    if features_a.dim() != 3 or features_b.dim() != 3 or features_a.shape[0] != features_b.shape[0]:
        raise ValueError(
            f"need two (C, h, w) maps with the same C, got {tuple(features_a.shape)} and {tuple(features_b.shape)}"
        )
    if tuple(features_b.shape[-2:]) != output_size(*size_b):
        raise ValueError(
            f"a {size_b[0]}x{size_b[1]} image has a {output_size(*size_b)} map, got {tuple(features_b.shape[-2:])}"
        )
    cells_a = F.normalize(features_a.float(), dim=0)  # (C, h, w)
    cells_b = F.normalize(features_b.float(), dim=0)  # (C, h', w')
    queries = queries.float().to(cells_a.device)
    query_features = F.normalize(sample_features(cells_a, queries), dim=1)  # (N, C)
    flat_b = cells_b.flatten(1).T  # (h'*w', C)
    blocks = []
    for query_block in query_features.split(_QUERY_BLOCK):
        best = (query_block @ flat_b.T).argmax(dim=1)  # (n,) flat index of the nearest cell
        best_cells = torch.stack([best // cells_b.shape[2], best % cells_b.shape[2]], dim=1)  # (n, 2) (i, j)
        blocks.append(_refine(query_block, best_cells, cells_b, size_b))
    return torch.cat(blocks) if blocks else queries.new_zeros(0, 2)


def _refine(
    query_features: torch.Tensor, best_cells: torch.Tensor, cells: torch.Tensor, size: Tuple[int, int]
) -> torch.Tensor:
    """The best pixel within ``STRIDE`` px of each nearest cell, by cosine of interpolated features.

    Interpolation is linear, so a window pixel's dot product with the query is the same bilinear
    blend of the 3 x 3 neighbouring cells' dot products, and its squared norm the blend's quadratic
    form in their Gram matrix: exact, without sampling 81 features per query. Neighbour indices are
    clamped to the map, which repeats the border as the per-pixel features do.
    """
    height, width = cells.shape[-2:]
    steps = torch.arange(-1, 2, device=cells.device)
    rows = (best_cells[:, :1] + steps).clamp(0, height - 1)  # (n, 3)
    columns = (best_cells[:, 1:] + steps).clamp(0, width - 1)  # (n, 3)
    neighbours = cells[:, rows[:, :, None], columns[:, None, :]]  # (C, n, 3, 3)
    neighbours = neighbours.flatten(2).permute(1, 2, 0)  # (n, 9, C)
    dots = torch.einsum("nkc,nc->nk", neighbours, query_features)  # (n, 9)
    gram = neighbours @ neighbours.transpose(1, 2)  # (n, 9, 9)
    weights = _window_weights().to(cells.device)  # (K, 9), K = (2 * STRIDE + 1) ** 2 window pixels
    numerator = dots @ weights.T  # (n, K)
    squared_norm = ((gram @ weights.T) * weights.T).sum(dim=1)  # (n, K)
    scores = numerator / squared_norm.clamp_min(1e-12).sqrt()  # (n, K)
    offsets = torch.arange(-STRIDE, STRIDE + 1, device=cells.device)
    offset_y, offset_x = torch.meshgrid(offsets, offsets, indexing="ij")
    pixels = cell_to_pixel(best_cells.flip(1))[:, None] + torch.stack([offset_x, offset_y], -1).reshape(1, -1, 2)
    outside = (pixels < 0).any(-1) | (pixels[..., 0] > size[1] - 1) | (pixels[..., 1] > size[0] - 1)  # (n, K)
    best = scores.masked_fill(outside, -torch.inf).argmax(dim=1)  # (n,)
    return pixels[torch.arange(len(best), device=cells.device), best]  # (n, 2) (x, y)


def _window_weights() -> torch.Tensor:
    """(K, 9) bilinear weights of each window pixel (rows by y, then x) on the 3 x 3 cells around the centre."""
    position = torch.arange(-STRIDE, STRIDE + 1, dtype=torch.float32) / STRIDE  # (2S+1,) in cells
    one_axis = torch.stack([(-position).clamp(min=0), 1 - position.abs(), position.clamp(min=0)], dim=1)  # (2S+1, 3)
    return torch.einsum("ya,xb->yxab", one_axis, one_axis).reshape(-1, 9)  # (K, 9)


def pck(
    predictions: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, thresholds: Sequence[float]
) -> Dict[float, float]:
    """Percentage of correct keypoints: the share of valid queries matched within each threshold.

    Args:
        predictions: (N, 2) predicted (x, y) positions.
        truth: (N, 2) true (x, y) positions.
        valid: (N,) bool, the queries that count (true position known and inside the image).
        thresholds: Distances in pixels; a match is correct when its Euclidean error is ``<=`` the threshold.

    Returns:
        ``{threshold: percentage in [0, 100]}``.

    Raises:
        ValueError: If no query is valid or the shapes disagree.
    """
    if predictions.shape != truth.shape or valid.shape != predictions.shape[:1]:
        raise ValueError(
            f"predictions {tuple(predictions.shape)}, truth {tuple(truth.shape)} and valid {tuple(valid.shape)} "
            "must be (N, 2), (N, 2) and (N,)"
        )
    if not bool(valid.any()):
        raise ValueError("no valid query point: every true position is unknown or outside the second image")
    errors = (predictions[valid].double() - truth[valid].double()).norm(dim=1)  # (M,)
    return {t: 100.0 * float((errors <= t).double().mean()) for t in thresholds}
