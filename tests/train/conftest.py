"""Fixtures for the trainer's tests: a folder of small real photos and a tiny training config."""

import dataclasses

import numpy as np
import pytest
import skimage.data
from PIL import Image

from vader_hub.train.config import preset

# scikit-image's bundled photos (no download), each saved at a small size: 16 images, 2 smoke batches.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "colorwheel", "camera", "coins", "moon", "page", "text", "clock", "grass", "brick")


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory):
    """A folder of 16 photos (short side 96 px) in two sub-folders, JPEG and PNG."""
    root = tmp_path_factory.mktemp("photos")
    for index, name in enumerate(PHOTOS):
        pixels = getattr(skimage.data, name)()
        image = Image.fromarray(np.asarray(pixels)).convert("RGB")
        scale = 96 / min(image.size)
        image = image.resize((round(image.size[0] * scale), round(image.size[1] * scale)), Image.BILINEAR)
        folder = root / ("a" if index % 2 else "b")
        folder.mkdir(exist_ok=True)
        image.save(folder / f"{name}.{'jpg' if index % 3 else 'png'}")
    return root


@pytest.fixture
def tiny_config(photo_dir, tmp_path):
    """The smallest useful run: vader_r18_fpn, 64 px views, batch 4 in BN groups of 2, a 64-key queue."""
    return dataclasses.replace(preset("smoke"), data=str(photo_dir), out_dir=str(tmp_path / "run"), batch_size=4,
                               bn_group_size=2, steps=4, queue_size=64, queue_keys_per_image=2, pairs_per_image=16,
                               min_overlap_cells=16, checkpoint_every=2, export=False, source_short_side=72)
