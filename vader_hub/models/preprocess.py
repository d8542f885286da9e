"""Turning pixels into network input: the model's own normalisation, written once.

Every caller (the feature API and its dataset transform
:func:`vader_hub.features.extract.dense_transform`, the trainer, ``vader-hub info``) normalises with
the mean and std of the network's ``pretrained_cfg``, falling back to ImageNet's for a plain module
without one.
"""
from typing import Any, Mapping, Optional, Tuple, Union

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn


def pretrained_cfg_of(model: Union[None, nn.Module, Mapping[str, Any]]) -> Mapping[str, Any]:
    """The pretrained cfg that preprocessing reads for a network.

    Args:
        model: A network (its ``pretrained_cfg``; a plain module has none), a cfg mapping such as
            ``model.pretrained_cfg`` (returned as it is), or None.

    Returns:
        The cfg; an empty mapping (so ImageNet's mean and std) for None or a module without one.

    Raises:
        TypeError: If ``model`` is neither a module nor a mapping.
    """
    if model is None:
        return {}
    if isinstance(model, nn.Module):
        return getattr(model, "pretrained_cfg", None) or {}
    if isinstance(model, Mapping):
        return model
    raise TypeError(
        f"expected a model (nn.Module) or its pretrained_cfg (a mapping with 'mean' and 'std'), "
        f"got {type(model).__name__}"
    )


def mean_and_std(pretrained_cfg: Optional[Mapping[str, Any]] = None) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """The per-channel mean and std a network's inputs are normalised with.

    Args:
        pretrained_cfg: The model's ``pretrained_cfg``; None (or a cfg without them) for ImageNet's.

    Returns:
        ``(mean, std)`` as tuples of floats, one per channel.
    """
    config = pretrained_cfg or {}
    mean = config.get("mean", IMAGENET_DEFAULT_MEAN)
    std = config.get("std", IMAGENET_DEFAULT_STD)
    return tuple(float(value) for value in mean), tuple(float(value) for value in std)


def normalize_images(images: torch.Tensor, pretrained_cfg: Optional[Mapping[str, Any]] = None) -> torch.Tensor:
    """Normalise a batch of RGB images with a model's mean and std.

    Args:
        images: (B, 3, H, W), uint8 in 0..255 or floating point in [0, 1]; left unchanged.
        pretrained_cfg: The model's ``pretrained_cfg`` (its ``mean`` and ``std``); None for ImageNet's.

    Returns:
        A new (B, 3, H, W) float32 tensor on the images' device: ``(images - mean) / std``.
    """
    channel_mean, channel_std = mean_and_std(pretrained_cfg)
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    mean = torch.tensor(channel_mean, device=images.device).view(1, -1, 1, 1)  # (1, 3, 1, 1)
    std = torch.tensor(channel_std, device=images.device).view(1, -1, 1, 1)  # (1, 3, 1, 1)
    pixels = images.to(torch.float32).div_(scale) if scale != 1.0 else images.to(torch.float32)  # (B, 3, H, W)
    return (pixels - mean).div_(std)  # (B, 3, H, W)
