"""Dense features in one call: ``extract_dense_features(img)`` -> a 128-d feature per stride-4 cell.

    >>> import vader_hub
    >>> feats = vader_hub.extract_dense_features("photo.jpg")                   # (128, ceil(H/4), ceil(W/4))
    >>> vader_hub.models.default_model_name()                                   # the model it used
    >>> feats = vader_hub.extract_dense_features(images, "vader_r50_fpn", short_side=448)
    >>> pixels = vader_hub.extract_dense_features(img, upsample=True)           # (128, H, W)
    >>> transform = dense_transform(model)   # the same network input, as a Dataset transform: no crop

Images of any size are accepted: no multiple-of-a-patch rule, and images under the network's
32-pixel minimum are padded (edge pixels repeated on the bottom and right) and the result cropped to
their own cells. Images of one size are batched together; a list of mixed sizes gives a list of maps.
"""
import contextlib
import functools
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_positive_int
from ..models import MIN_INPUT_SIZE, default_model_name
from ..models.cells import STRIDE, output_size, upsample_to_pixels
from ..models.preprocess import mean_and_std, normalize_images, pretrained_cfg_of
from ..weights.names import check_model_name
from .inputs import MAX_PIXELS, ImageInput, check_pixel_limit, load_image, load_images, resize, target_size

ModelInput = Union[None, str, nn.Module]


def extract_dense_features(
    img: Union[ImageInput, Sequence[ImageInput]],
    model: ModelInput = None,
    *,
    size: Optional[Tuple[int, int]] = None,
    short_side: Optional[int] = None,
    upsample: bool = False,
    normalize: bool = True,
    device: Union[None, str, torch.device] = None,
    batch_size: int = 8,
    autocast: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> Union[torch.Tensor, List[torch.Tensor]]:
    """Dense VADeR features of one image or many, at the images' own size.

    The network runs under ``torch.inference_mode``; the returned tensors are ordinary tensors (not
    inference tensors), so they can feed a trainable probe directly. All images of one call are decoded
    and held in memory as float32 first, so pass long lists of large files in chunks.

    Args:
        img: A PIL image, a path, a numpy array (HxW or HxWxC, uint8, uint16 or float in [0, 1]), a torch
            tensor (CxHxW or BxCxHxW, likewise), or a list of these of any sizes. See
            :mod:`vader_hub.features.inputs` for modes, EXIF orientation and alpha.
        model: An ``nn.Module`` (used as it is, on its own device, in eval mode for the call), or a timm
            name, ``"vader_r50_fpn"`` or ``"vader_r50_fpn.<tag>"``, which is always built with its
            pretrained weights (the default tag if none is given) and cached for later calls. None
            means the best model that has weights, :func:`vader_hub.models.default_model_name` (today
            ``vader_r18_fpn``, bundled with the package). For random weights pass
            ``timm.create_model("vader_r18_fpn")``.
        size: Resize every image to this exact (height, width) first.
        short_side: Resize every image so its shorter side is this long, keeping the aspect ratio.
        upsample: Return one feature per input pixel, (C, H, W), sampled at each pixel's place in the
            cell convention (:func:`vader_hub.models.cells.upsample_to_pixels`).
        normalize: L2-normalise every feature along C (after upsampling).
        device: Device to run on; default: the module's own device, or CPU for a named model.
        batch_size: Images per forward pass (images of one size are batched together).
        autocast: Run the network under bfloat16 autocast; the result is still float32.
        max_pixels: Refuse images larger than this (H * W after resizing), as they would exhaust memory.

    Returns:
        Float32 features on ``device``: (C, h, w) for one image with h, w = ceil(H/4), ceil(W/4) of the
        (resized) image; (N, C, h, w) for a batch or list of images of one size; a list of (C, h, w)
        maps for a list of mixed sizes. With ``upsample=True``, h, w = H, W.

    Raises:
        TypeError: For an unsupported image type or dtype, or a ``model`` that is not a name or module.
        ValueError: For a bad image (empty, zero-size, NaN or inf, out of range, wrong channels or dims,
            unreadable file), an image over ``max_pixels``, an unknown model name, a ``device`` unlike
            the module's, or a model whose output is not a stride-4 map.
        FileNotFoundError: For a missing image file, or (``vader_hub.weights``) pretrained weights that
            cannot be found offline.
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("max_pixels", max_pixels)
    # Without a resize, an image file over the limit is refused from its header, before it is decoded.
    unresized_limit = max_pixels if size is None and short_side is None else None
    loaded = load_images(img, max_pixels=unresized_limit)  # decoded up front: pass long lists in chunks
    network, run_device = resolve_model(model, device)
    preprocess = dense_transform(network, size=size, short_side=short_side)
    images = [preprocess.resize(image) for image in loaded.images]
    _check_pixel_limit(images, max_pixels)
    outputs = []
    with _evaluation_mode(network):
        for indices in _batches_of_one_size(images, batch_size):
            raw = _forward(network, preprocess, [images[i] for i in indices], run_device, autocast)  # (n, C, h, w)
            outputs.append((indices, _finish(raw, tuple(images[indices[0]].shape[-2:]), upsample, normalize)))
    return _assemble(outputs, len(images), loaded.single)


@dataclass(frozen=True)
class DenseTransform:
    """One image -> the normalised network input :func:`extract_dense_features` builds from it.

    Made by :func:`dense_transform`; picklable, so it can run in ``DataLoader`` workers.

    Attributes:
        mean: Per-channel mean subtracted from the [0, 1] image (the model's cfg).
        std: Per-channel std it is divided by.
        size: Exact (height, width) to resize to, or None.
        short_side: Shorter side to resize to, aspect ratio kept, or None; with ``size`` None too,
            the image keeps its own size.
    """

    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    size: Optional[Tuple[int, int]] = None
    short_side: Optional[int] = None

    def __post_init__(self) -> None:
        target_size(1, 1, self.size, self.short_side)  # refuse bad options here, not in a DataLoader worker

    def __call__(self, img: ImageInput) -> torch.Tensor:
        """Resize (never crop) and normalise one image.

        Args:
            img: One image of any kind :func:`extract_dense_features` accepts (PIL image, path, HxW or
                HxWxC array, HxW or CxHxW tensor), not a batch.

        Returns:
            A (3, H, W) float32 tensor: the (resized) image minus ``mean``, divided by ``std``.

        Raises:
            TypeError, ValueError, FileNotFoundError: As :func:`vader_hub.features.inputs.load_image`.
        """
        return self.normalize(self.resize(load_image(img))[None])[0]  # (3, H', W')

    def resize(self, image: torch.Tensor) -> torch.Tensor:
        """A (3, H, W) image in [0, 1] at the size the options give (see :func:`~.inputs.target_size`)."""
        return resize(image, target_size(*image.shape[-2:], self.size, self.short_side))  # (3, H', W')

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """A (B, 3, H, W) batch in [0, 1] (or uint8), normalised: ``(images - mean) / std``."""
        return normalize_images(images, {"mean": self.mean, "std": self.std})  # (B, 3, H, W)


def dense_transform(
    model: Union[nn.Module, Mapping[str, Any]],
    *,
    size: Optional[Tuple[int, int]] = None,
    short_side: Optional[int] = None,
) -> DenseTransform:
    """The feature API's preprocessing as a ``Dataset`` transform: resize without cropping, then normalise.

    Use it where ``timm.data.create_transform(**timm.data.resolve_data_config(model=model))`` would go:
    that is timm's classification transform, which centre-crops every image to 224x224 and so drops
    the border of every dense map. This one keeps every pixel, resizes (only if asked) with the feature
    API's antialiased bilinear filter, and normalises with the model's mean and std, giving exactly
    the network input of ``extract_dense_features(img, model, size=size, short_side=short_side)``.
    Unlike that call it does not pad images under the network's 32-pixel minimum.

    Args:
        model: A network (its ``pretrained_cfg``; ImageNet's mean and std for a module without one)
            or a cfg mapping such as ``model.pretrained_cfg``.
        size: Resize every image to this exact (height, width).
        short_side: Resize every image so its shorter side is this long, keeping the aspect ratio.

    Returns:
        A callable ``image -> (3, H, W) float32 tensor``.

    Raises:
        TypeError: If ``model`` is neither a module nor a mapping, or ``size`` is not a pair.
        ValueError: If both ``size`` and ``short_side`` are given, or one is not a positive integer.
    """
    mean, std = mean_and_std(pretrained_cfg_of(model))
    return DenseTransform(mean=mean, std=std, size=size, short_side=short_side)


def resolve_model(model: ModelInput, device: Union[None, str, torch.device] = None) -> Tuple[nn.Module, torch.device]:
    """The network and device :func:`extract_dense_features` runs on.

    Args:
        model: None (:func:`vader_hub.models.default_model_name`), a timm name (``"vader_r50_fpn"``,
            ``"vader_r50_fpn.<tag>"``), or an ``nn.Module``.
        device: The device asked for, or None.

    Returns:
        The module (a cached pretrained model for a name) and the device to run on.

    Raises:
        TypeError: If ``model`` is neither a name nor a module.
        ValueError: For an unknown name, an unavailable or unknown device, or a device unlike the module's.
    """
    requested = parse_device(device)
    if model is None or isinstance(model, str):
        run_device = requested or torch.device("cpu")
        return _named_model(model or default_model_name(), str(run_device)), run_device
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be None, a model name or an nn.Module, got {type(model).__name__}")
    parameter = next(model.parameters(), None)
    own_device = parameter.device if parameter is not None else torch.device("cpu")
    if requested is not None and (
        requested.type != own_device.type or requested.index not in (None, own_device.index)
    ):
        raise ValueError(
            f"the model is on {own_device} but device={str(requested)!r}; move it first (model.to(device)) "
            "or leave device=None to run where the model is"
        )
    return model, own_device


def parse_device(device: Union[None, str, torch.device]) -> Optional[torch.device]:
    """``device`` as a ``torch.device`` (None stays None).

    Raises:
        ValueError: For an unknown device string, or CUDA where it is not available.
    """
    if device is None:
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: {error}") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available here; use device='cpu'")
    return parsed


@functools.lru_cache(maxsize=2)
def _named_model(name: str, device: str) -> nn.Module:
    """Build a pretrained VADeR model once per (name, device); later calls reuse it."""
    check_model_name(name)
    return timm.create_model(name, pretrained=True).eval().to(device)


@contextlib.contextmanager
def _evaluation_mode(module: nn.Module) -> Iterator[None]:
    """Put a module in eval mode for a block, then restore every submodule's own training flag."""
    flags = [sub.training for sub in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for sub, flag in zip(module.modules(), flags, strict=True):
            sub.training = flag


def _batches_of_one_size(images: List[torch.Tensor], batch_size: int) -> List[List[int]]:
    """Indices of the images, grouped by size (in order of first appearance), in chunks of ``batch_size``."""
    groups: Dict[Tuple[int, int], List[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(tuple(image.shape[-2:]), []).append(index)
    return [
        group[start : start + batch_size] for group in groups.values() for start in range(0, len(group), batch_size)
    ]


def _forward(
    network: nn.Module, preprocess: DenseTransform, images: List[torch.Tensor], device: torch.device, autocast: bool
) -> torch.Tensor:
    """Normalise, pad to the network's minimum and run one batch of same-size images; raw (n, C, h, w)."""
    height, width = images[0].shape[-2:]
    batch = preprocess.normalize(torch.stack(images).to(device, non_blocking=True))  # (n, 3, H, W)
    minimum = pretrained_cfg_of(network).get("min_input_size", (3, MIN_INPUT_SIZE, MIN_INPUT_SIZE))[-1]
    pad_bottom, pad_right = max(minimum - height, 0), max(minimum - width, 0)
    if pad_bottom or pad_right:
        batch = F.pad(batch, (0, pad_right, 0, pad_bottom), mode="replicate")  # (n, 3, >=32, >=32)
    run = getattr(network, "forward_features", network)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        output = run(batch)  # (n, C, ceil(H'/4), ceil(W'/4))
    expected = output_size(*batch.shape[-2:], stride=STRIDE)
    if not isinstance(output, torch.Tensor) or output.dim() != 4 or tuple(output.shape[-2:]) != expected:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"the model maps a {tuple(batch.shape)} batch to {shape}, not a (B, C, {expected[0]}, {expected[1]}) "
            "stride-4 map; extract_dense_features needs a dense model such as vader_r50_fpn"
        )
    cells = output_size(height, width, stride=STRIDE)
    return output[..., : cells[0], : cells[1]]  # (n, C, ceil(H/4), ceil(W/4))


def _finish(raw: torch.Tensor, image_size: Tuple[int, int], upsample: bool, normalize: bool) -> torch.Tensor:
    """Upsample and L2-normalise outside inference mode, so the result is an ordinary float32 tensor."""
    with torch.no_grad():
        features = raw.float()
        if upsample:
            features = upsample_to_pixels(features, image_size, stride=STRIDE)  # (n, C, H, W)
        if normalize:
            features = F.normalize(features, dim=1)
        return features.clone() if features.is_inference() else features


def _assemble(
    outputs: List[Tuple[List[int], torch.Tensor]], count: int, single: bool
) -> Union[torch.Tensor, List[torch.Tensor]]:
    """Put the per-batch maps back in input order: one map, one (N, C, h, w) batch, or a list."""
    if single:
        return outputs[0][1][0]  # (C, h, w)
    if len(outputs) == 1:
        return outputs[0][1]  # one batch held every image: (N, C, h, w), no copy
    per_image: List[torch.Tensor] = [None] * count
    for indices, batch in outputs:
        for position, index in enumerate(indices):
            per_image[index] = batch[position]  # (C, h, w)
    if len({tuple(features.shape) for features in per_image}) == 1:
        return torch.stack(per_image)  # (N, C, h, w)
    return per_image


def _check_pixel_limit(images: List[torch.Tensor], max_pixels: int) -> None:
    for index, image in enumerate(images):
        check_pixel_limit(*image.shape[-2:], max_pixels, what=f"image {index}")

