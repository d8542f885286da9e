"""Shared fixtures: small real photos from vader_hub/assets, normalised for the VADeR models."""
import numpy as np
import pytest
import torch

from vader_hub.info import bundled_photo


@pytest.fixture(scope="session")
def astronaut() -> torch.Tensor:
    """The bundled astronaut photo (256x256), ImageNet-normalised, (1, 3, 256, 256)."""
    x = torch.from_numpy(np.asarray(bundled_photo("astronaut.jpg")).copy()).permute(2, 0, 1).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)
