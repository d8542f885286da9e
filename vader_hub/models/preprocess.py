"""Turning pixels into network input: the model's own normalisation, written once.

Every caller (the feature API, the trainer, ``vader-hub info``) normalises with the mean and std of
the network's ``pretrained_cfg``, falling back to ImageNet's for a plain module without one.
"""
from typing import Any, Mapping, Optional

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD


def normalize_images(images: torch.Tensor, pretrained_cfg: Optional[Mapping[str, Any]] = None) -> torch.Tensor:
    """Normalise a batch of RGB images with a model's mean and std.

    Args:
        images: (B, 3, H, W), uint8 in 0..255 or floating point in [0, 1]; left unchanged.
        pretrained_cfg: The model's ``pretrained_cfg`` (its ``mean`` and ``std``); None for ImageNet's.

    Returns:
        A new (B, 3, H, W) float32 tensor on the images' device: ``(images - mean) / std``.
    """
    config = pretrained_cfg or {}
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    mean = torch.tensor(config.get("mean", IMAGENET_DEFAULT_MEAN), device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(config.get("std", IMAGENET_DEFAULT_STD), device=images.device).view(1, -1, 1, 1)
    pixels = images.to(torch.float32).div_(scale) if scale != 1.0 else images.to(torch.float32)  # (B, 3, H, W)
    return (pixels - mean).div_(std)  # (B, 3, H, W)
