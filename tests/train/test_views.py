"""Views: every sampled pair of cells shows the same source point, for every kind of geometry.

The check renders both views of an image whose pixels hold their own (x, y) source coordinates,
reads the query view at the cell's pixel (4i, 4j), interpolates the key view at the key point
(4x, 4y), and compares the two coordinates read. Bilinear rendering reproduces a linear ramp
exactly, and for crop, flip and affine views the view is an affine function of view coordinates,
so interpolating it is exact too: tolerance 1e-4 px (float32 cell coordinates from the cell
helpers). A homography's view is not affine between pixel centres; its tolerance is 0.02 px.
"""

import dataclasses

import pytest
import torch

from vader_hub.train.config import TrainConfig
from vader_hub.train.views import (
    crop_matrix,
    match_cells,
    photometric_augment,
    render_views,
    sample_view_pair,
    unit_square_to_view_matrix,
)

SOURCE_HW = (180, 240)
GEOMETRIES = {
    "crop": (dict(flip_prob=0.0), 1e-4),
    "flip": (dict(flip_prob=1.0), 1e-4),
    "affine": (dict(flip_prob=0.5, max_rotation_degrees=30.0, max_shear_degrees=10.0), 1e-4),
    "homography": (dict(flip_prob=0.5, homography_strength=0.15), 2e-2),
}


def coordinate_image(height: int, width: int) -> torch.Tensor:
    """(2, H, W) float64: channel 0 holds x, channel 1 holds y of each pixel centre."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs, ys])


def bilinear_at(image: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Plain bilinear interpolation of (C, H, W) at pixel (x, y), written out by hand."""
    x0, y0 = int(x // 1), int(y // 1)
    x1, y1 = min(x0 + 1, image.shape[2] - 1), min(y0 + 1, image.shape[1] - 1)
    fx, fy = x - x0, y - y0
    top = image[:, y0, x0] * (1 - fx) + image[:, y0, x1] * fx
    bottom = image[:, y1, x0] * (1 - fx) + image[:, y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def pair_errors(config: TrainConfig, seed: int, key_offset: float = 0.0) -> tuple[torch.Tensor, bool]:
    """Source-coordinate disagreement (px) of every sampled pair of one view pair, and whether it fell back."""
    generator = torch.Generator().manual_seed(seed)
    pair = sample_view_pair(SOURCE_HW, config, generator)
    views = render_views(coordinate_image(*SOURCE_HW), torch.stack([pair.query_matrix, pair.key_matrix]),
                         config.image_size)
    width = -(-config.image_size // 4)
    errors = []
    for cell, (key_x, key_y) in zip(pair.query_cells.tolist(), pair.key_points.tolist(), strict=True):
        row, col = divmod(cell, width)
        seen_by_query = views[0][:, 4 * row, 4 * col]
        seen_by_key = bilinear_at(views[1], 4 * key_x + key_offset, 4 * key_y)
        errors.append((seen_by_query - seen_by_key).abs().max())
    return torch.stack(errors), pair.fallback


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
def test_every_pair_sees_the_same_source_point(kind):
    overrides, tolerance = GEOMETRIES[kind]
    config = TrainConfig(image_size=64, **overrides)
    for seed in range(8):
        errors, _ = pair_errors(config, seed)
        assert len(errors) == config.pairs_per_image
        assert errors.max() < tolerance, f"{kind} seed {seed}: max error {errors.max():.2e} px"


def test_a_shifted_key_point_is_caught():
    config = TrainConfig(image_size=64, flip_prob=0.0)
    errors, _ = pair_errors(config, seed=0, key_offset=1.0)  # one pixel off in the key view
    assert errors.max() > 0.1


def test_disjoint_views_fall_back_to_a_guaranteed_overlap_that_is_still_exact():
    # crops of 0.5% of the image almost never share 32 cells: the fallback must take over
    config = TrainConfig(image_size=64, crop_scale_min=0.004, crop_scale_max=0.005, max_view_attempts=3)
    fallbacks = 0
    for seed in range(4):
        errors, fallback = pair_errors(config, seed)
        fallbacks += fallback
        assert errors.max() < 1e-4
    assert fallbacks >= 3


def test_sampling_is_bounded_and_pairs_are_distinct_cells():
    config = TrainConfig(image_size=64, max_rotation_degrees=45.0, homography_strength=0.2, max_view_attempts=4)
    for seed in range(10):
        pair = sample_view_pair(SOURCE_HW, config, torch.Generator().manual_seed(seed))
        assert pair.attempts <= config.max_view_attempts
        assert len(set(pair.query_cells.tolist())) == config.pairs_per_image


def test_match_cells_counts_the_overlap_of_two_known_crops():
    # Crops [0, 96) and [32, 128) of a 96 x 128 source, shown at 64 px (1.5 source px per view px).
    # Query cell column j sits on source x = 1.5 * (4j + 0.5) - 0.5 = 6j + 0.25; the key view's cells
    # cover source x from 32.25 (its cell 0) to 122.25 (its cell 15): columns 6..15 match, all 16 rows.
    size = 64
    left = crop_matrix(0, 0, 96, 96) @ unit_square_to_view_matrix(size, flip=False)
    right = crop_matrix(32, 0, 96, 96) @ unit_square_to_view_matrix(size, flip=False)
    matches = match_cells(left, right, (96, 128), size)
    assert sorted({cell % 16 for cell in matches.query_cells.tolist()}) == list(range(6, 16))
    assert len(matches.query_cells) == 10 * 16
    # key x of column j: (6j + 0.25 - 32 + 0.5) / 1.5 - 0.5, in cells: / 4
    columns = (matches.query_cells % 16).double()
    assert torch.allclose(matches.key_points[:, 0], ((6 * columns + 0.25 - 31.5) / 1.5 - 0.5) / 4, atol=1e-5)


def test_an_identity_crop_renders_the_source_exactly():
    source = torch.rand(3, 40, 40, dtype=torch.float64)
    matrix = crop_matrix(0, 0, 40, 40) @ unit_square_to_view_matrix(40, flip=False)
    assert torch.allclose(render_views(source, matrix.unsqueeze(0), 40)[0], source, atol=1e-12)


def test_photometric_augment_is_seeded_in_range_and_identity_when_off():
    view = torch.rand(3, 32, 32)
    config = TrainConfig(image_size=32, noise_prob=1.0, blur_prob=1.0, jitter_prob=1.0)
    first = photometric_augment(view, config, torch.Generator().manual_seed(3))
    again = photometric_augment(view, config, torch.Generator().manual_seed(3))
    other = photometric_augment(view, config, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == view.shape and first.min() >= 0 and first.max() <= 1
    off = dataclasses.replace(config, jitter_prob=0.0, greyscale_prob=0.0, blur_prob=0.0, noise_prob=0.0)
    assert torch.equal(photometric_augment(view, off, torch.Generator().manual_seed(3)), view)


def test_greyscale_makes_the_channels_equal():
    config = TrainConfig(image_size=32, jitter_prob=0.0, greyscale_prob=1.0, blur_prob=0.0, noise_prob=0.0)
    out = photometric_augment(torch.rand(3, 32, 32), config, torch.Generator().manual_seed(0))
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
