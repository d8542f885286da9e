"""The ``vader-hub eval`` command: the correspondence benchmark, and the held-out split it runs on.

    vader-hub eval split /tmp/photos --out splits/           # train.txt, eval.txt, excluded.txt
    vader-hub eval split photos --split-rules docs/splits/offline-photos.json --out splits/   # a photo set's rules
    vader-hub eval --photos /tmp/photos --weights run/model.safetensors --out eval-out/
    vader-hub eval --photos splits/eval.txt --model vader_r18_fpn       # the shipped weights
    vader-hub eval --photos splits/eval.txt --pairs hpatches.json --weights a.safetensors --weights b.safetensors

``--photos`` takes a directory (its held-out ``eval`` side, as ``eval split`` writes it), a ``.txt`` list
of paths, or image files. Every run compares the weights files with a randomly initialised network of
the same architecture (three seeds), dense SIFT (when OpenCV is installed) and raw normalised patches,
and writes ``eval.md``, ``eval.json`` and ``matches.png`` into ``--out``. See ``docs/eval.md``.
"""
import argparse
from pathlib import Path
from typing import List

from ..eval.benchmark import THRESHOLDS, evaluate
from ..eval.cases import GRID_STEP, LONG_SIDE
from ..eval.methods import (
    RANDOM_INIT_SEEDS,
    network_method,
    optional_sift_method,
    patch_method,
    random_init_method,
    weights_method,
)
from ..eval.pairs import load_pairs
from ..eval.report import to_markdown, write_report
from ..eval.split import DEFAULT_RULES, SplitRules, list_photos, load_split_rules, source_of, split_photos
from ..features.extract import resolve_model
from ..pathlist import IMAGE_SUFFIXES, read_path_list, write_path_list
from ..weights.verify import recorded_architecture
from .options import add_former_spelling, add_output_argument
from .status import DONE, reporting_errors_of

reporting_errors = reporting_errors_of("vader-hub eval")
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
    parser.add_argument("--random-init-model", metavar="NAME",
                        help=f"architecture of the random-init baseline (default: the first evaluated model's, else "
                        f"{DEFAULT_ARCHITECTURE})")
    add_former_spelling(parser, "--arch", "--random-init-model", dest="random_init_model")
    parser.add_argument("--random-seeds", type=int, nargs="*", default=list(RANDOM_INIT_SEEDS), metavar="SEED",
                        help="seeds of the random-init baseline, averaged (default 0 1 2; none to skip it)")
    parser.add_argument("--no-sift", action="store_true", help="skip the dense SIFT baseline (needs OpenCV)")
    parser.add_argument("--no-patches", action="store_true", help="skip the normalised-patch baseline")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic warps (default 0)")
    parser.add_argument("--long-side", type=int, default=LONG_SIDE, help=f"evaluation resolution (default {LONG_SIDE})")
    parser.add_argument("--grid-step", type=int, default=GRID_STEP, help=f"query spacing in px (default {GRID_STEP})")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default cpu)")
    add_output_argument(parser, "output folder", default=Path("eval-out"), metavar="DIR")
    add_former_spelling(parser, "--out-dir", "--out", dest="out", type=Path)
    _add_split_rules_argument(parser)
    parser.set_defaults(func=run_eval)
    commands = parser.add_subparsers(dest="eval_command", metavar="{split}")
    split = commands.add_parser(
        "split", help="split a photo folder by group into train.txt / eval.txt",
        description="Split photos by group (video, pair, sequence) into train.txt, eval.txt and excluded.txt.",
    )
    split.add_argument("directory", type=Path, metavar="DIR", help="folder of photos")
    split.add_argument("--out", type=Path, metavar="DIR", help="folder for the three path lists (created; required)")
    add_former_spelling(split, "--out-dir", "--out", dest="out", type=Path)
    _add_split_rules_argument(split)
    split.set_defaults(func=run_split)


def _add_split_rules_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split-rules", type=Path, metavar="JSON",
                        help="a photo set's sources and companions for splitting a photo directory "
                        "(format in docs/eval.md; default: the file-name rules alone)")


def _split_rules(args: argparse.Namespace) -> SplitRules:
    return load_split_rules(args.split_rules) if args.split_rules else DEFAULT_RULES


@reporting_errors
def run_eval(args: argparse.Namespace) -> int:
    """Run the benchmark, write the report and print its table; returns the exit status."""
    rules = _split_rules(args)
    photos = [photo for entry in args.photos for photo in resolve_photos(entry, rules)]
    pairs = [pair for path in args.pairs for pair in load_pairs(path)]
    if not photos and not pairs:
        raise ValueError("nothing to evaluate on: pass --photos DIR|LIST|IMG and/or --pairs JSON")
    methods = [network_method(resolve_model(name, args.device)[0], name, device=args.device) for name in args.model]
    methods += [weights_method(path, device=args.device) for path in args.weights]
    architecture = args.random_init_model or _first_architecture(args)
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
    files = write_report(report, args.out)
    print(to_markdown(report))
    print(f"wrote {files.markdown}, {files.json}" + (f" and {files.picture}" if files.picture else ""))
    return DONE


@reporting_errors
def run_split(args: argparse.Namespace) -> int:
    """Split a photo folder and write the three path lists; returns the exit status."""
    if args.out is None:
        raise ValueError("name the folder for train.txt, eval.txt and excluded.txt: --out DIR")
    rules = _split_rules(args)
    split = split_photos(list_photos(args.directory), rules=rules)
    for name, photos in (("train", split.train), ("eval", split.eval), ("excluded", split.excluded)):
        write_path_list(args.out / f"{name}.txt", photos)
    total = len(split.train) + len(split.eval) + len(split.excluded)
    print(f"{total} photos: {len(split.train)} train, {len(split.eval)} eval, {len(split.excluded)} excluded "
          f"(held out with their group, not evaluated)")
    for source in sorted({source_of(p.stem, rules) for p in split.eval}):
        print(f"  eval {source}: " + ", ".join(p.name for p in split.eval if source_of(p.stem, rules) == source))
    print(f"wrote {args.out}/train.txt, eval.txt, excluded.txt")
    return DONE


def resolve_photos(entry: str, rules: SplitRules = DEFAULT_RULES) -> List[Path]:
    """The photos an ``--photos`` entry names: a directory's held-out split, a ``.txt`` list, or one image.

    Args:
        entry: The ``--photos`` value.
        rules: The split rules of a directory's photo set (``--split-rules``).

    Returns:
        The photo paths.

    Raises:
        FileNotFoundError: If the entry or a listed photo does not exist.
        ValueError: If it is neither a directory, a ``.txt`` list nor an image file.
    """
    path = Path(entry)
    if path.is_dir():
        return split_photos(list_photos(path), rules=rules).eval
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
