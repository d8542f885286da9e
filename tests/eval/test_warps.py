"""Synthetic views against OpenCV: the homography fit, point mapping and image warp; seeds and ranges."""
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vader_hub.eval.warps import (
    WarpRanges,
    photometric_change,
    random_homography,
    synthetic_view,
    view_rng,
    warp_image,
)
from vader_hub.geometry import apply_homography

NO_PHOTOMETRIC = WarpRanges(brightness=0.0, contrast=(1.0, 1.0), gamma=(1.0, 1.0), channel_gain=0.0, noise_std=0.0)


def _smooth_image(height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, height // 8, width // 8, generator=generator)
    return F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def test_warp_image_matches_opencv_where_the_source_is_inside():
    image = _smooth_image(48, 64)
    homography = random_homography(48, 64, view_rng(0, "photo.png"), WarpRanges())
    warped = warp_image(image, homography, (48, 64)).permute(1, 2, 0).numpy()  # (H, W, 3)
    expected = cv2.warpPerspective(image.permute(1, 2, 0).numpy(), homography.numpy(), (64, 48), flags=cv2.INTER_LINEAR)
    ys, xs = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    source = apply_homography(torch.linalg.inv(homography), torch.stack([xs, ys], -1).double())
    inside = ((source >= 1) & (source <= torch.tensor([62.0, 46.0], dtype=torch.float64))).all(-1).numpy()
    assert inside.sum() > 1000
    assert np.abs(warped[inside] - expected[inside]).max() < 1e-3


def test_view_keeps_pixels_at_their_true_positions():
    image = _smooth_image(64, 96, seed=1)
    view = synthetic_view(image, view_rng(0, "x.jpg"), NO_PHOTOMETRIC)
    points = torch.tensor([[x, y] for x in range(8, 96, 16) for y in range(8, 64, 16)], dtype=torch.float64)
    mapped = apply_homography(view.homography, points)
    inside = ((mapped >= 0) & (mapped <= torch.tensor([95.0, 63.0], dtype=torch.float64))).all(dim=1)
    assert inside.sum() >= 10
    for (x, y), (u, v) in zip(points[inside].tolist(), mapped[inside].tolist(), strict=True):
        # Round trip: reading the view at the mapped position gives the photo at the original pixel.
        seen = F.grid_sample(view.image[None], torch.tensor([[[[2 * u / 95 - 1, 2 * v / 63 - 1]]]]).float(),
                             align_corners=True)[0, :, 0, 0]
        assert torch.allclose(seen, image[:, int(y), int(x)], atol=0.02)


def test_views_depend_on_seed_and_name_only():
    first = random_homography(50, 70, view_rng(0, "a.jpg"), WarpRanges())
    assert torch.equal(first, random_homography(50, 70, view_rng(0, "a.jpg"), WarpRanges()))
    assert not torch.allclose(first, random_homography(50, 70, view_rng(1, "a.jpg"), WarpRanges()))
    assert not torch.allclose(first, random_homography(50, 70, view_rng(0, "b.jpg"), WarpRanges()))


def test_corners_move_within_the_documented_ranges():
    ranges = WarpRanges()
    height, width = 300, 400
    corners = torch.tensor([[0, 0], [399, 0], [399, 299], [0, 299]], dtype=torch.float64)
    centre = torch.tensor([199.5, 149.5], dtype=torch.float64)
    # Bound: zoom and rotation of the farthest corner, plus translation and jitter on each axis.
    reach = (corners - centre).norm(dim=1).max()
    rotation = math.radians(ranges.rotation_deg)
    bound = reach * math.hypot(ranges.scale[1] * math.cos(rotation) - 1, ranges.scale[1] * math.sin(rotation))
    bound += math.hypot(width, height) * (ranges.translation + ranges.perspective)
    for seed in range(20):
        homography = random_homography(height, width, view_rng(seed, "p"), ranges)
        moved = apply_homography(homography, corners)
        assert (moved - corners).norm(dim=1).max() <= bound
    assert (moved - corners).norm(dim=1).max() > 5  # it does move


def test_photometric_change_stays_in_range_and_is_identity_when_ranges_are_zero():
    image = _smooth_image(32, 32)
    assert torch.allclose(photometric_change(image, view_rng(0, "a"), NO_PHOTOMETRIC), image, atol=1e-6)
    changed = photometric_change(image, view_rng(0, "a"), WarpRanges())
    assert changed.min() >= 0 and changed.max() <= 1
    assert (changed - image).abs().mean() > 0.01
