"""Benchmark cases: the true positions agree with the pixels, and a known homography survives the resizes."""
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vader_hub.eval.cases import pair_case, resize_long_side, synthetic_case
from vader_hub.eval.pairs import load_pairs
from vader_hub.eval.warps import WarpRanges

NO_PHOTOMETRIC = WarpRanges(brightness=0.0, contrast=(1.0, 1.0), gamma=(1.0, 1.0), channel_gain=0.0, noise_std=0.0)
HOMOGRAPHY = np.array([[0.8, 0.12, 6.0], [-0.1, 0.85, 9.0], [2e-4, -1e-4, 1.0]])


def _smooth_photo(path, width, height, seed=0):
    noise = np.random.default_rng(seed).random((height // 10, width // 10, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    Image.fromarray((smooth * 255).round().astype(np.uint8)).save(path)
    return smooth


def _read_at(image, points):
    """Bilinear samples of a (3, H, W) image at (N, 2) (x, y) pixels -> (N, 3)."""
    height, width = image.shape[-2:]
    grid = 2 * points / torch.tensor([width - 1.0, height - 1.0]) - 1
    return F.grid_sample(image[None], grid[None, :, None].float(), align_corners=True)[0, :, :, 0].T


def test_synthetic_case_truth_points_at_the_same_pixels(tmp_path):
    _smooth_photo(tmp_path / "photo.png", 160, 120)
    case = synthetic_case(tmp_path / "photo.png", seed=0, long_side=96, ranges=NO_PHOTOMETRIC)
    assert case.image_a.shape == (3, 72, 96) and case.image_b.shape == (3, 72, 96)
    assert case.valid.float().mean() > 0.5
    seen_a = _read_at(case.image_a, case.queries[case.valid])
    seen_b = _read_at(case.image_b, case.truth[case.valid])
    assert (seen_a - seen_b).abs().mean() < 0.02


def test_synthetic_cases_are_fixed_by_the_seed(tmp_path):
    _smooth_photo(tmp_path / "photo.png", 80, 60)
    first = synthetic_case(tmp_path / "photo.png", seed=0, long_side=64)
    assert torch.equal(first.image_b, synthetic_case(tmp_path / "photo.png", seed=0, long_side=64).image_b)
    assert not torch.allclose(first.truth, synthetic_case(tmp_path / "photo.png", seed=1, long_side=64).truth)


def test_known_homography_survives_the_resizes(tmp_path):
    photo_a = _smooth_photo(tmp_path / "a.png", 160, 120)
    warped = cv2.warpPerspective(photo_a, HOMOGRAPHY, (140, 100), flags=cv2.INTER_LINEAR)
    Image.fromarray((warped * 255).round().astype(np.uint8)).save(tmp_path / "b.png")
    np.savetxt(tmp_path / "H", HOMOGRAPHY)
    (tmp_path / "pairs.json").write_text('[{"image_a": "a.png", "image_b": "b.png", "homography": "H"}]')
    (pair,) = load_pairs(tmp_path / "pairs.json")
    case = pair_case(pair, long_side=80, grid_step=8)
    assert case.image_a.shape == (3, 60, 80) and case.image_b.shape == (3, 57, 80)
    # Independent: resized A -> original A -> OpenCV's homography -> resized B (pixel centres at integers).
    original_a = (case.queries.double().numpy() + 0.5) * [160 / 80, 120 / 60] - 0.5
    original_b = cv2.perspectiveTransform(original_a[None], HOMOGRAPHY)[0]
    expected = (original_b + 0.5) * [80 / 140, 57 / 100] - 0.5
    np.testing.assert_allclose(case.truth.numpy(), expected, atol=1e-4)
    inside = (expected >= 0).all(1) & (expected[:, 0] <= 79) & (expected[:, 1] <= 56)
    assert case.valid.tolist() == inside.tolist()
    # And the pixels agree there.
    seen_a = _read_at(case.image_a, case.queries[case.valid])
    seen_b = _read_at(case.image_b, case.truth[case.valid])
    assert (seen_a - seen_b).abs().mean() < 0.03


def test_pair_whose_truth_leaves_image_b_is_refused(tmp_path):
    _smooth_photo(tmp_path / "a.png", 40, 40)
    _smooth_photo(tmp_path / "b.png", 40, 40)
    np.savetxt(tmp_path / "H", np.array([[1.0, 0, 500], [0, 1, 0], [0, 0, 1]]))
    (tmp_path / "pairs.json").write_text('[{"name": "off", "image_a": "a.png", "image_b": "b.png", "homography": "H"}]')
    with pytest.raises(ValueError, match="'off'.*no query point"):
        pair_case(load_pairs(tmp_path / "pairs.json")[0], long_side=40)


def test_resize_long_side_keeps_the_aspect():
    assert resize_long_side(torch.rand(3, 300, 451), 384).shape == (3, 255, 384)
    assert resize_long_side(torch.rand(3, 259, 194), 384).shape == (3, 384, 288)
