"""Projective maps of image points, shared by the trainer's views and the benchmark's warps.

Points are (x, y) in pixel-centre coordinates (see :mod:`vader_hub.models.cells`); a 3x3
homography ``H`` maps ``p`` to ``(H [p, 1])[:2] / (H [p, 1])[2]``.
"""
import torch


def homography_from_points(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The homography that maps four source points onto four target points (direct linear transform).

    Args:
        source: (4, 2) points (x, y), no three collinear.
        target: (4, 2) points (x, y).

    Returns:
        (3, 3) float64 homography ``H`` with ``H[2, 2] == 1``.

    Raises:
        ValueError: If the points do not have shape (4, 2) or are degenerate.
    """
    if source.shape != (4, 2) or target.shape != (4, 2):
        raise ValueError(f"need (4, 2) point sets, got {tuple(source.shape)} and {tuple(target.shape)}")
    x, y = source.double().unbind(-1)
    u, v = target.double().unbind(-1)
    ones, zeros = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], dim=-1)  # (4, 8)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], dim=-1)  # (4, 8)
    system = torch.cat([rows_u, rows_v])  # (8, 8)
    if torch.linalg.matrix_rank(system) < 8:
        raise ValueError("the four point pairs are degenerate (three are collinear); no homography fits")
    solution = torch.linalg.solve(system, torch.cat([u, v]))  # (8,)
    return torch.cat([solution, solution.new_ones(1)]).reshape(3, 3)  # (3, 3)


def apply_homography(homography: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map (x, y) points through homographies, broadcasting batch dimensions.

    Args:
        homography: (..., 3, 3) matrices.
        points: (..., 2) points (x, y); leading dimensions broadcast against ``homography``'s.

    Returns:
        (..., 2) mapped points, in the dtype of ``points`` (computed in float64).
    """
    homogeneous = torch.cat([points.double(), points.new_ones(points.shape[:-1] + (1,), dtype=torch.float64)], -1)
    mapped = torch.einsum("...ij,...j->...i", homography.double(), homogeneous)  # (..., 3)
    return (mapped[..., :2] / mapped[..., 2:]).to(points.dtype)  # (..., 2)
