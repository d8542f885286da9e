"""Shared fixtures of the feature-API tests: one small random-weight model and test images."""
import numpy as np
import pytest
import timm
import torch

import vader_hub  # noqa: F401  (registers the VADeR models with timm)


@pytest.fixture(scope="session")
def r18() -> torch.nn.Module:
    """A random-weight vader_r18_fpn in eval mode (no download)."""
    torch.manual_seed(0)
    return timm.create_model("vader_r18_fpn").eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def random_photo(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    """A smooth-ish uint8 HxWxC image: blurred noise, so features are not all alike."""
    noise = rng.random((height // 4 + 2, width // 4 + 2, channels))
    upsampled = np.kron(noise, np.ones((4, 4, 1)))[:height, :width]
    return (255 * upsampled).round().astype(np.uint8)
