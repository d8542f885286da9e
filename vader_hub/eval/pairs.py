"""Real image pairs with ground truth, listed by the user in a JSON file.

The file is a list of pairs (or ``{"pairs": [...]}``); relative paths are relative to the JSON file::

    [
      {"name": "graf-1-3", "image_a": "graf/img1.ppm", "image_b": "graf/img3.ppm",
       "homography": "graf/H_1_3"},
      {"name": "teddy", "image_a": "teddy/im2.png", "image_b": "teddy/im6.png",
       "disparity": "teddy/disp2.png", "disparity_scale": 4, "disparity_invalid": 0},
      {"name": "rubberwhale", "image_a": "RubberWhale/frame10.png", "image_b": "RubberWhale/frame11.png",
       "flow": "RubberWhale/flow10.flo"}
    ]

Exactly one of ``homography``, ``disparity`` or ``flow`` per pair (formats: :mod:`.groundtruth`):

- ``homography``: pixel (x, y) of image A is at ``H (x, y, 1)`` in image B;
- ``disparity``: pixel (x, y) of image A is at (x - d, y) in image B when A is the left view
  (``"disparity_view": "left"``, the default) and at (x + d, y) when A is the right view;
  ``disparity_scale`` (default 1) and ``disparity_invalid`` (default 0, ``null`` for none) as in
  :func:`.groundtruth.read_disparity`;
- ``flow``: pixel (x, y) of image A is at (x + u, y + v) in image B.

Each becomes its own type (:class:`Homography`, :class:`Disparity`, :class:`Flow`) with the one method
``targets(points)`` that maps points of image A into image B.

Dense ground truth (disparity, flow) covers image A pixel for pixel and is read at the pixel nearest to
each query point.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, List, Tuple, Union

import torch
from PIL import Image

from ..geometry import apply_homography
from .groundtruth import read_disparity, read_flow, read_homography
from .jsonfile import read_json

EXIF_ORIENTATION = 0x0112
ROTATING_ORIENTATIONS = range(2, 9)  # 1 is upright; ImageOps.exif_transpose ignores 0 and values past 8
_OPTIONS = {"name", "image_a", "image_b", "disparity_scale", "disparity_invalid", "disparity_view"}
_DISPARITY_SIGNS = {"left": -1, "right": 1}  # the view image A is -> the sign of its shift into B


@dataclass(frozen=True)
class Targets:
    """Where points of image A are in image B.

    Attributes:
        points: (N, 2) float (x, y) positions in image B (NaN where unknown).
        known: (N,) bool, True where the ground truth gives a position.
    """

    points: torch.Tensor
    known: torch.Tensor


@dataclass(frozen=True)
class Homography:
    """Ground truth of a planar scene: pixel (x, y) of image A is at ``H (x, y, 1)`` in image B.

    Attributes:
        matrix: (3, 3) homography from image A's pixels to image B's.
    """

    matrix: torch.Tensor
    label: ClassVar[str] = "homography"

    def targets(self, points: torch.Tensor) -> Targets:
        """Positions in image B of (N, 2) float (x, y) pixel positions of image A; all known."""
        mapped = apply_homography(self.matrix, points.double()).float()  # (N, 2)
        return Targets(points=mapped, known=torch.ones(len(points), dtype=torch.bool))


@dataclass(frozen=True)
class Disparity:
    """Ground truth of a rectified stereo pair: pixel (x, y) of image A is at (x + sign * d, y) in image B.

    Attributes:
        disparity: (H, W) disparity ``d`` of image A in pixels, NaN where unknown.
        sign: -1 when image A is the left view, +1 when it is the right.
    """

    disparity: torch.Tensor
    sign: int = -1
    label: ClassVar[str] = "disparity"

    def targets(self, points: torch.Tensor) -> Targets:
        """Positions in image B of (N, 2) float (x, y) pixel positions of image A (``d`` at the nearest pixel)."""
        values, inside = _at_nearest_pixel(self.disparity, points)  # (N,), (N,)
        shift = torch.stack([self.sign * values, torch.zeros_like(values)], dim=1)  # (N, 2)
        return _shifted(points, shift, inside)


@dataclass(frozen=True)
class Flow:
    """Ground truth of optical flow: pixel (x, y) of image A is at (x + u, y + v) in image B.

    Attributes:
        flow: (H, W, 2) flow ``(u, v)`` of image A in pixels, NaN where unknown.
    """

    flow: torch.Tensor
    label: ClassVar[str] = "flow"

    def targets(self, points: torch.Tensor) -> Targets:
        """Positions in image B of (N, 2) float (x, y) pixel positions of image A (flow at the nearest pixel)."""
        values, inside = _at_nearest_pixel(self.flow, points)  # (N, 2), (N,)
        return _shifted(points, values, inside)


GroundTruth = Union[Homography, Disparity, Flow]


@dataclass(frozen=True)
class GroundTruthPair:
    """Two images and the ground truth that maps pixels of the first onto the second.

    Attributes:
        name: Name of the pair in the report.
        image_a: Path of the first image.
        image_b: Path of the second image.
        truth: A :class:`Homography`, :class:`Disparity` or :class:`Flow` at the size of the files: its
            ``targets(points)`` maps points of image A into image B, its ``label`` names it in reports.
    """

    name: str
    image_a: Path
    image_b: Path
    truth: GroundTruth


def _at_nearest_pixel(field: torch.Tensor, points: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """A dense field of image A read at the pixel nearest to each (x, y) point, and whether it is inside."""
    height, width = field.shape[:2]
    nearest = points.round().long()  # (N, 2) (x, y)
    inside = (nearest[:, 0] >= 0) & (nearest[:, 0] < width) & (nearest[:, 1] >= 0) & (nearest[:, 1] < height)
    nearest = torch.where(inside[:, None], nearest, torch.zeros_like(nearest))
    return field[nearest[:, 1], nearest[:, 0]], inside  # (N,) disparity or (N, 2) flow, (N,)


def _shifted(points: torch.Tensor, shift: torch.Tensor, inside: torch.Tensor) -> Targets:
    """Points moved by a dense field's (N, 2) shift; known where inside the field and finite."""
    mapped = points.float() + shift  # (N, 2)
    known = inside & torch.isfinite(mapped).all(dim=1)
    return Targets(points=torch.where(known[:, None], mapped, torch.nan), known=known)


def _read_homography(path: Path, entry: dict, size_a: Tuple[int, int], what: str) -> Homography:
    return Homography(read_homography(path))


def _read_disparity(path: Path, entry: dict, size_a: Tuple[int, int], what: str) -> Disparity:
    disparity = read_disparity(
        path, scale=float(entry.get("disparity_scale", 1.0)), invalid=entry.get("disparity_invalid", 0.0)
    )
    _check_dense_size(disparity.shape, size_a, what)
    return Disparity(disparity, sign=_DISPARITY_SIGNS[entry.get("disparity_view", "left")])


def _read_flow(path: Path, entry: dict, size_a: Tuple[int, int], what: str) -> Flow:
    flow = read_flow(path)
    _check_dense_size(flow.shape[:2], size_a, what)
    return Flow(flow)


_READERS = {"homography": _read_homography, "disparity": _read_disparity, "flow": _read_flow}
"""The JSON key of each kind of ground truth, and its reader."""
KINDS = tuple(_READERS)


def load_pairs(path: Union[str, Path]) -> List[GroundTruthPair]:
    """Read a JSON list of pairs (format in the module docstring) and their ground truth.

    Args:
        path: The JSON file.

    Returns:
        The pairs, in file order.

    Raises:
        FileNotFoundError: If the JSON file, an image or a ground-truth file does not exist.
        ValueError: For malformed JSON, unknown or missing keys, or dense ground truth whose size is not
            image A's.
    """
    path = Path(path)
    entries = read_json(path, "pairs file")
    entries = entries.get("pairs") if isinstance(entries, dict) else entries
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path} must hold a non-empty list of pairs (or {{\"pairs\": [...]}})")
    return [_pair(entry, index, path.parent) for index, entry in enumerate(entries)]


def _pair(entry: object, index: int, root: Path) -> GroundTruthPair:
    where = f"pair {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(entry).__name__}")
    unknown = set(entry) - _OPTIONS - set(KINDS)
    kinds = [kind for kind in KINDS if kind in entry]
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_OPTIONS | set(KINDS))}")
    if len(kinds) != 1 or "image_a" not in entry or "image_b" not in entry:
        raise ValueError(f"{where} needs image_a, image_b and exactly one of {KINDS}, got keys {sorted(entry)}")
    image_a, image_b = (_resolve(root, entry[key], f"{where} {key}") for key in ("image_a", "image_b"))
    for image in (image_a, image_b):
        _check_upright(image, where)
    view = entry.get("disparity_view", "left")
    if view not in _DISPARITY_SIGNS:
        raise ValueError(f"{where}: disparity_view must be 'left' or 'right', got {view!r}")
    kind = kinds[0]
    truth_path = _resolve(root, entry[kind], f"{where} {kind}")
    truth = _READERS[kind](truth_path, entry, _size_of(image_a), f"{where} {kind} {truth_path}")
    name = str(entry.get("name", f"{image_a.stem}-{image_b.stem}"))
    return GroundTruthPair(name, image_a, image_b, truth)


def _resolve(root: Path, value: object, what: str) -> Path:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a path string, got {value!r}")
    path = root / value
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file {path} does not exist")
    return path


def _check_upright(image: Path, where: str) -> None:
    """Refuse an image whose EXIF orientation would rotate it: the loader applies that tag, so its
    pixels would no longer be where ground truth given in stored-pixel coordinates puts them."""
    try:
        with Image.open(image) as opened:
            orientation = opened.getexif().get(EXIF_ORIENTATION, 1)
    except OSError as error:  # PIL's UnidentifiedImageError included
        raise ValueError(f"{where}: {image} is not a readable image ({error})") from error
    if orientation in ROTATING_ORIENTATIONS:
        raise ValueError(
            f"{where}: {image} has EXIF orientation {orientation}, which would rotate or mirror it when loaded, "
            "so its ground truth would no longer line up; save the pixels upright (e.g. with "
            "PIL.ImageOps.exif_transpose) and give the ground truth in that frame, or drop the tag"
        )


def _size_of(image: Path) -> Tuple[int, int]:
    with Image.open(image) as opened:
        return opened.height, opened.width


def _check_dense_size(field: Tuple[int, ...], image: Tuple[int, int], what: str) -> None:
    if tuple(field) != tuple(image):
        raise ValueError(
            f"{what} is {field[0]}x{field[1]} but image A is {image[0]}x{image[1]}; dense ground truth must "
            "cover image A pixel for pixel"
        )
