"""The dense descriptors the benchmark compares: trained networks, random init, dense SIFT, raw patches.

A :class:`Method` is a name and one or more *variants*, each a function from a list of (3, H, W)
images in [0, 1] to their (C, ceil(H/4), ceil(W/4)) maps under the cell convention. Its score on an
image is the mean over its variants; a random initialisation is judged over several seeds that way.
"""
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from torch import nn

from ..features import extract_dense_features
from ..models.cells import STRIDE, output_size
from ..weights.verify import recorded_architecture

Describe = Callable[[Sequence[torch.Tensor]], List[torch.Tensor]]
Device = Union[None, str, torch.device]
RANDOM_INIT_SEEDS = (0, 1, 2)
PATCH_SIZE = 9
SIFT_KEYPOINT_SIZE = 16.0
SIFT_INSTALL_HINT = "pip install 'vader-hub[sift]' (or opencv-python-headless)"


@dataclass(frozen=True)
class Method:
    """A row of the benchmark table.

    Attributes:
        name: Name in the report.
        variants: Describers whose scores are averaged (e.g. one per random-init seed).
    """

    name: str
    variants: Tuple[Describe, ...]


def network_method(model: nn.Module, name: str, *, device: Device = None) -> Method:
    """A network used as it is, through :func:`vader_hub.extract_dense_features`.

    Args:
        model: A dense network, e.g. ``timm.create_model("vader_r18_fpn")``.
        name: Name in the report.
        device: Device to run on (default: the model's).

    Returns:
        The :class:`Method`.
    """
    return Method(name=name, variants=(_network_describer(model, device),))


def weights_method(
    path: Union[str, Path], *, architecture: Optional[str] = None, name: Optional[str] = None, device: Device = None
) -> Method:
    """A VADeR network loaded from a weights file, through the verified loader of :mod:`vader_hub.weights`.

    Args:
        path: A vader-hub safetensors file.
        architecture: The timm name to build; default: the one the file's metadata records.
        name: Name in the report; default: the file name.
        device: Device to run on (default: CPU).

    Returns:
        The :class:`Method`.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the architecture is neither given nor recorded in the file (and the errors of
            :func:`vader_hub.weights.load_pretrained` for a file that does not fit).
    """
    path = Path(path)
    architecture = architecture or recorded_architecture(path)
    model = timm.create_model(architecture, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    return Method(name=name or path.name, variants=(_network_describer(_to(model, device), device),))


def random_init_method(architecture: str, *, seeds: Sequence[int] = RANDOM_INIT_SEEDS, device: Device = None) -> Method:
    """Randomly initialised networks of one architecture, one variant per seed.

    Args:
        architecture: timm name, e.g. ``"vader_r18_fpn"``.
        seeds: Seeds of the initialisations; the score is their mean.
        device: Device to run on (default: CPU).

    Returns:
        The :class:`Method` named ``"<architecture> random init (n seeds)"``.

    Raises:
        ValueError: If ``seeds`` is empty.
    """
    if not seeds:
        raise ValueError("random_init_method needs at least one seed")
    variants = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = timm.create_model(architecture)
        variants.append(_network_describer(_to(model, device), device))
    return Method(name=f"{architecture} random init ({len(seeds)} seeds)", variants=tuple(variants))


def patch_method(patch_size: int = PATCH_SIZE) -> Method:
    """Raw normalised-patch descriptors (see :func:`patch_descriptors`).

    Args:
        patch_size: Side in px of the square RGB patch; odd, so the patch is centred on a pixel.

    Returns:
        The :class:`Method` named ``"<patch_size>x<patch_size> normalised patches"``, one variant.

    Raises:
        ValueError: If ``patch_size`` is not a positive odd integer.
    """
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be a positive odd integer, got {patch_size}")
    describe = _each_image(lambda image: patch_descriptors(image, patch_size))
    return Method(name=f"{patch_size}x{patch_size} normalised patches", variants=(describe,))


def patch_descriptors(image: torch.Tensor, patch_size: int = PATCH_SIZE) -> torch.Tensor:
    """The RGB patch centred on each cell's pixel, mean/std normalised: cosine is then normalised cross-correlation.

    Cell (i, j) takes the ``patch_size`` x ``patch_size`` patch centred on pixel (4i, 4j), the cell
    convention of the networks; pixels past the border repeat the edge. A flat patch gives a zero vector.

    Args:
        image: (3, H, W) float image.
        patch_size: Odd patch side in pixels.

    Returns:
        (3 * patch_size**2, ceil(H/4), ceil(W/4)) descriptors.
    """
    height, width = image.shape[-2:]
    half = patch_size // 2
    padded = F.pad(image[None].float(), (half, half, half, half), mode="replicate")  # (1, 3, H+2h, W+2h)
    patches = F.unfold(padded, patch_size, stride=STRIDE)[0]  # (3*p*p, h*w)
    centred = patches - patches.mean(dim=0, keepdim=True)  # (3*p*p, h*w)
    normalised = centred / (centred.std(dim=0, keepdim=True) + 1e-6)  # (3*p*p, h*w)
    return normalised.reshape(-1, *output_size(height, width))  # (3*p*p, h, w)


def sift_method(keypoint_size: float = SIFT_KEYPOINT_SIZE) -> Method:
    """Dense SIFT (see :func:`sift_descriptors`), the classical baseline of dense correspondence.

    Args:
        keypoint_size: OpenCV keypoint diameter in pixels; the descriptor's 4 x 4 bins cover about 1.5 times it.

    Returns:
        The :class:`Method` named ``"dense SIFT (<size> px, upright)"``, one variant.

    Raises:
        ValueError: If ``keypoint_size`` is not positive.
        ImportError: If OpenCV is not installed, saying how to install it.
    """
    if not keypoint_size > 0:
        raise ValueError(f"keypoint_size must be a positive number of pixels, got {keypoint_size}")
    _opencv()
    describe = _each_image(lambda image: sift_descriptors(image, keypoint_size))
    return Method(name=f"dense SIFT ({keypoint_size:g} px, upright)", variants=(describe,))


def sift_descriptors(image: torch.Tensor, keypoint_size: float = SIFT_KEYPOINT_SIZE) -> torch.Tensor:
    """OpenCV SIFT descriptors on the stride-4 cell grid: upright keypoints of one fixed size.

    Cell (i, j) gets the descriptor of an upright (angle 0) keypoint of diameter ``keypoint_size`` at
    pixel (4i, 4j) of the greyscale image, the networks' cell convention, so every method is matched
    on the same grid by the same search.

    Args:
        image: (3, H, W) float image in [0, 1].
        keypoint_size: Keypoint diameter in pixels.

    Returns:
        (128, ceil(H/4), ceil(W/4)) float32 descriptors.

    Raises:
        ImportError: If OpenCV is not installed.
    """
    cv2 = _opencv()
    height, width = image.shape[-2:]
    rgb = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (H, W) uint8
    cells_h, cells_w = output_size(height, width)
    keypoints = [cv2.KeyPoint(float(STRIDE * j), float(STRIDE * i), keypoint_size, 0.0)
                 for i in range(cells_h) for j in range(cells_w)]
    kept, descriptors = cv2.SIFT_create().compute(grey, keypoints)
    if descriptors is None or len(kept) != len(keypoints):
        raise RuntimeError(f"OpenCV SIFT kept {len(kept)} of {len(keypoints)} grid keypoints; expected all of them")
    return torch.from_numpy(descriptors).T.reshape(-1, cells_h, cells_w)  # (128, h, w)


def _opencv():
    try:
        import cv2
    except ImportError as error:
        raise ImportError(f"the dense SIFT baseline needs OpenCV, which is not installed: {SIFT_INSTALL_HINT}") \
            from error
    return cv2


def _each_image(describe_one: Callable[[torch.Tensor], torch.Tensor]) -> Describe:
    """A describer that runs a one-image descriptor on each image in turn (no batch: sizes may differ)."""

    def describe(images: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        return [describe_one(image) for image in images]

    return describe


def _network_describer(model: nn.Module, device: Device) -> Describe:
    def describe(images: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        maps = extract_dense_features(list(images), model=model, device=device)
        return [maps[index] for index in range(len(images))]

    return describe


def _to(model: nn.Module, device: Device) -> nn.Module:
    return model.to(device) if device is not None else model


def optional_sift_method() -> List[Method]:
    """``[sift_method()]``, or ``[]`` with a note on stderr when OpenCV is not installed."""
    try:
        return [sift_method()]
    except ImportError as error:
        print(f"note: dense SIFT baseline skipped: {error}", file=sys.stderr)
        return []
