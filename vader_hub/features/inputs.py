"""Turn every image kind the feature API accepts into float RGB tensors in [0, 1].

Accepted, alone or in a list of mixed kinds and sizes:

- a PIL image of any mode: EXIF orientation is applied; greyscale, palette, CMYK, YCbCr, LAB and HSV
  become RGB; 16-bit greyscale (modes ``I;16*`` and ``I``) is scaled by 1/65535; images with an alpha
  channel are composited over white, as a viewer shows them;
- a path (``str`` or ``os.PathLike``) to an image file PIL can read;
- a numpy array, HxW or HxWxC (C = 1, 3 or 4), or a batch NxHxWxC;
- a torch tensor, HxW, CxHxW (C = 1, 3 or 4) or a batch BxCxHxW.

Arrays and tensors may be uint8 (0..255), uint16 (0..65535) or float in [0, 1]; floats up to
:data:`FLOAT_SLACK` outside [0, 1] (the overshoot of a bicubic resize) are clipped, anything further out
is refused, as it is almost always a 0..255 float image or an already-normalised one.

Each input becomes one (3, H, W) float32 tensor, on the device it came from. Every bad input raises a
``TypeError`` or ``ValueError`` that names the problem before anything reaches the network. With
``max_pixels``, an image file is measured from its header and refused before it is decoded, so a
small file that decodes to gigabytes costs neither the memory nor the time.
"""
import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from ..checks import check_positive_int

ImageInput = Union[Image.Image, str, os.PathLike, np.ndarray, torch.Tensor]

FLOAT_SLACK = 0.05
MAX_PIXELS = 4096 * 4096
"""Largest image (H * W after resizing) the feature API processes by default: 4096x4096, about 17
megapixels, at which ``vader_r50_fpn`` on CPU needs roughly 6.5 GB, 4x the 1.6 GB that a 2048x2048 image
takes (``benchmarks/extract_memory.py``). Pass ``short_side`` or ``size`` to shrink larger images."""

_INTEGER_RANGES = {torch.uint8: 255.0, torch.uint16: 65535.0}
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


@dataclass(frozen=True)
class LoadedImages:
    """Images ready to be resized and normalised for the network.

    Attributes:
        images: One (3, H, W) float32 tensor in [0, 1] per image, in input order.
        single: True when the caller passed one image (not a list or a batch), so one map is returned.
    """

    images: List[torch.Tensor]
    single: bool


def load_images(img: Union[ImageInput, Sequence[ImageInput]], max_pixels: Optional[int] = None) -> LoadedImages:
    """Convert any accepted input (see the module docstring) into RGB float tensors.

    Args:
        img: One image, a batch (NxHxWxC array or BxCxHxW tensor), or a list or tuple of single images.
        max_pixels: Refuse image files and PIL images of more pixels (H * W) than this, files before
            they are decoded; None: no limit beyond PIL's decompression-bomb guard.

    Returns:
        The images and whether the input was a single image.

    Raises:
        TypeError: For an unsupported type or dtype.
        ValueError: For an empty input, a zero-size image, NaN or inf, values out of range, a wrong
            number of channels or dimensions, an unreadable image file, or one over ``max_pixels``.
        FileNotFoundError: For a path that does not exist.
    """
    if isinstance(img, (list, tuple)):
        if len(img) == 0:
            raise ValueError("got an empty list of images; pass at least one image")
        images = [_load_list_item(item, index, max_pixels) for index, item in enumerate(img)]
        return LoadedImages(images=images, single=False)
    if isinstance(img, (np.ndarray, torch.Tensor)) and img.ndim == 4:
        return LoadedImages(images=list(_batch_to_rgb(img).unbind(0)), single=False)
    return LoadedImages(images=[load_image(img, max_pixels)], single=True)


def load_image(img: ImageInput, max_pixels: Optional[int] = None) -> torch.Tensor:
    """Convert one image (PIL, path, HxW/HxWxC array, HxW/CxHxW tensor) into a (3, H, W) float tensor.

    Args:
        img: One image.
        max_pixels: As :func:`load_images`: a file over it is refused from its header, undecoded.

    Returns:
        A (3, H, W) float32 tensor in [0, 1].

    Raises:
        TypeError, ValueError, FileNotFoundError: As :func:`load_images`.
    """
    if isinstance(img, Image.Image):
        check_pixel_limit(img.height, img.width, max_pixels)
        return _from_pil(img)
    if isinstance(img, (str, os.PathLike)):
        return _from_path(img, max_pixels)
    if isinstance(img, (np.ndarray, torch.Tensor)):
        layouts = "HxW, HxWxC or NxHxWxC" if isinstance(img, np.ndarray) else "HxW, CxHxW or BxCxHxW"
        if img.ndim > 4 or img.ndim < 2:
            raise ValueError(f"image has {img.ndim} dims (shape {tuple(img.shape)}); expected {layouts}")
        if img.ndim == 4:
            raise ValueError(f"expected one image, got a batch of shape {tuple(img.shape)}; pass batches on their own")
        return _batch_to_rgb(img[None])[0]
    raise TypeError(
        f"unsupported image type {type(img).__name__}; pass a PIL image, a path, a numpy array (HxW or HxWxC) "
        "or a torch tensor (CxHxW or BxCxHxW)"
    )


def check_pixel_limit(height: int, width: int, max_pixels: Optional[int], what: str = "image") -> None:
    """Refuse an image of more than ``max_pixels`` pixels (None: no limit), saying how to shrink it.

    Raises:
        ValueError: Naming ``what``, its size and the limit.
    """
    if max_pixels is not None and height * width > max_pixels:
        raise ValueError(
            f"{what} is {height}x{width} = {height * width / 1e6:.1f} megapixels, over the limit of "
            f"max_pixels={max_pixels}; pass short_side= or size= to shrink it, or raise max_pixels if you "
            "have the memory (vader_r50_fpn on CPU needs about 0.4 GB per megapixel)"
        )


def _load_list_item(item: ImageInput, index: int, max_pixels: Optional[int]) -> torch.Tensor:
    if isinstance(item, (list, tuple)):
        raise TypeError(f"image {index} of the list is itself a {type(item).__name__}; lists cannot be nested")
    try:
        return load_image(item, max_pixels)
    except (TypeError, ValueError) as error:
        raise type(error)(f"image {index} of the list: {error}") from error


def _from_path(path: Union[str, os.PathLike], max_pixels: Optional[int]) -> torch.Tensor:
    text = os.fspath(path)
    if isinstance(text, bytes):
        raise TypeError("byte-string paths are not supported; pass a str or pathlib.Path")
    if "://" in text:
        raise ValueError(f"{text!r} looks like a URL; images are not downloaded, save the file and pass its path")
    if not os.path.exists(text):
        raise FileNotFoundError(f"image file not found: {text}")
    if os.path.isdir(text):
        raise ValueError(f"{text} is a directory; pass image files (e.g. a glob of the directory's contents)")
    try:
        with _quiet_bomb_warning(max_pixels), Image.open(text) as opened:
            # Image.open has read only the header: measure before decoding
            check_pixel_limit(opened.height, opened.width, max_pixels, f"image file {text} (from its header)")
            opened.load()  # decode now, so a truncated file fails here, with its name
            return _from_pil(opened)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise ValueError(f"could not read image file {text}: {error}") from error


@contextlib.contextmanager
def _quiet_bomb_warning(max_pixels: Optional[int]) -> Iterator[None]:
    """Silence PIL's decompression-bomb warning where ``max_pixels`` refuses every image it warns about."""
    with warnings.catch_warnings():
        if max_pixels is not None and Image.MAX_IMAGE_PIXELS is not None and max_pixels <= Image.MAX_IMAGE_PIXELS:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _from_pil(image: Image.Image) -> torch.Tensor:
    image = ImageOps.exif_transpose(image)
    if image.width == 0 or image.height == 0:
        raise ValueError(f"image is empty ({image.height}x{image.width} pixels)")
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image).astype(np.int64)  # (H, W): I;16B is big-endian, I is int32
        if grey.min() < 0 or grey.max() > 65535:
            raise ValueError(f"mode {image.mode} image has values outside 0..65535, so it is not 16-bit grey")
        return _batch_to_rgb(grey.astype(np.uint16)[None])[0]
    if image.mode == "F":
        return _batch_to_rgb(np.asarray(image)[None])[0]
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return _batch_to_rgb(np.asarray(_convert(image, "RGBA"))[None])[0]
    return _batch_to_rgb(np.asarray(_convert(image, "RGB"))[None])[0]


def _convert(image: Image.Image, mode: str) -> Image.Image:
    if image.mode == mode:
        return image
    try:
        return image.convert(mode)
    except ValueError as error:
        raise ValueError(f"cannot convert a PIL image of mode {image.mode!r} to {mode}: {error}") from error


def _batch_to_rgb(batch: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    """An NxHxW or NxHxWxC numpy batch, or an NxHxW or NxCxHxW tensor, as (N, 3, H, W) float in [0, 1]."""
    if isinstance(batch, np.ndarray):
        batch = _array_to_tensor(batch)
    elif batch.dim() == 3:
        batch = batch[:, None]  # (N, 1, H, W)
    _check_size(batch)
    return _to_rgb(_to_unit_float(batch))


def _array_to_tensor(batch: np.ndarray) -> torch.Tensor:
    """An NxHxW or NxHxWxC array as an (N, C, H, W) tensor, without converting its values."""
    if batch.ndim == 4 and batch.shape[-1] not in (1, 3, 4) and batch.shape[1] in (1, 3, 4):
        shown = batch.shape[1:] if len(batch) == 1 else batch.shape
        raise ValueError(
            f"image array of shape {shown} looks channels-first; numpy images are HxWxC: "
            "use np.moveaxis(array, -3, -1)"
        )
    if batch.dtype.byteorder == ">":
        batch = batch.astype(batch.dtype.newbyteorder("="))
    if batch.dtype not in (np.uint8, np.uint16, np.float16, np.float32, np.float64):
        raise TypeError(
            f"unsupported image dtype {batch.dtype}; use uint8 (0..255), uint16 (0..65535) or float in [0, 1], "
            "e.g. array.astype(np.uint8)"
        )
    # Arrays from PIL are read-only; copying them keeps torch from warning about writes it never does.
    tensor = torch.from_numpy(np.ascontiguousarray(batch) if batch.flags.writeable else batch.copy())
    if tensor.dim() == 3:
        return tensor[:, None]  # (N, 1, H, W)
    return tensor.permute(0, 3, 1, 2)  # (N, C, H, W)


def _check_size(batch: torch.Tensor) -> None:
    channels, height, width = batch.shape[1:]
    if batch.shape[0] == 0:
        raise ValueError(f"got an empty batch (shape {tuple(batch.shape)}); pass at least one image")
    if height == 0 or width == 0:
        raise ValueError(f"image is empty ({height}x{width} pixels)")
    if channels not in (1, 3, 4):
        raise ValueError(
            f"image has {channels} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA), with torch tensors laid "
            "out CxHxW and numpy arrays HxWxC"
        )


def _to_unit_float(batch: torch.Tensor) -> torch.Tensor:
    """Scale integer images to [0, 1]; check float images are finite and within [0, 1]."""
    if batch.dtype in _INTEGER_RANGES:
        return batch.to(torch.float32) / _INTEGER_RANGES[batch.dtype]
    if batch.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"unsupported image dtype {batch.dtype}; use uint8 (0..255), uint16 (0..65535) or float in [0, 1]"
        )
    batch = batch.to(torch.float32)
    low, high = (value.item() for value in torch.aminmax(batch))
    if np.isnan(low) or np.isnan(high):
        raise ValueError("image contains NaN values")
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("image contains infinite values")
    if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        raise ValueError(
            f"float image values lie in [{low:.3g}, {high:.3g}], not [0, 1]; divide 0..255 images by 255, and pass "
            "images before mean/std normalisation (the model's own normalisation is applied for you)"
        )
    if low < 0 or high > 1:
        batch = batch.clamp(0, 1)
    return batch


def _to_rgb(batch: torch.Tensor) -> torch.Tensor:
    """(N, 1|3|4, H, W) in [0, 1] -> (N, 3, H, W); alpha is composited over white."""
    channels = batch.shape[1]
    if channels == 1:
        return batch.expand(-1, 3, -1, -1)  # (N, 3, H, W)
    if channels == 4:
        rgb, alpha = batch[:, :3], batch[:, 3:]  # (N, 3, H, W), (N, 1, H, W)
        return rgb * alpha + (1 - alpha)
    return batch


def target_size(
    height: int, width: int, size: Optional[Tuple[int, int]] = None, short_side: Optional[int] = None
) -> Tuple[int, int]:
    """The (H, W) an image is resized to before the network.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
        size: Exact (height, width), or None.
        short_side: Length of the shorter side, aspect ratio kept (the long side is rounded), or None.

    Returns:
        The target (H, W); the image's own size when both options are None.

    Raises:
        ValueError: If both options are given or a value is not a positive integer.
        TypeError: If ``size`` is not a pair.
    """
    if size is not None and short_side is not None:
        raise ValueError("pass either size=(height, width) or short_side, not both")
    if size is not None:
        if isinstance(size, (int, np.integer)) or len(size) != 2:
            raise TypeError(f"size must be a (height, width) pair, got {size!r}; for one side use short_side")
        check_positive_int("size", size[0])
        check_positive_int("size", size[1])
        return int(size[0]), int(size[1])
    if short_side is not None:
        check_positive_int("short_side", short_side)
        scale = short_side / min(height, width)
        if height <= width:
            return int(short_side), max(1, round(width * scale))
        return max(1, round(height * scale)), int(short_side)
    return height, width


def resize(image: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resize a (3, H, W) image in [0, 1] to ``size`` with antialiased bilinear filtering.

    Args:
        image: A (3, H, W) float image.
        size: Target (height, width).

    Returns:
        The (3, *size) image; the input itself when it already has that size.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    resized = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0]  # (3, H', W')
