"""The ``vader-hub eval`` command: the correspondence benchmark, and the held-out split it runs on.

    vader-hub eval split /tmp/photos --out-dir splits/           # train.txt, eval.txt, excluded.txt
    vader-hub eval --photos /tmp/photos --weights run/model.safetensors --out-dir eval-out/
    vader-hub eval --photos splits/eval.txt --model vader_r18_fpn       # the shipped weights
    vader-hub eval --photos splits/eval.txt --pairs hpatches.json --weights a.safetensors --weights b.safetensors

``--photos`` takes a directory (its held-out ``eval`` side, as ``eval split`` writes it), a ``.txt`` list
of paths, or image files. Every run compares the weights files with a randomly initialised network of
the same architecture (three seeds), dense SIFT (when OpenCV is installed) and raw normalised patches,
and writes ``eval.md``, ``eval.json`` and ``matches.png`` into ``--out-dir``. See ``docs/eval.md``.
"""
import argparse
import sys
from pathlib import Path
from typing import List

from ..eval.benchmark import THRESHOLDS, evaluate
from ..eval.cases import GRID_STEP, LONG_SIDE
from ..eval.methods import (
    RANDOM_INIT_SEEDS,
    Method,
    network_method,
    patch_method,
    random_init_method,
    sift_method,
    weights_method,
)
from ..eval.pairs import load_pairs
from ..eval.report import to_markdown, write_report
from ..eval.split import IMAGE_SUFFIXES, list_photos, source_of, split_photos
from ..features.extract import resolve_model
from ..pathlist import read_path_list, write_path_list
from ..weights.errors import WeightsError
from ..weights.verify import recorded_architecture

USAGE_ERROR = 2
DEFAULT_ARCHITECTURE = "vader_r18_fpn"


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``eval`` sub-command (and its ``eval split``) to the ``vader-hub`` parser."""
    parser = subparsers.add_parser(
        "eval", help="dense-correspondence benchmark (PCK) against random-init and patch baselines",
        description="PCK@2/4/8 px of dense correspondences on synthetic warps of photos and on real pairs.",
    )
    parser.add_argument("--photos", action="append", default=[], metavar="PATH",
                        help="a photo directory (its held-out split), a .txt list of paths or an image; repeatable")
    parser.add_argument("--pairs", action="append", default=[], type=Path, metavar="JSON",
                        help="real pairs with ground truth (format in docs/eval.md); repeatable")
    parser.add_argument("--model", action="append", default=[], metavar="NAME[.TAG]",
                        help="a VADeR model with its pretrained weights (verified) to evaluate; repeatable")
    parser.add_argument("--weights", action="append", default=[], type=Path, metavar="FILE",
                        help="a vader-hub .safetensors weights file to evaluate; repeatable")
    parser.add_argument("--arch", metavar="NAME",
                        help=f"architecture of the random-init baseline (default: the first evaluated model's, else "
                        f"{DEFAULT_ARCHITECTURE})")
    parser.add_argument("--random-seeds", type=int, nargs="*", default=list(RANDOM_INIT_SEEDS), metavar="SEED",
                        help="seeds of the random-init baseline, averaged (default 0 1 2; none to skip it)")
    parser.add_argument("--no-sift", action="store_true", help="skip the dense SIFT baseline (needs OpenCV)")
    parser.add_argument("--no-patches", action="store_true", help="skip the normalised-patch baseline")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic warps (default 0)")
    parser.add_argument("--long-side", type=int, default=LONG_SIDE, help=f"evaluation resolution (default {LONG_SIDE})")
    parser.add_argument("--grid-step", type=int, default=GRID_STEP, help=f"query spacing in px (default {GRID_STEP})")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--out-dir", type=Path, default=Path("eval-out"), help="output folder (default eval-out)")
    parser.set_defaults(func=run_eval)
    commands = parser.add_subparsers(dest="eval_command", metavar="{split}")
    split = commands.add_parser(
        "split", help="split a photo folder by group into train.txt / eval.txt",
        description="Split photos by group (video, pair, sequence) into train.txt, eval.txt and excluded.txt.",
    )
    split.add_argument("directory", type=Path, metavar="DIR", help="folder of photos")
    split.add_argument("--out-dir", type=Path, required=True, help="folder for the three path lists (created)")
    split.set_defaults(func=run_split)


def run_eval(args: argparse.Namespace) -> int:
    """Run the benchmark, write the report and print its table; returns the exit code."""
    try:
        photos = [photo for entry in args.photos for photo in resolve_photos(entry)]
        pairs = [pair for path in args.pairs for pair in load_pairs(path)]
        if not photos and not pairs:
            return _fail("nothing to evaluate on: pass --photos DIR|LIST|IMG and/or --pairs JSON")
        methods = [network_method(resolve_model(name, args.device)[0], name, device=args.device) for name in args.model]
        methods += [weights_method(path, device=args.device) for path in args.weights]
        architecture = args.arch or _first_architecture(args)
        if args.random_seeds:
            methods.append(random_init_method(architecture, seeds=args.random_seeds, device=args.device))
        if not args.no_sift:
            methods += optional_sift_method()
        if not args.no_patches:
            methods.append(patch_method())
        report = evaluate(
            methods, photos, pairs=pairs, seed=args.seed, long_side=args.long_side, grid_step=args.grid_step,
            thresholds=THRESHOLDS, progress=True,
        )
        files = write_report(report, args.out_dir)
    except (ValueError, TypeError, OSError, WeightsError) as error:
        return _fail(str(error))
    print(to_markdown(report))
    print(f"wrote {files.markdown}, {files.json}" + (f" and {files.picture}" if files.picture else ""))
    return 0


def run_split(args: argparse.Namespace) -> int:
    """Split a photo folder and write the three path lists; returns the exit code."""
    try:
        split = split_photos(list_photos(args.directory))
        for name, photos in (("train", split.train), ("eval", split.eval), ("excluded", split.excluded)):
            write_path_list(args.out_dir / f"{name}.txt", photos)
    except (ValueError, OSError) as error:
        return _fail(str(error))
    total = len(split.train) + len(split.eval) + len(split.excluded)
    print(f"{total} photos: {len(split.train)} train, {len(split.eval)} eval, {len(split.excluded)} excluded "
          f"(held out with their group, not evaluated)")
    for source in sorted({source_of(p.stem) for p in split.eval}):
        print(f"  eval {source}: " + ", ".join(p.name for p in split.eval if source_of(p.stem) == source))
    print(f"wrote {args.out_dir}/train.txt, eval.txt, excluded.txt")
    return 0


def resolve_photos(entry: str) -> List[Path]:
    """The photos an ``--photos`` entry names: a directory's held-out split, a ``.txt`` list, or one image.

    Raises:
        FileNotFoundError: If the entry or a listed photo does not exist.
        ValueError: If it is neither a directory, a ``.txt`` list nor an image file.
    """
    path = Path(entry)
    if path.is_dir():
        return split_photos(list_photos(path)).eval
    if not path.is_file():
        raise FileNotFoundError(f"--photos {entry}: no such file or directory")
    if path.suffix.lower() == ".txt":
        photos = read_path_list(path)
        missing = [str(p) for p in photos if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"--photos {entry} lists {len(missing)} missing file(s), e.g. {missing[0]}")
        return photos
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        kinds = ", ".join(IMAGE_SUFFIXES)
        raise ValueError(f"--photos {entry}: expected a directory, a .txt list or an image ({kinds})")
    return [path]


def _first_architecture(args: argparse.Namespace) -> str:
    """The random-init baseline's architecture: the first evaluated model's, else the default's."""
    if args.model:
        return args.model[0].split(".", 1)[0]
    return recorded_architecture(args.weights[0]) if args.weights else DEFAULT_ARCHITECTURE


def optional_sift_method() -> List[Method]:
    """``[sift_method()]``, or ``[]`` with a note on stderr when OpenCV is not installed."""
    try:
        return [sift_method()]
    except ImportError as error:
        print(f"note: dense SIFT baseline skipped: {error}", file=sys.stderr)
        return []


def _fail(message: str) -> int:
    print(f"vader-hub eval: error: {message}", file=sys.stderr)
    return USAGE_ERROR
