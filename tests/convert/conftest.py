"""Fixtures for the converter tests: vader-hub networks whose every tensor is distinct and random."""
import pytest
import timm
import torch

import vader_hub  # noqa: F401  (registers the vader_* models with timm)

from .projects import randomize_


def _random_vader(architecture: str) -> torch.nn.Module:
    return randomize_(timm.create_model(architecture), seed=7).eval()


@pytest.fixture(scope="session")
def vader_r18() -> torch.nn.Module:
    """A vader_r18_fpn in eval mode with random weights and BN statistics; do not modify it."""
    return _random_vader("vader_r18_fpn")


@pytest.fixture(scope="session")
def vader_r50() -> torch.nn.Module:
    """A vader_r50_fpn in eval mode with random weights and BN statistics; do not modify it."""
    return _random_vader("vader_r50_fpn")
