"""The dense InfoNCE loss against a slow reference written straight from the formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from vader_hub.train.loss import dense_info_nce


def slow_info_nce(queries, keys, negatives, image_ids, negative_ids, temperature):
    """-log(exp(q.k+/t) / (exp(q.k+/t) + sum over other images' negatives of exp(q.n/t))), averaged, in loops."""
    losses, positives, negative_sims = [], [], []
    for b in range(queries.shape[0]):
        for p in range(queries.shape[1]):
            q = queries[b, p].tolist()
            positive = sum(a * c for a, c in zip(q, keys[b, p].tolist(), strict=True))
            others = [sum(a * c for a, c in zip(q, n.tolist(), strict=True))
                      for n, owner in zip(negatives, negative_ids.tolist(), strict=True) if owner != int(image_ids[b])]
            denominator = math.exp(positive / temperature) + sum(math.exp(s / temperature) for s in others)
            losses.append(-math.log(math.exp(positive / temperature) / denominator))
            positives.append(positive)
            negative_sims.extend(others)
    return (sum(losses) / len(losses), sum(positives) / len(positives),
            sum(negative_sims) / len(negative_sims) if negative_sims else None)


def random_inputs(images=3, pixels=4, channels=8, queue=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    queries = F.normalize(torch.randn(images, pixels, channels, generator=generator, dtype=torch.float64), dim=-1)
    keys = F.normalize(queries + 0.5 * torch.randn(queries.shape, generator=generator, dtype=torch.float64), dim=-1)
    negatives = F.normalize(torch.randn(queue, channels, generator=generator, dtype=torch.float64), dim=-1)
    negative_ids = torch.randint(-1, images + 2, (queue,), generator=generator)
    return queries, keys, negatives, torch.arange(images), negative_ids


@pytest.mark.parametrize("temperature, block_size", [(0.07, None), (0.2, None), (1.0, None), (0.07, 3)])
def test_loss_equals_the_formula(temperature, block_size):
    inputs = random_inputs(seed=int(temperature * 100))
    result = dense_info_nce(*inputs, temperature, block_size=block_size)
    expected_loss, expected_positive, expected_negative = slow_info_nce(*inputs, temperature)
    assert result.loss.item() == pytest.approx(expected_loss, rel=1e-10)
    assert result.positive_similarity.item() == pytest.approx(expected_positive, rel=1e-10)
    # ours averages each query's mean over its unmasked negatives, the reference pools all pairs: the two
    # agree within one image (its queries share the same negatives), so compare image by image
    for b in range(3):
        single = [t[b:b + 1] for t in inputs[:2]] + [inputs[2], inputs[3][b:b + 1], inputs[4]]
        mean_negative = slow_info_nce(*single, temperature)[2]
        assert dense_info_nce(*single, temperature).negative_similarity.item() == pytest.approx(mean_negative,
                                                                                                  rel=1e-9)


def test_gradient_matches_finite_differences():
    queries, keys, negatives, ids, negative_ids = random_inputs(images=2, pixels=2, channels=4, queue=6, seed=3)
    negative_ids[:2] = ids[0]  # some masked entries, so the masked path is differentiated too
    queries.requires_grad_(True)
    for block_size in (None, 4):
        torch.autograd.gradcheck(
            lambda q, block_size=block_size: dense_info_nce(q, keys, negatives, ids, negative_ids, 0.1,
                                                            block_size=block_size).loss,
            (queries,))


def test_own_image_keys_are_never_negatives():
    queries, keys, negatives, _, negative_ids = random_inputs(seed=5)
    queries, keys, ids = queries[1:2], keys[1:2], torch.tensor([1])  # image 1's queries alone
    negative_ids[::2] = 1  # half the queue holds image 1's own (older) keys
    base = dense_info_nce(queries, keys, negatives, ids, negative_ids, 0.07).loss
    # making image 1's queued keys identical to its query would be a huge penalty if they counted
    poisoned = negatives.clone()
    poisoned[::2] = queries[0, 0]
    assert torch.equal(dense_info_nce(queries, keys, poisoned, ids, negative_ids, 0.07).loss, base)
    # but the same keys under another image's id do count
    relabelled = negative_ids.clone()
    relabelled[::2] = 7
    assert dense_info_nce(queries, keys, poisoned, ids, relabelled, 0.07).loss > base + 1


@pytest.mark.parametrize("block_size", [None, 6])
def test_a_query_whose_negatives_are_all_masked_has_zero_loss_and_finite_gradient(block_size):
    queries, keys, negatives, ids, _ = random_inputs(images=1, seed=2)
    queries.requires_grad_(True)
    result = dense_info_nce(queries, keys, negatives, ids, torch.zeros(20, dtype=torch.long), 0.07,
                            block_size=block_size)
    result.loss.backward()
    assert result.loss.item() == 0.0
    assert torch.isfinite(queries.grad).all()


def test_bad_inputs_are_refused_with_a_clear_message():
    queries, keys, negatives, ids, negative_ids = random_inputs()
    with pytest.raises(ValueError, match="queries and positive_keys"):
        dense_info_nce(queries, keys[:, :2], negatives, ids, negative_ids, 0.07)
    with pytest.raises(ValueError, match="negatives must be"):
        dense_info_nce(queries, keys, negatives[:, :3], ids, negative_ids, 0.07)
    with pytest.raises(ValueError, match="image_ids"):
        dense_info_nce(queries, keys, negatives, ids[:2], negative_ids, 0.07)
    with pytest.raises(ValueError, match="temperature"):
        dense_info_nce(queries, keys, negatives, ids, negative_ids, 0.0)


def slow_in_image_loss(queries, keys, negatives, image_ids, negative_ids, temperature, key_points, min_distance):
    """The formula with the same image's other keys at least min_distance cells away added to the negatives."""
    losses = []
    for b in range(queries.shape[0]):
        for p in range(queries.shape[1]):
            q = queries[b, p]
            positive = math.exp(float(q @ keys[b, p]) / temperature)
            queued = sum(math.exp(float(q @ n) / temperature)
                         for n, owner in zip(negatives, negative_ids.tolist(), strict=True)
                         if owner != int(image_ids[b]))
            own = sum(math.exp(float(q @ keys[b, other]) / temperature) for other in range(queries.shape[1])
                      if math.dist(key_points[b, p].tolist(), key_points[b, other].tolist()) >= min_distance)
            losses.append(-math.log(positive / (positive + queued + own)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("min_distance", [0.5, 2.0, 100.0])
def test_in_image_negatives_equal_the_formula(min_distance):
    inputs = random_inputs(images=3, pixels=5, seed=7)
    key_points = torch.rand(3, 5, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 6
    result = dense_info_nce(*inputs, 0.1, key_points=key_points, min_distance=min_distance)
    expected = slow_in_image_loss(*inputs, 0.1, key_points, min_distance)
    assert result.loss.item() == pytest.approx(expected, rel=1e-10)
    if min_distance == 100.0:  # no key is that far away: exactly the paper's loss
        assert result.loss.item() == pytest.approx(dense_info_nce(*inputs, 0.1).loss.item(), rel=1e-12)
