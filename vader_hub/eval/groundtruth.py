"""Readers for user-supplied ground truth of real image pairs: homographies, disparity and flow.

Every reader returns torch tensors in the pixel units of the file and marks unknown values as NaN:

- a homography: a 3x3 text file (whitespace-separated rows, as HPatches' ``H_1_2``), mapping (x, y, 1)
  of the first image to the second;
- a disparity map: PNG (8 or 16 bit, one channel), PFM (Middlebury 2014's ``disp0.pfm``) or ``.npy``
  (H, W). The file stores ``disparity * scale`` (Middlebury 2003 PNGs: scale 4; KITTI: 256), and
  ``invalid`` is the stored value that means unknown (usually 0; PFM files use inf, which, like every
  non-finite value, is always unknown);
- a flow field: Middlebury ``.flo`` (values over 1e9 are unknown) or ``.npy`` (H, W, 2) holding (u, v) =
  (dx, dy) per pixel of the first image.
"""
import re
from pathlib import Path
from typing import Callable, Dict, Optional, Union

import numpy as np
import torch
from PIL import Image

PathLike = Union[str, Path]
FLO_MAGIC = 202021.25
FLO_UNKNOWN = 1e9


def read_homography(path: PathLike) -> torch.Tensor:
    """Read a 3x3 homography from a text file.

    Args:
        path: Text file with three rows of three numbers.

    Returns:
        (3, 3) float64 homography.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it does not hold a finite, invertible 3x3 matrix.
    """
    path = _existing(path)
    try:
        matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: not a text file of numbers ({error}); write the 3x3 matrix as 3 rows") from error
    if matrix.shape != (3, 3):
        raise ValueError(f"{path}: a homography is 3 rows of 3 numbers, got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-12:
        raise ValueError(f"{path}: the homography must be finite and invertible")
    return torch.from_numpy(matrix)


def read_disparity(path: PathLike, *, scale: float = 1.0, invalid: Optional[float] = 0.0) -> torch.Tensor:
    """Read a disparity map (PNG, PFM or ``.npy``).

    Args:
        path: The file.
        scale: The file stores ``disparity * scale``; the result is divided by it.
        invalid: Stored value that means unknown (compared before scaling), or None for none.

    Returns:
        (H, W) float32 disparity in pixels, NaN where unknown.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For an unknown suffix, a map that is not one channel, or a non-positive ``scale``.
    """
    path = _existing(path)
    if not scale > 0:
        raise ValueError(f"disparity scale must be positive, got {scale}")
    stored = _load_by_suffix(path, _DISPARITY_LOADERS, "disparity").astype(np.float64)
    if stored.ndim != 2:
        raise ValueError(f"{path}: a disparity map has one channel, got an array of shape {stored.shape}")
    unknown = ~np.isfinite(stored) | (stored == invalid if invalid is not None else False)
    disparity = np.where(unknown, np.nan, stored / scale)
    return torch.from_numpy(disparity.astype(np.float32))


def read_flow(path: PathLike) -> torch.Tensor:
    """Read an optical-flow field (Middlebury ``.flo`` or ``.npy``).

    Args:
        path: The file.

    Returns:
        (H, W, 2) float32 (u, v) flow in pixels, NaN (both components) where unknown.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For an unknown suffix, a corrupt ``.flo`` or an array that is not (H, W, 2).
    """
    path = _existing(path)
    flow = _load_by_suffix(path, _FLOW_LOADERS, "flow").astype(np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{path}: a flow field is (H, W, 2) = (u, v) per pixel, got shape {flow.shape}")
    unknown = ~np.isfinite(flow).all(axis=2) | (np.abs(flow) > FLO_UNKNOWN).any(axis=2)
    flow = np.where(unknown[..., None], np.nan, flow)
    return torch.from_numpy(flow.astype(np.float32))


def read_pfm(path: PathLike) -> np.ndarray:
    """Read a PFM image (``PF`` colour or ``Pf`` greyscale; rows stored bottom to top).

    Args:
        path: The file.

    Returns:
        (H, W) or (H, W, 3) float32 array, top row first.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the header or the data size is wrong.
    """
    path = _existing(path)
    data = path.read_bytes()
    header = re.match(rb"(P[Ff])\s+(\d+)\s+(\d+)\s+(\S+)\s", data)
    if header is None:
        raise ValueError(f"{path}: not a PFM file (the header must be 'PF' or 'Pf', width height, scale)")
    channels = 3 if header.group(1) == b"PF" else 1
    width, height, scale = int(header.group(2)), int(header.group(3)), float(header.group(4))
    dtype = np.dtype("<f4" if scale < 0 else ">f4")
    count = width * height * channels
    body = data[header.end() :]
    if len(body) < count * 4:
        raise ValueError(f"{path}: PFM data holds {len(body)} bytes, the header needs {count * 4}")
    values = np.frombuffer(body, dtype=dtype, count=count).astype(np.float32)
    image = values.reshape(height, width, channels)[::-1]  # (H, W, channels), top row first
    return np.ascontiguousarray(image[..., 0] if channels == 1 else image)


def _read_flo(path: Path) -> np.ndarray:
    """Middlebury ``.flo``: float32 magic 202021.25, int32 width and height, then (u, v) per pixel."""
    data = path.read_bytes()
    if len(data) < 12 or np.frombuffer(data, "<f4", 1)[0] != FLO_MAGIC:
        raise ValueError(f"{path}: not a Middlebury .flo file (wrong magic number)")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, offset=4))
    if width < 1 or height < 1 or len(data) != 12 + 8 * width * height:
        expected = 12 + 8 * width * height
        raise ValueError(f"{path}: a {width}x{height} .flo file must be {expected} bytes, got {len(data)}")
    return np.frombuffer(data, "<f4", offset=12).reshape(height, width, 2).copy()  # (H, W, 2)


Loader = Callable[[Path], np.ndarray]
_DISPARITY_LOADERS: Dict[str, Loader] = {".png": lambda path: np.asarray(Image.open(path)), ".pfm": read_pfm,
                                         ".npy": np.load}
_FLOW_LOADERS: Dict[str, Loader] = {".flo": _read_flo, ".npy": np.load}


def _load_by_suffix(path: Path, loaders: Dict[str, Loader], what: str) -> np.ndarray:
    """The array the loader of ``path``'s suffix reads; an unknown suffix names the accepted ones."""
    suffix = path.suffix.lower()
    if suffix not in loaders:
        *others, last = loaders
        raise ValueError(f"{path}: {what} must be a {', '.join(others)} or {last} file, got {suffix!r}")
    return loaders[suffix](path)


def _existing(path: PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file {path} does not exist")
    return path
