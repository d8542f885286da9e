"""Matching and PCK against independent references: exhaustive per-pixel search, closed forms, chance."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vader_hub.eval.pixel_search import find_matches, pck, query_grid, sample_features
from vader_hub.eval.warps import WarpRanges, apply_homography, random_homography, view_rng
from vader_hub.models.cells import output_size, upsample_to_pixels


def encode_positions(points: torch.Tensor, extent: float) -> torch.Tensor:
    """Unit-free Fourier features of (x, y) positions, (..., 2) -> (20, ...): cosine peaks at equal positions."""
    parts = []
    for octave in range(5):
        frequency = 2 * math.pi * 2**octave / (4 * extent)
        for axis in range(2):
            parts += [torch.cos(frequency * points[..., axis]), torch.sin(frequency * points[..., axis])]
    return torch.stack(parts).float()


def cell_centres(height: int, width: int) -> torch.Tensor:
    """(h, w, 2) (x, y) pixels of the cells of an H x W image (cell (i, j) at pixel (4j, 4i))."""
    rows, columns = output_size(height, width)
    ys, xs = torch.meshgrid(torch.arange(rows) * 4.0, torch.arange(columns) * 4.0, indexing="ij")
    return torch.stack([xs, ys], dim=-1).double()


def coordinate_features(height, width, homography):
    """Maps of two views whose features encode the first view's coordinates exactly."""
    centres = cell_centres(height, width)
    features_a = encode_positions(centres, max(height, width))
    features_b = encode_positions(apply_homography(torch.linalg.inv(homography), centres), max(height, width))
    return features_a, features_b


def exhaustive_matches(features_a, features_b, queries, size_b):
    """Reference: every pixel of B through upsample_to_pixels, one argmax per query."""
    pixels = F.normalize(upsample_to_pixels(F.normalize(features_b, dim=0), size_b), dim=0).flatten(1)  # (C, H*W)
    query_features = F.normalize(sample_features(F.normalize(features_a, dim=0), queries), dim=1)
    best = (query_features @ pixels).argmax(dim=1)
    return torch.stack([best % size_b[1], best // size_b[1]], dim=1).float(), query_features @ pixels


def slow_pck(predictions, truth, valid, threshold):
    hits = total = 0
    for (px, py), (tx, ty), ok in zip(predictions.tolist(), truth.tolist(), valid.tolist(), strict=True):
        if ok:
            total += 1
            hits += math.sqrt((px - tx) ** 2 + (py - ty) ** 2) <= threshold
    return 100.0 * hits / total


def test_coordinate_features_give_full_pck_and_agree_with_exhaustive_search():
    height, width = 72, 100
    homography = random_homography(height, width, view_rng(0, "coords"), WarpRanges())
    features_a, features_b = coordinate_features(height, width, homography)
    queries = query_grid(height, width)
    truth = apply_homography(homography, queries)
    valid = ((truth >= 0) & (truth <= torch.tensor([width - 1.0, height - 1.0]))).all(dim=1)
    predictions = find_matches(features_a, features_b, queries, (height, width))
    assert pck(predictions, truth, valid, [2, 4, 8]) == {2: 100.0, 4: 100.0, 8: 100.0}
    assert (predictions - truth)[valid].norm(dim=1).mean() < 0.75  # integer pixels: rounding error only
    # Per-pixel features repeat past the last cell, so compare scores: ties may pick another pixel.
    _, scores = exhaustive_matches(features_a, features_b, queries, (height, width))
    picked = scores.gather(1, (predictions[:, 1] * width + predictions[:, 0]).long()[:, None])[:, 0]
    assert torch.allclose(picked[valid], scores.max(dim=1).values[valid], atol=1e-6)


def test_refinement_is_exact_within_the_window_of_the_best_cell():
    torch.manual_seed(0)
    height, width = 45, 61
    rows, columns = output_size(height, width)
    features_a = F.avg_pool2d(torch.randn(1, 16, rows, columns), 3, 1, 1)[0]
    features_b = F.avg_pool2d(torch.randn(1, 16, rows, columns), 3, 1, 1)[0]
    queries = torch.rand(200, 2) * torch.tensor([width - 1.0, height - 1.0])
    predictions = find_matches(features_a, features_b, queries, (height, width))
    _, scores = exhaustive_matches(features_a, features_b, queries, (height, width))  # (N, H*W)
    cells = F.normalize(features_b, dim=0).flatten(1)
    query_features = F.normalize(sample_features(F.normalize(features_a, dim=0), queries), dim=1)
    best_cell = (query_features @ cells).argmax(dim=1)
    centre_y, centre_x = 4 * (best_cell // columns), 4 * (best_cell % columns)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    agree = 0
    for n in range(len(queries)):
        window = ((ys - centre_y[n]).abs() <= 4) & ((xs - centre_x[n]).abs() <= 4)
        best = scores[n].reshape(height, width).masked_fill(~window, -2).argmax()
        picked = predictions[n].long()
        gap = scores[n, best] - scores[n, picked[1] * width + picked[0]]
        agree += int(gap <= 1e-5)
    assert agree == len(queries)


def test_shuffled_features_give_chance_level():
    height, width, threshold = 96, 128, 24
    homography = random_homography(height, width, view_rng(1, "chance"), WarpRanges())
    features_a, features_b = coordinate_features(height, width, homography)
    queries = query_grid(height, width, step=4)
    truth = apply_homography(homography, queries)
    valid = ((truth >= 0) & (truth <= torch.tensor([width - 1.0, height - 1.0]))).all(dim=1)
    # Chance: the share of B's pixels within the threshold of each true position, averaged.
    ys, xs = np.mgrid[0:height, 0:width]
    near = [((xs - x) ** 2 + (ys - y) ** 2 <= threshold**2).mean() for x, y in truth[valid].tolist()]
    chance = 100.0 * float(np.mean(near))
    scores = []
    for seed in range(4):
        order = torch.randperm(features_b[0].numel(), generator=torch.Generator().manual_seed(seed))
        shuffled = features_b.flatten(1)[:, order].reshape(features_b.shape)
        predictions = find_matches(features_a, shuffled, queries, (height, width))
        scores.append(pck(predictions, truth, valid, [threshold])[threshold])
    standard_error = math.sqrt(chance * (100 - chance) / (len(near) * len(scores)))
    assert abs(np.mean(scores) - chance) < 4 * standard_error
    assert chance < 30


def test_pck_matches_a_slow_loop():
    generator = torch.Generator().manual_seed(0)
    truth = torch.rand(300, 2, generator=generator) * 50
    predictions = truth + torch.randn(300, 2, generator=generator) * 4
    valid = torch.rand(300, generator=generator) > 0.2
    result = pck(predictions, truth, valid, [2, 4, 8])
    for threshold in (2, 4, 8):
        assert result[threshold] == pytest.approx(slow_pck(predictions, truth, valid, threshold))


def test_query_grid_and_sample_features_follow_the_cell_convention():
    grid = query_grid(20, 30, step=8)
    assert grid[:, 0].unique().tolist() == [4, 12, 20, 28] and grid[:, 1].unique().tolist() == [4, 12]
    features = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    at_cells = sample_features(features, torch.tensor([[4.0, 8.0], [0.0, 0.0], [6.0, 2.0], [40.0, 40.0]]))
    assert torch.allclose(at_cells[0], features[:, 2, 1])  # pixel (x=4, y=8) is cell (i=2, j=1)
    assert torch.allclose(at_cells[1], features[:, 0, 0])
    expected = features[:, :2, 1:3].mean(dim=(1, 2))  # halfway between four cells
    assert torch.allclose(at_cells[2], expected)
    assert torch.allclose(at_cells[3], features[:, 2, 3])  # past the border: the last cell repeats


def test_bad_inputs_are_refused():
    features = torch.randn(8, 4, 4)
    queries = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="same C"):
        find_matches(features, torch.randn(9, 4, 4), queries, (16, 16))
    with pytest.raises(ValueError, match="map"):
        find_matches(features, features, queries, (32, 32))
    with pytest.raises(ValueError, match="no valid query"):
        pck(queries, queries, torch.zeros(3, dtype=torch.bool), [2])


@pytest.mark.gpu
def test_matching_on_cuda_agrees_with_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    height, width = 72, 100
    homography = random_homography(height, width, view_rng(0, "coords"), WarpRanges())
    features_a, features_b = coordinate_features(height, width, homography)
    queries = query_grid(height, width)
    on_cpu = find_matches(features_a, features_b, queries, (height, width))
    on_gpu = find_matches(features_a.cuda(), features_b.cuda(), queries, (height, width))
    assert on_gpu.is_cuda
    assert (on_gpu.cpu() - on_cpu).norm(dim=1).max() <= 1.0
