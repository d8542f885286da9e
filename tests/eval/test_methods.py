"""The compared methods: patch descriptors against a slow loop, seeded random inits, weights files."""
import sys

import numpy as np
import pytest
import timm
import torch

from vader_hub.eval.methods import (
    network_method,
    patch_descriptors,
    patch_method,
    random_init_method,
    sift_descriptors,
    sift_method,
    weights_method,
)
from vader_hub.weights.export import export_weights

ARCH = "vader_r18_fpn"


def slow_patch_descriptors(image: np.ndarray, size: int) -> np.ndarray:
    """Reference: for cell (i, j), the edge-padded patch centred on pixel (4i, 4j), mean/std normalised."""
    channels, height, width = image.shape
    half = size // 2
    padded = np.pad(image, ((0, 0), (half, half), (half, half)), mode="edge")
    rows, columns = -(-height // 4), -(-width // 4)
    out = np.zeros((channels * size * size, rows, columns))
    for i in range(rows):
        for j in range(columns):
            patch = padded[:, 4 * i : 4 * i + size, 4 * j : 4 * j + size].reshape(-1)
            centred = patch - patch.mean()
            out[:, i, j] = centred / (centred.std(ddof=1) + 1e-6)
    return out


def test_patch_descriptors_match_a_slow_loop():
    image = torch.rand(3, 21, 30, generator=torch.Generator().manual_seed(0))
    expected = slow_patch_descriptors(image.double().numpy(), 9)
    np.testing.assert_allclose(patch_descriptors(image, 9).numpy(), expected, atol=1e-4)


def test_patch_descriptors_ignore_brightness_and_contrast():
    image = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(1))
    changed = 0.5 * image + 0.2
    torch.testing.assert_close(patch_descriptors(changed), patch_descriptors(image), atol=1e-3, rtol=1e-3)


def test_random_init_variants_follow_their_seeds_and_leave_the_global_rng_alone():
    image = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(123)
    untouched = torch.rand(1)
    torch.manual_seed(123)
    method = random_init_method(ARCH, seeds=(0, 1))
    assert torch.equal(torch.rand(1), untouched)  # building the models drew nothing from the global RNG
    first, second = (describe([image])[0] for describe in method.variants)
    torch.manual_seed(0)
    reference = network_method(timm.create_model(ARCH), "seed 0").variants[0]([image])[0]
    assert torch.equal(first, reference)
    assert not torch.allclose(first, second)
    assert first.shape == (128, 10, 12)


def test_weights_file_method_loads_the_exported_network(tmp_path):
    torch.manual_seed(5)
    model = timm.create_model(ARCH)
    exported = export_weights(model.state_dict(), ARCH, tmp_path / "export")
    image = torch.rand(3, 36, 44, generator=torch.Generator().manual_seed(3))
    loaded = weights_method(exported.weights).variants[0]([image, image])
    direct = network_method(model, "direct").variants[0]([image])[0]
    torch.testing.assert_close(loaded[0], direct)
    torch.testing.assert_close(loaded[1], direct)


def test_bad_methods_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        weights_method(tmp_path / "missing.safetensors")
    (tmp_path / "x.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a safetensors"):
        weights_method(tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="odd"):
        patch_method(8)
    with pytest.raises(ValueError, match="seed"):
        random_init_method(ARCH, seeds=())


def test_dense_sift_is_opencv_sift_at_each_cell_centre_one_keypoint_at_a_time():
    cv2 = pytest.importorskip("cv2")
    image = torch.rand(3, 37, 50, generator=torch.Generator().manual_seed(4))
    dense = sift_descriptors(image, keypoint_size=12.0)
    assert dense.shape == (128, 10, 13)
    rgb = (image * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create()
    for i, j in [(0, 0), (3, 7), (9, 12), (5, 0)]:
        _, single = sift.compute(grey, [cv2.KeyPoint(4.0 * j, 4.0 * i, 12.0, 0.0)])
        np.testing.assert_allclose(dense[:, i, j].numpy(), single[0])


def test_dense_sift_method_without_opencv_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"vader-hub\[sift\]"):
        sift_method()
