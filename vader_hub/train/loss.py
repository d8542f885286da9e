"""The VADeR loss: InfoNCE per matched pixel against a queue of other images' key pixels.

For query pixel feature q (from the query encoder), its positive key k+ (the momentum encoder's
feature at the same scene point in the other view) and negatives n_j (queued key pixels of other
images), with all features L2-normalised and temperature t:

    loss(q) = -log( exp(q.k+ / t) / (exp(q.k+ / t) + sum_j exp(q.n_j / t)) )

(Pinheiro et al., "Unsupervised Learning of Dense Visual Representations", NeurIPS 2020, eq. 1,
with MoCo's queue). Queued keys of the query's own image are not negatives: on a small dataset an
image's older keys are still in the queue, and pushing them away would fight the positive.

Optionally (`key_points`, not in the paper), the current keys of the query's own view pair at
*other* scene points are negatives too: n_j also runs over k_{b,q} for the matched points q whose key
position is at least `min_distance` cells from the positive's. On a small dataset the paper's loss
is met by features that only tell images apart; these negatives ask for features that tell places
within an image apart, which is what matching needs.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class InfoNCEResult:
    """The loss and what the trainer logs about it.

    Attributes:
        loss: scalar, mean over all query pixels (differentiable).
        positive_similarity: scalar, mean cosine q.k+ (detached).
        negative_similarity: scalar, mean cosine q.n over every query's unmasked negatives (detached).
    """

    loss: torch.Tensor
    positive_similarity: torch.Tensor
    negative_similarity: torch.Tensor


def _check_inputs(queries: torch.Tensor, positive_keys: torch.Tensor, negatives: torch.Tensor,
                  image_ids: torch.Tensor, negative_ids: torch.Tensor, temperature: float) -> None:
    if queries.dim() != 3 or positive_keys.shape != queries.shape:
        raise ValueError(f"queries and positive_keys must both be (B, P, C), got {tuple(queries.shape)} "
                         f"and {tuple(positive_keys.shape)}")
    if negatives.dim() != 2 or negatives.shape[1] != queries.shape[2]:
        raise ValueError(f"negatives must be (K, C={queries.shape[2]}), got {tuple(negatives.shape)}")
    if image_ids.shape != queries.shape[:1] or negative_ids.shape != negatives.shape[:1]:
        raise ValueError(f"image_ids must be (B={queries.shape[0]},) and negative_ids (K={negatives.shape[0]},), "
                         f"got {tuple(image_ids.shape)} and {tuple(negative_ids.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def dense_info_nce(queries: torch.Tensor, positive_keys: torch.Tensor, negatives: torch.Tensor,
                   image_ids: torch.Tensor, negative_ids: torch.Tensor, temperature: float,
                   block_size: int | None = None, key_points: torch.Tensor | None = None,
                   min_distance: float = 2.0) -> InfoNCEResult:
    """InfoNCE over matched pixels, with same-image queued negatives masked out.

    Compute it outside autocast: the logits are formed in the inputs' dtype (float32 in the trainer).

    Args:
        queries: (B, P, C) L2-normalised query features, P matched pixels for each of B images.
        positive_keys: (B, P, C) L2-normalised key features at the matching points.
        negatives: (K, C) L2-normalised queued keys.
        image_ids: (B,) image id of each image's queries.
        negative_ids: (K,) image id of each queued key; -1 marks a key of no image (never masked).
        temperature: the softmax temperature (> 0).
        block_size: queued keys per block of logits (None: all at once on a GPU, cache-sized on a CPU).
        key_points: (B, P, 2) key-view cell positions of the positives; when given, the other
            positives of the same image at least `min_distance` cells away are negatives as well.
        min_distance: in key-view cells; nearer positives are neither positive nor negative.

    Returns:
        An `InfoNCEResult`.

    Raises:
        ValueError: for inconsistent shapes or a non-positive temperature.

    Example:
        >>> q = torch.nn.functional.normalize(torch.randn(2, 4, 8), dim=-1)
        >>> n = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
        >>> dense_info_nce(q, q, n, torch.tensor([0, 1]), torch.full((16,), -1), 0.07).loss.shape
        torch.Size([])
    """
    _check_inputs(queries, positive_keys, negatives, image_ids, negative_ids, temperature)
    scaled = queries / temperature  # (B, P, C): dividing the small side keeps the big logits single-pass
    positive_logits = (scaled * positive_keys).sum(-1)  # (B, P)
    own_image = negative_ids.unsqueeze(0) == image_ids.unsqueeze(1)  # (B, K)
    chunk = block_size or _block_size(queries, negatives.shape[0])
    partial_lse = [_negative_lse(scaled, negatives[start:start + chunk], own_image[:, start:start + chunk])
                   for start in range(0, negatives.shape[0], chunk)]
    negative_lse = torch.logsumexp(torch.stack(partial_lse, dim=-1), dim=-1)  # (B, P)
    if key_points is not None:
        negative_lse = torch.logaddexp(negative_lse, _in_image_lse(scaled, positive_keys, key_points, min_distance))
    loss = (torch.logaddexp(positive_logits, negative_lse) - positive_logits).mean()
    with torch.no_grad():
        positive_similarity = (queries * positive_keys).sum(-1).mean()
        negative_similarity = _mean_negative_similarity(queries, negatives, own_image)
    return InfoNCEResult(loss=loss, positive_similarity=positive_similarity,
                         negative_similarity=negative_similarity)


def _in_image_lse(scaled: torch.Tensor, keys: torch.Tensor, key_points: torch.Tensor,
                  min_distance: float) -> torch.Tensor:
    """log sum_q exp(q_p.k_q / t) over each image's own keys at least `min_distance` cells away: (B, P)."""
    # b: image, p: query's matched pixel, q: another matched pixel of the same image, c: channel
    logits = torch.einsum("bpc,bqc->bpq", scaled, keys)  # (B, P, P)
    near = torch.cdist(key_points.float(), key_points.float()) < min_distance  # (B, P, P), diagonal included
    return torch.logsumexp(logits.masked_fill(near, float("-inf")), dim=-1)  # (B, P)


def _block_size(queries: torch.Tensor, queue_size: int) -> int:
    """Queue keys per block of logits: all at once on a GPU; on a CPU, blocks of about 2M logits.

    A CPU streams a (B*P, K) logit matrix through memory several times (matmul, mask, max, exp);
    blocks that stay in cache halve the loss's forward and backward time at the default queue.
    """
    if queries.is_cuda:
        return queue_size
    return max(256, (1 << 21) // max(1, queries.shape[0] * queries.shape[1]))


def _negative_lse(scaled: torch.Tensor, negatives: torch.Tensor, own_image: torch.Tensor) -> torch.Tensor:
    """log sum_j exp(q.n_j / t) over one block of negatives, the query's own image masked: (B, P)."""
    # b: image, p: matched pixel of that image, k: queued key, c: channel
    logits = torch.einsum("bpc,kc->bpk", scaled, negatives)  # (B, P, k)
    # In place: neither the matmul nor masked_fill needs this tensor for its backward; a fully
    # masked row gives -inf here and a zero gradient through masked_fill's backward.
    logits.masked_fill_(own_image.unsqueeze(1), float("-inf"))
    return torch.logsumexp(logits, dim=-1)


def _mean_negative_similarity(queries: torch.Tensor, negatives: torch.Tensor, own_image: torch.Tensor) -> torch.Tensor:
    """Mean of q.n over each query's unmasked negatives, without a second (B, P, K) pass.

    The mean of dot products is the dot product with the mean, so each image needs only the sum of
    its unmasked negatives: the sum of all of them minus the sum of its own.
    """
    own_sums = own_image.to(negatives.dtype) @ negatives  # (B, C)
    unmasked_sums = negatives.sum(0, keepdim=True) - own_sums  # (B, C)
    counts = (own_image.shape[1] - own_image.sum(-1)).clamp_min(1).unsqueeze(-1)  # (B, 1)
    per_query = torch.einsum("bpc,bc->bp", queries, unmasked_sums / counts)  # (B, P)
    return per_query.mean()
