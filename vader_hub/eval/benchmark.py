"""The dense-correspondence benchmark: every method on every case (:mod:`.cases`), PCK per image.

Each method finds each query's match over the whole second image (:func:`.pixel_search.find_matches`);
PCK at each threshold is the percentage of counted queries matched within that many pixels at the
evaluation resolution; a method with several variants (random-init seeds) scores their mean. See
``docs/eval.md``.
"""
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from tqdm.auto import tqdm

from ..models import MIN_INPUT_SIZE
from .cases import GRID_STEP, LONG_SIDE, Case, pair_case, synthetic_case
from .methods import Method
from .pairs import GroundTruthPair
from .pixel_search import find_matches, pck
from .report import CaseResult, EvalReport, MatchExample
from .warps import DEFAULT_RANGES, WarpRanges

THRESHOLDS = (2, 4, 8)


def evaluate(
    methods: Sequence[Method],
    photos: Sequence[Union[str, Path]] = (),
    *,
    pairs: Sequence[GroundTruthPair] = (),
    seed: int = 0,
    long_side: int = LONG_SIDE,
    grid_step: int = GRID_STEP,
    thresholds: Sequence[float] = THRESHOLDS,
    ranges: WarpRanges = DEFAULT_RANGES,
    progress: bool = False,
) -> EvalReport:
    """Run every method on the synthetic warps of ``photos`` and on the real ``pairs``.

    Args:
        methods: The methods to compare (see :mod:`.methods`), with distinct names.
        photos: Photos for the synthetic-warp benchmark (e.g. the ``eval`` side of :func:`.split.split_photos`).
        pairs: Real pairs with ground truth (:func:`.pairs.load_pairs`).
        seed: Seed of the synthetic views.
        long_side: Every image is resized so its longer side has this many pixels; PCK is in these pixels.
        grid_step: Spacing of the query grid in pixels.
        thresholds: PCK thresholds in pixels.
        ranges: Ranges of the synthetic views.
        progress: Show a progress bar.

    Returns:
        The :class:`.report.EvalReport`; its ``example`` keeps the first case's matches for the picture.

    Raises:
        ValueError: For no methods, duplicate method names, no photos and no pairs, or a bad setting.
    """
    _check_settings(methods, photos, pairs, long_side, grid_step, thresholds)
    settings = dict(
        seed=seed, long_side=long_side, grid_step=grid_step, thresholds=list(thresholds), warp_ranges=asdict(ranges),
        photos=[Path(p).name for p in photos], pairs=[p.name for p in pairs],
    )
    results: List[CaseResult] = []
    example: Optional[MatchExample] = None
    cases = _cases(photos, pairs, seed=seed, long_side=long_side, grid_step=grid_step, ranges=ranges)
    for case in tqdm(cases, total=len(photos) + len(pairs), desc="eval", unit="image", disable=not progress):
        predictions = {}
        for method in methods:
            result, predictions[method.name] = _run(method, case, thresholds)
            results.append(result)
        if example is None:
            example = MatchExample(case=case, predictions=predictions)
    return EvalReport([m.name for m in methods], tuple(thresholds), settings, results, example)


def _run(method: Method, case: Case, thresholds: Sequence[float]) -> Tuple[CaseResult, torch.Tensor]:
    """One method on one case: the mean PCK over its variants, and the first variant's matches."""
    start = time.perf_counter()
    variant_pck, first = [], None
    for describe in method.variants:
        features_a, features_b = describe([case.image_a, case.image_b])
        predictions = find_matches(features_a, features_b, case.queries, tuple(case.image_b.shape[-2:])).cpu()
        variant_pck.append(pck(predictions, case.truth, case.valid, thresholds))
        first = predictions if first is None else first
    mean = {t: sum(v[t] for v in variant_pck) / len(variant_pck) for t in thresholds}
    result = CaseResult(
        case=case.name, kind=case.kind, method=method.name, pck=mean, variant_pck=variant_pck,
        queries=len(case.queries), valid=int(case.valid.sum()), seconds=time.perf_counter() - start,
    )
    return result, first


def _cases(photos, pairs, *, seed, long_side, grid_step, ranges) -> Iterator[Case]:
    """Cases one at a time, so only one pair of images is in memory."""
    for photo in photos:
        yield synthetic_case(photo, seed=seed, long_side=long_side, grid_step=grid_step, ranges=ranges)
    for pair in pairs:
        yield pair_case(pair, long_side=long_side, grid_step=grid_step)


def _check_settings(methods, photos, pairs, long_side, grid_step, thresholds) -> None:
    names = [m.name for m in methods]
    if not names:
        raise ValueError("no methods to evaluate; pass at least one Method")
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be distinct, got {names}")
    if not photos and not pairs:
        raise ValueError("nothing to evaluate on: pass photos (synthetic warps) and/or pairs (real ground truth)")
    if long_side < MIN_INPUT_SIZE:
        raise ValueError(f"long_side must be at least {MIN_INPUT_SIZE} px, got {long_side}")
    if grid_step < 1:
        raise ValueError(f"grid_step must be a positive number of pixels, got {grid_step}")
    if not thresholds or min(thresholds) <= 0:
        raise ValueError(f"thresholds must be positive pixel distances, got {list(thresholds)}")
