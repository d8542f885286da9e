"""Matching against a brute-force loop, the cell convention, and clear errors."""
import pytest
import torch

from vader_hub.features import matching
from vader_hub.features.matching import Matches, match_features, match_features_dense, rescale_points

MATCHERS = {"mutual": match_features, "dense": match_features_dense}


def brute_force(feats_a: torch.Tensor, feats_b: torch.Tensor, mode: str, stride: int) -> dict:
    """Reference: loop over every cell of A, then every cell of B, with plain Python cosines."""
    channels, height_a, width_a = feats_a.shape
    _, height_b, width_b = feats_b.shape
    cells_a = [(i, j, feats_a[:, i, j] / feats_a[:, i, j].norm()) for i in range(height_a) for j in range(width_a)]
    cells_b = [(i, j, feats_b[:, i, j] / feats_b[:, i, j].norm()) for i in range(height_b) for j in range(width_b)]

    def nearest(vector, cells):
        scores = [float(vector @ other) for _, _, other in cells]
        best = max(range(len(scores)), key=lambda k: scores[k])
        return best, scores[best]

    pairs = {}
    for index_a, (i, j, vector) in enumerate(cells_a):
        index_b, score = nearest(vector, cells_b)
        if mode == "mutual" and nearest(cells_b[index_b][2], cells_a)[0] != index_a:
            continue
        row_b, column_b, _ = cells_b[index_b]
        pairs[(stride * j, stride * i)] = ((stride * column_b, stride * row_b), score)
    return pairs


def as_dict(matches: Matches) -> dict:
    return {
        tuple(a): (tuple(b), score)
        for a, b, score in zip(
            matches.points_a.tolist(), matches.points_b.tolist(), matches.scores.tolist(), strict=True
        )
    }


@pytest.mark.parametrize("mode", ["mutual", "dense"])
@pytest.mark.parametrize("stride", [4, 1])
def test_matches_equal_a_brute_force_loop(mode, stride):
    generator = torch.Generator().manual_seed(3)
    feats_a, feats_b = torch.randn(8, 5, 7, generator=generator), torch.randn(8, 6, 4, generator=generator)
    matches = MATCHERS[mode](feats_a, feats_b, stride=stride)
    expected = brute_force(feats_a, feats_b, mode, stride)
    actual = as_dict(matches)
    assert actual.keys() == expected.keys()
    for point, (target, score) in expected.items():
        assert actual[point][0] == target
        assert actual[point][1] == pytest.approx(score, abs=1e-5)
    assert len(matches) == len(expected) > 0
    assert torch.all(matches.scores[:-1] >= matches.scores[1:])
    if mode == "dense":
        assert len(matches) == 5 * 7


def test_block_processing_equals_one_block(monkeypatch):
    generator = torch.Generator().manual_seed(4)
    feats_a, feats_b = torch.randn(16, 9, 11, generator=generator), torch.randn(16, 10, 8, generator=generator)
    whole = match_features(feats_a, feats_b)
    monkeypatch.setattr(matching, "_SIMILARITY_BLOCK_ELEMENTS", 80)  # blocks of one row of A
    blocked = match_features(feats_a, feats_b)
    assert len(blocked) == len(whole) > 0
    torch.testing.assert_close(blocked.points_a, whole.points_a)
    torch.testing.assert_close(blocked.points_b, whole.points_b)
    torch.testing.assert_close(blocked.scores, whole.scores)


def test_shifted_map_matches_at_the_shift_in_pixels():
    generator = torch.Generator().manual_seed(5)
    feats_a = torch.randn(32, 12, 14, generator=generator)
    feats_b = feats_a[:, 2:, 3:]  # B's cell (i, j) is A's cell (i + 2, j + 3)
    matches = match_features(feats_a, feats_b)
    assert len(matches) == 10 * 11
    torch.testing.assert_close(matches.points_a - matches.points_b, torch.tensor([[12.0, 8.0]]).expand(110, 2))
    torch.testing.assert_close(matches.scores, torch.ones(110))


def test_min_score_filters():
    generator = torch.Generator().manual_seed(6)
    feats_a, feats_b = torch.randn(4, 6, 6, generator=generator), torch.randn(4, 6, 6, generator=generator)
    everything = match_features_dense(feats_a, feats_b)
    threshold = everything.scores.median().item()
    kept = match_features_dense(feats_a, feats_b, min_score=threshold)
    assert len(kept) == int((everything.scores >= threshold).sum()) and torch.all(kept.scores >= threshold)


@pytest.mark.parametrize("match", MATCHERS.values(), ids=MATCHERS.keys())
def test_bad_arguments(match):
    good = torch.randn(8, 3, 3)
    with pytest.raises(ValueError, match="stride must be a positive integer, got 0"):
        match(good, good, stride=0)
    with pytest.raises(ValueError, match=r"index the batch first"):
        match(good[None], good)
    with pytest.raises(ValueError, match="channels"):
        match(good, torch.randn(4, 3, 3))
    with pytest.raises(ValueError, match="empty"):
        match(good, torch.randn(8, 0, 3))
    with pytest.raises(TypeError, match="floating-point"):
        match(good.numpy(), good)
    with pytest.raises(TypeError, match="floating-point"):
        match(good.long(), good)


def test_rescale_points_keeps_pixel_centres():
    points = torch.tensor([[0.0, 0.0], [3.0, 1.0]])
    # Doubling a 2x4 image: pixel 0 covers [-0.5, 0.5], which becomes [-0.5, 1.5], centred on 0.5.
    torch.testing.assert_close(rescale_points(points, (2, 4), (4, 8)), torch.tensor([[0.5, 0.5], [6.5, 2.5]]))
    there_and_back = rescale_points(rescale_points(points, (2, 4), (7, 13)), (7, 13), (2, 4))
    torch.testing.assert_close(there_and_back, points)
