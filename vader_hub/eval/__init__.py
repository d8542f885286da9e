"""Dense-correspondence evaluation: PCK of nearest-neighbour matches on synthetic warps and real pairs.

    >>> from vader_hub.eval import evaluate, split_photos, list_photos, weights_method, random_init_method, patch_method
    >>> photos = split_photos(list_photos("/tmp/photos")).eval   # rules=load_split_rules(...): a photo set's groups
    >>> methods = [weights_method("model.safetensors"), random_init_method("vader_r18_fpn"), sift_method()]
    >>> report = evaluate(methods, photos, seed=0)
    >>> report.mean("model.safetensors")          # {2: ..., 4: ..., 8: ...}, PCK in %

The command line is ``vader-hub eval`` (:mod:`vader_hub.cli.eval`); the protocol is in ``docs/eval.md``.
"""
from .benchmark import THRESHOLDS, evaluate
from .cases import Case, pair_case, synthetic_case
from .groundtruth import read_disparity, read_flow, read_homography
from .methods import Method, network_method, patch_method, random_init_method, sift_method, weights_method
from .pairs import Disparity, Flow, GroundTruthPair, Homography, load_pairs
from .report import EvalReport, match_picture, to_markdown, write_report
from .split import Split, SplitRules, list_photos, load_split_rules, split_photos
from .warps import WarpRanges

__all__ = [
    "THRESHOLDS", "Case", "Disparity", "EvalReport", "Flow", "GroundTruthPair", "Homography", "Method", "Split",
    "SplitRules", "WarpRanges", "evaluate", "list_photos", "load_pairs", "load_split_rules", "match_picture",
    "network_method", "pair_case", "patch_method", "random_init_method", "read_disparity", "read_flow",
    "read_homography", "sift_method", "split_photos", "synthetic_case", "to_markdown", "weights_method",
    "write_report",
]
