"""Correspondences between two dense feature maps, by cosine similarity.

:func:`match_features` keeps the pairs of cells that are each other's nearest neighbour (the usual
sparse matches); :func:`match_features_dense` gives every cell of the first map its nearest neighbour
in the second. The similarity matrix is computed in row blocks, so two maps of 16k cells need ~64 MB,
not 1 GB.

Points come back in input-pixel (x, y) coordinates through the cell convention of
:mod:`vader_hub.models.cells`: cell (i, j) of a stride-4 map is pixel (x, y) = (4j, 4i).
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..checks import check_positive_int
from ..models.cells import STRIDE, cell_to_pixel

_SIMILARITY_BLOCK_ELEMENTS = 2**24  # one block of the similarity matrix: 64 MB of float32


@dataclass(frozen=True)
class Matches:
    """Correspondences from image A to image B, best first.

    Attributes:
        points_a: (M, 2) float (x, y) input-pixel coordinates in image A.
        points_b: (M, 2) float (x, y) input-pixel coordinates of the matching points in image B.
        scores: (M,) cosine similarity of each pair, descending.
    """

    points_a: torch.Tensor
    points_b: torch.Tensor
    scores: torch.Tensor

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class _NearestNeighbours:
    a_to_b: torch.Tensor  # (Na,) index in B of each A cell's nearest neighbour
    a_to_b_score: torch.Tensor  # (Na,) its cosine similarity
    b_to_a: Optional[torch.Tensor]  # (Nb,) index in A of each B cell's nearest neighbour, if asked for


@dataclass(frozen=True)
class _Maps:
    cells_a: torch.Tensor  # (Na, C) L2-normalised cells of A
    cells_b: torch.Tensor  # (Nb, C) L2-normalised cells of B
    width_a: int
    width_b: int


def match_features(
    feats_a: torch.Tensor, feats_b: torch.Tensor, *, stride: int = STRIDE, min_score: Optional[float] = None
) -> Matches:
    """Mutual nearest neighbours of two feature maps by cosine similarity: cells that pick each other.

    Args:
        feats_a: Features of image A, (C, h, w), e.g. from :func:`extract_dense_features`.
        feats_b: Features of image B, (C, h', w'), same C.
        stride: Pixels per cell: 4 for the network's maps, 1 for ``upsample=True`` features.
        min_score: Drop pairs whose cosine similarity is below this.

    Returns:
        The matches, sorted by descending score.

    Raises:
        TypeError: If a map is not a floating-point tensor.
        ValueError: For maps that are not (C, h, w), differ in C or are empty, or a bad ``stride``.

    Example:
        >>> matches = match_features(extract_dense_features(a), extract_dense_features(b))
        >>> matches.points_a[0], matches.points_b[0], matches.scores[0]
    """
    maps = _checked_maps(feats_a, feats_b, stride)
    neighbours = _nearest_neighbours(maps.cells_a, maps.cells_b, both_ways=True)
    index_a = torch.arange(len(maps.cells_a), device=maps.cells_a.device)
    mutual = neighbours.b_to_a[neighbours.a_to_b] == index_a  # (Na,)
    return _best_first(maps, neighbours, mutual, stride, min_score)


def match_features_dense(
    feats_a: torch.Tensor, feats_b: torch.Tensor, *, stride: int = STRIDE, min_score: Optional[float] = None
) -> Matches:
    """The nearest neighbour in B, by cosine similarity, of every cell of A: dense, not mutual, matches.

    Args:
        feats_a: Features of image A, (C, h, w), e.g. from :func:`extract_dense_features`.
        feats_b: Features of image B, (C, h', w'), same C.
        stride: Pixels per cell: 4 for the network's maps, 1 for ``upsample=True`` features.
        min_score: Drop pairs whose cosine similarity is below this.

    Returns:
        The matches, sorted by descending score: one per cell of A (``h * w``) without ``min_score``.

    Raises:
        TypeError: If a map is not a floating-point tensor.
        ValueError: For maps that are not (C, h, w), differ in C or are empty, or a bad ``stride``.
    """
    maps = _checked_maps(feats_a, feats_b, stride)
    neighbours = _nearest_neighbours(maps.cells_a, maps.cells_b, both_ways=False)
    every = torch.ones_like(neighbours.a_to_b_score, dtype=torch.bool)  # (Na,)
    return _best_first(maps, neighbours, every, stride, min_score)


def _checked_maps(feats_a: torch.Tensor, feats_b: torch.Tensor, stride: int) -> _Maps:
    check_positive_int("stride", stride)
    cells_a, width_a = _flatten(feats_a, "feats_a")
    cells_b, width_b = _flatten(feats_b, "feats_b")
    if cells_a.shape[1] != cells_b.shape[1]:
        raise ValueError(f"feats_a has {cells_a.shape[1]} channels but feats_b has {cells_b.shape[1]}")
    return _Maps(cells_a, cells_b, width_a, width_b)


def _best_first(
    maps: _Maps, neighbours: _NearestNeighbours, keep: torch.Tensor, stride: int, min_score: Optional[float]
) -> Matches:
    """The kept (A cell, its nearest B cell) pairs at or above ``min_score``, in pixels, best first."""
    index_a = torch.arange(len(maps.cells_a), device=maps.cells_a.device)
    index_b, scores = neighbours.a_to_b, neighbours.a_to_b_score
    if min_score is not None:
        keep = keep & (scores >= min_score)
    order = torch.argsort(scores[keep], descending=True, stable=True)
    return Matches(
        points_a=_cell_points(index_a[keep][order], maps.width_a, stride),
        points_b=_cell_points(index_b[keep][order], maps.width_b, stride),
        scores=scores[keep][order],
    )


def _flatten(features: torch.Tensor, name: str) -> Tuple[torch.Tensor, int]:
    """(C, h, w) -> L2-normalised (h*w, C) cells, and the map width."""
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        kind = features.dtype if isinstance(features, torch.Tensor) else type(features).__name__
        raise TypeError(f"{name} must be a floating-point torch tensor, got {kind}")
    if features.dim() != 3:
        hint = f"; index the batch first, e.g. {name}[0]" if features.dim() == 4 else ""
        raise ValueError(f"{name} must be one (C, h, w) map, got shape {tuple(features.shape)}{hint}")
    if features.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(features.shape)})")
    cells = features.flatten(1).T.float()  # (h*w, C)
    return F.normalize(cells, dim=1), features.shape[2]


def _nearest_neighbours(cells_a: torch.Tensor, cells_b: torch.Tensor, both_ways: bool) -> _NearestNeighbours:
    """Row-block nearest neighbours; ties go to the lowest index, as in a plain argmax."""
    a_to_b, a_to_b_score = [], []
    column_best = torch.full((len(cells_b),), -torch.inf, device=cells_b.device)
    column_index = torch.zeros(len(cells_b), dtype=torch.long, device=cells_b.device)
    rows = max(1, _SIMILARITY_BLOCK_ELEMENTS // len(cells_b))
    for start in range(0, len(cells_a), rows):
        similarity = cells_a[start : start + rows] @ cells_b.T  # (rows, Nb)
        score, index = similarity.max(dim=1)  # (rows,), (rows,)
        a_to_b.append(index)
        a_to_b_score.append(score)
        if both_ways:
            block_best, block_index = similarity.max(dim=0)  # (Nb,), (Nb,)
            better = block_best > column_best  # strict: an earlier block keeps a tie
            column_best = torch.where(better, block_best, column_best)
            column_index = torch.where(better, block_index + start, column_index)
    return _NearestNeighbours(
        a_to_b=torch.cat(a_to_b), a_to_b_score=torch.cat(a_to_b_score), b_to_a=column_index if both_ways else None
    )


def _cell_points(flat_index: torch.Tensor, width: int, stride: int) -> torch.Tensor:
    """Flat cell indices of a map ``width`` cells wide -> (M, 2) (x, y) pixel coordinates."""
    cells_xy = torch.stack([flat_index % width, flat_index // width], dim=1)  # (M, 2)
    return cell_to_pixel(cells_xy, stride=stride)


def rescale_points(points: torch.Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> torch.Tensor:
    """Move (x, y) pixel coordinates from an image of ``from_size`` to the same image resized to ``to_size``.

    Pixel centres are at integer coordinates, so a resize by ``s`` maps x to ``(x + 0.5) * s - 0.5``; use it
    to draw matches found on resized inputs (``short_side``/``size``) on the original images.

    Args:
        points: (M, 2) (x, y) coordinates.
        from_size: (height, width) the points refer to.
        to_size: (height, width) of the resized image.

    Returns:
        (M, 2) (x, y) coordinates in the resized image.
    """
    scale = torch.tensor([to_size[1] / from_size[1], to_size[0] / from_size[0]], device=points.device)
    return (points + 0.5) * scale - 0.5
