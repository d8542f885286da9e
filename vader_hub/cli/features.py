"""The ``vader-hub extract`` and ``vader-hub match`` sub-commands.

    vader-hub extract photos/*.jpg                                # the default model -> extract-out/
    vader-hub extract a.jpg b.png --model vader_r18_fpn.<tag> --short-side 448 --out feats/
    vader-hub extract a.jpg --weights my_run.safetensors --out feats/
    vader-hub match left.jpg right.jpg --out match.png            # default --out: match.png

``extract`` writes, per image, ``<stem>.safetensors`` (tensor ``features``, (128, ceil(H/4),
ceil(W/4)), L2-normalised; metadata ``model``, ``tag``, ``weights``, ``stride``, ``input_size`` and
``image_size`` as JSON (height, width) pairs, ``source``) and ``<stem>_pca.png``. An image that cannot
be read is reported and skipped (exit status 1, done in part); the others are still written. Without
``--short-side``, an image file over ``MAX_PIXELS`` is refused from its header, before it is decoded.
An ``--out`` that cannot take files is refused before the model is loaded.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, Optional

from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from ..checks import positive_int_argument
from ..features.extract import extract_dense_features
from ..features.inputs import MAX_PIXELS, load_image, target_size
from ..features.matching import Matches, match_features, match_features_dense, rescale_points
from ..features.pictures import correspondence_image, pca_image
from ..fileio import write_through_temporary
from ..models.cells import STRIDE
from .options import ChosenModel, add_model_arguments, add_output_argument, load_model
from .status import DONE, DONE_IN_PART, USER_ERRORS, reporting_errors_of

MATCHERS = {"mutual": match_features, "dense": match_features_dense}  # --mode -> the matching function


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``extract`` and ``match`` sub-commands to the ``vader-hub`` parser."""
    extract = subparsers.add_parser(
        "extract", help="dense features of images -> .safetensors files and PCA pictures",
        description="Write each image's dense features (<stem>.safetensors) and PCA picture (<stem>_pca.png).",
    )
    extract.add_argument("images", nargs="+", metavar="IMG", help="image files")
    _add_common_options(extract)
    add_output_argument(extract, "output folder (created)", default=Path("extract-out"), metavar="DIR")
    extract.set_defaults(func=run_extract)

    match = subparsers.add_parser(
        "match", help="match two images and draw the correspondences",
        description="Match two images' dense features and draw the best matches side by side.",
    )
    match.add_argument("image_a", metavar="A", help="first image file")
    match.add_argument("image_b", metavar="B", help="second image file")
    _add_common_options(match)
    add_output_argument(match, "output picture", default=Path("match.png"), metavar="PNG")
    match.add_argument("--mode", choices=tuple(MATCHERS), default="mutual", help="mutual or dense nearest neighbours")
    match.add_argument("--max-lines", type=positive_int_argument, default=100,
                       help="draw this many best matches (default 100)")
    match.set_defaults(func=run_match)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--short-side", type=positive_int_argument, metavar="N",
                        help="resize so the shorter side is N pixels")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.add_argument("--autocast", action="store_true", help="run the network in bfloat16 autocast")


@reporting_errors_of("vader-hub extract")
def run_extract(args: argparse.Namespace) -> int:
    """Extract and save the features and PCA picture of every image; returns the exit status."""
    stems = [Path(path).stem for path in args.images]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise ValueError(f"several images share the file stem(s) {duplicates}; their outputs would overwrite "
                         "each other")
    inputs = {Path(path).resolve() for path in args.images}
    outputs = [args.out / name for stem in stems for name in (f"{stem}.safetensors", f"{stem}_pca.png")]
    overwritten = [str(path) for path in outputs if path.resolve() in inputs]
    if overwritten:
        raise ValueError(f"writing {overwritten} would overwrite input images; pick another --out folder")
    _check_output_folder(args.out)
    chosen = load_model(args, args.device)
    model, provenance = chosen.model, _provenance(chosen)
    failures = 0
    for path, stem in zip(tqdm(args.images, desc="extract", unit="img"), stems, strict=True):
        try:
            _extract_one(Path(path), args.out / stem, model, provenance, args)
        except USER_ERRORS as error:
            failures += 1
            tqdm.write(f"vader-hub extract: skipped {path}: {error}", file=sys.stderr)
    if failures == len(args.images):
        raise ValueError(f"none of the {failures} image(s) could be read, so nothing was written")
    return DONE_IN_PART if failures else DONE


def _check_output_folder(out: Path) -> None:
    """Check that ``--out`` is, or can be created as, a folder that takes files, before any work.

    Nothing is created here: a command refused later (an unknown model, say) leaves no folder behind.

    Raises:
        NotADirectoryError: If ``out``, or a path above it, is a file.
        PermissionError: If the folder, or the one it would be created in, is not writable.
    """
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; extract writes a folder of files there: name a folder"
                                 if existing == out else f"cannot create the --out folder {out}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write into the --out folder {out}" + ("" if existing == out else
                              f" (nor create it in {existing})") + ": permission denied; choose another folder")


def _decode_limit(args: argparse.Namespace) -> Optional[int]:
    """The largest image file worth decoding: without --short-side the network sees it whole, so MAX_PIXELS."""
    return MAX_PIXELS if args.short_side is None else None


def _extract_one(path: Path, out_stem: Path, model: nn.Module, provenance: Dict[str, str], args) -> None:
    image = load_image(path, max_pixels=_decode_limit(args))  # (3, H, W)
    image_size = tuple(image.shape[-2:])
    input_size = target_size(*image_size, short_side=args.short_side)
    features = extract_dense_features(image, model, short_side=args.short_side, autocast=args.autocast)
    metadata = dict(
        provenance, stride=str(STRIDE), input_size=json.dumps(list(input_size)),
        image_size=json.dumps(list(image_size)), source=path.name,
    )
    tensors = {"features": features.contiguous().cpu()}
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    write_through_temporary(out_stem.with_suffix(".safetensors"),
                            lambda name: save_file(tensors, str(name), metadata=metadata))
    picture = pca_image(features, image_size=input_size)
    write_through_temporary(out_stem.with_name(out_stem.name + "_pca.png"),
                            lambda name: picture.save(name, format="PNG"))


@reporting_errors_of("vader-hub match")
def run_match(args: argparse.Namespace) -> int:
    """Match two images and save the correspondence picture; returns the exit status."""
    matches = _match(args)
    print(f"{len(matches)} {args.mode} matches, best {min(args.max_lines, len(matches))} drawn in {args.out}")
    return DONE


def _match(args: argparse.Namespace) -> Matches:
    inputs = {Path(args.image_a).resolve(), Path(args.image_b).resolve()}
    if args.out.resolve() in inputs:
        raise ValueError(f"writing {args.out} would overwrite an input image; pick another --out file")
    model = load_model(args, args.device).model
    images = [load_image(path, max_pixels=_decode_limit(args)) for path in (args.image_a, args.image_b)]  # (3, H, W)
    features = extract_dense_features(images, model, short_side=args.short_side, autocast=args.autocast)
    matches = MATCHERS[args.mode](features[0], features[1])
    drawn_sizes = [tuple(image.shape[-2:]) for image in images]
    matched_sizes = [target_size(*size, short_side=args.short_side) for size in drawn_sizes]
    matches = Matches(
        points_a=rescale_points(matches.points_a, matched_sizes[0], drawn_sizes[0]),
        points_b=rescale_points(matches.points_b, matched_sizes[1], drawn_sizes[1]),
        scores=matches.scores,
    )
    picture = correspondence_image(images[0], images[1], matches, max_lines=args.max_lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_through_temporary(args.out, lambda name: picture.save(name, format="PNG"))
    return matches


def _provenance(chosen: ChosenModel) -> Dict[str, str]:
    """What the output metadata records of the model: architecture, tag and the user's weights file."""
    config = chosen.model.pretrained_cfg
    return dict(model=config.get("architecture") or "", tag=config.get("tag") or "",
                weights=chosen.weights.name if chosen.weights is not None else "")
