"""``vader-hub demo``: the package's point in one offline CPU command: shipped weights, features, matches, PCK.

    vader-hub demo                            # the shipped weights -> demo-out/, under a minute
    vader-hub demo --model vader_r18_fpn.TAG  # or --weights FILE: any other weights
    vader-hub demo --reproduce --steps 500    # train a network from scratch instead (a few minutes)

1. loads the best model that has weights (today ``vader_r18_fpn``, bundled with the package) through
   the verified path: its manifest entry's ``file`` source, checked by sha256 on the bytes loaded;
2. extracts the dense features of bundled photos that its training never saw (``EVAL_PHOTOS``, from
   the held-out side of its split) and writes the PCA picture of one and its correspondences with a
   zoomed, shifted view of itself;
3. evaluates it against random initialisation (3 seeds), dense SIFT (when OpenCV is installed) and
   raw normalised patches on synthetic warps of those photos, prints the table and writes it.

``--reproduce`` instead trains ``vader_r18_fpn`` from scratch with the project's trainer on five other
bundled photos, exports the weights, writes a manifest whose ``file`` source carries their sha256 and
loads them back through it (``VADER_HUB_MANIFEST``), then does steps 2 and 3 with that network.
"""
import argparse
import dataclasses
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Iterator, Sequence

import timm
import torch
from PIL import Image

from .checks import positive_int_argument
from .cli.options import add_model_arguments, add_output_argument, load_model
from .cli.status import DONE, reporting_errors_of
from .eval import evaluate, network_method, patch_method, random_init_method, to_markdown, write_report
from .eval.methods import optional_sift_method
from .features import correspondence_image, extract_dense_features, match_features, pca_image
from .pathlist import write_path_list
from .train import TrainConfig, preset, train
from .weights.manifest import MANIFEST_ENV, write_entry

REPRODUCE_ARCHITECTURE = "vader_r18_fpn"
TAG = "demo"
EVAL_PHOTOS = ("building.jpg", "home.jpg", "rocket.jpg")
PICTURE_PHOTO = "building.jpg"
REPRODUCE_PHOTOS = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "hubble.jpg", "retina.jpg")
REPRODUCE_STEPS = 500
EVAL_LONG_SIDE = 256  # the bundled copies' own size
REPRODUCE_NOTE = (
    "A demo-sized run (minutes of CPU on five photos) checks that the trainer, export and verified loading work\n"
    "end to end; it cannot show what the method learns: such a run stays near or below random init, whose random\n"
    "convolutions keep local detail that early training trades for invariance. The shipped weights took about\n"
    "two hours of CPU on 57 photos (docs/weights.md); run `vader-hub demo` without --reproduce to see them."
)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put its outputs, what it evaluated, and how long it took."""

    out_dir: Path
    model_name: str
    pca_picture: Path
    correspondence_picture: Path
    eval_markdown: Path
    eval_table: str
    wall_time_s: float


def demo_config(data: Path, out_dir: Path, steps: int) -> TrainConfig:
    """The ``--reproduce`` training run: rotation and homography views, a warmed-up learning rate of
    about 0.03, shrunk to five photos, 96 px views and batches of 4."""
    return dataclasses.replace(
        preset("smoke"), data=str(data), out_dir=str(out_dir), steps=steps, image_size=96, source_short_side=128,
        batch_size=4, bn_group_size=2, base_lr=2.0, warmup_steps=steps // 10, max_rotation_degrees=25.0,
        homography_strength=0.1, checkpoint_every=max(steps // 2, 1), log_every=10, weights_tag=TAG,
        weights_license="cc0-1.0",
    )


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` and check that it is writable.

    Raises:
        PermissionError: naming the folder and what to do, if it cannot be created or written.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(
            f"cannot write the demo's outputs into {out_dir} ({error.strerror or error}); "
            "pass a writable folder with --out DIR"
        ) from error
    return out_dir


def copy_bundled_photos(names: Sequence[str], destination: Path) -> dict[str, Path]:
    """Copy the named bundled photos into ``destination``; returns name -> path."""
    destination.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name in names:
        with as_file(files("vader_hub") / "assets" / name) as source:
            copies[name] = Path(shutil.copyfile(source, destination / name))
    return copies


@contextmanager
def user_manifest(path: Path) -> Iterator[None]:
    """Make ``path`` the user manifest (``VADER_HUB_MANIFEST``) for the duration of the block."""
    previous = os.environ.get(MANIFEST_ENV)
    os.environ[MANIFEST_ENV] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MANIFEST_ENV, None)
        else:
            os.environ[MANIFEST_ENV] = previous


def train_from_scratch(out_dir: Path, steps: int) -> torch.nn.Module:
    """Train on the ``REPRODUCE_PHOTOS``, export, and load the export back through a manifest's sha256."""
    photos = copy_bundled_photos(REPRODUCE_PHOTOS, out_dir / "photos")
    train_list = write_path_list(out_dir / "train.txt", [photos[name] for name in REPRODUCE_PHOTOS])
    run = train(demo_config(train_list, out_dir / "train", steps))
    manifest = out_dir / "manifest.json"
    write_entry(manifest, run.export.entry)
    with user_manifest(manifest):
        model = timm.create_model(REPRODUCE_ARCHITECTURE, pretrained=True, pretrained_cfg_overlay=dict(tag=TAG))
    return model.eval()


def zoomed_view(image: Image.Image) -> Image.Image:
    """A second view of ``image``: its central 75% crop, shifted right, scaled back to full size."""
    width, height = image.size
    box = (width // 5, height // 8, width // 5 + 3 * width // 4, height // 8 + 3 * height // 4)
    return image.crop(box).resize((width, height), Image.BICUBIC)


def write_pictures(model: torch.nn.Module, photo: Path, out_dir: Path) -> tuple[Path, Path]:
    """The PCA picture of ``photo`` and its correspondences with a zoomed view; returns both paths."""
    with Image.open(photo) as opened:
        image = opened.convert("RGB")
    view = zoomed_view(image)
    features = extract_dense_features([image, view], model=model)  # (2, 128, h, w)
    pca_path, match_path = out_dir / "pca.png", out_dir / "correspondences.png"
    pca_image(features[0], image_size=image.size[::-1]).save(pca_path)
    matches = match_features(features[0], features[1])
    correspondence_image(image, view, matches).save(match_path)
    return pca_path, match_path


def run_demo(out_dir: Path, model: torch.nn.Module, model_name: str,
             eval_long_side: int = EVAL_LONG_SIDE) -> DemoResult:
    """Extract, draw and evaluate ``model`` on the held-out bundled photos; see the module docstring.

    Args:
        out_dir: Folder for every output (created).
        model: The network to show.
        model_name: Its name in the table.
        eval_long_side: Long side, in pixels, of the photos in the evaluation.

    Returns:
        A :class:`DemoResult`.

    Raises:
        PermissionError: If ``out_dir`` is not writable.
    """
    start = time.perf_counter()
    out_dir = prepare_out_dir(Path(out_dir))
    photos = copy_bundled_photos(EVAL_PHOTOS, out_dir / "photos")
    _progress(f"features and pictures of {PICTURE_PHOTO}")
    pca_path, match_path = write_pictures(model, photos[PICTURE_PHOTO], out_dir)
    _progress(f"evaluation on {len(EVAL_PHOTOS)} held-out photos: {', '.join(EVAL_PHOTOS)}")
    architecture = model.pretrained_cfg["architecture"]
    methods = [network_method(model, model_name), random_init_method(architecture), *optional_sift_method(),
               patch_method()]
    report = evaluate(methods, [photos[name] for name in EVAL_PHOTOS], seed=0, long_side=eval_long_side,
                      progress=True)
    report_files = write_report(report, out_dir / "eval")
    return DemoResult(out_dir, model_name, pca_path, match_path, report_files.markdown, to_markdown(report),
                      time.perf_counter() - start)


def _progress(message: str) -> None:
    print(f"vader-hub demo: {message}", file=sys.stderr, flush=True)


@reporting_errors_of("vader-hub demo")
def run(args: argparse.Namespace) -> int:
    """``vader-hub demo``; returns the exit status."""
    start = time.perf_counter()
    if args.reproduce:
        if args.model is not None or args.weights is not None:
            raise ValueError("--reproduce trains its own network; drop --model / --weights")
        steps = REPRODUCE_STEPS if args.steps is None else args.steps
        model, name = train_from_scratch(prepare_out_dir(Path(args.out)), steps), f"{REPRODUCE_ARCHITECTURE}.{TAG}"
    else:
        if args.steps is not None:
            raise ValueError("--steps is for --reproduce, which trains a network; add --reproduce")
        _progress("loading the weights (verified by sha256)")
        chosen = load_model(args)
        model, name = chosen.model, chosen.describe()
    result = run_demo(Path(args.out), model, name)
    print(f"\npictures {result.pca_picture}, {result.correspondence_picture}")
    print(f"evaluation of {result.model_name} on held-out photos, written to {result.eval_markdown}:\n")
    print(result.eval_table)
    if args.reproduce:
        print(REPRODUCE_NOTE)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return DONE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="shipped weights: features, matches and PCK, offline on CPU")
    add_output_argument(parser, "output folder", default=Path("demo-out"), metavar="DIR")
    add_model_arguments(parser)
    parser.add_argument("--reproduce", action="store_true",
                        help="train a network from scratch on five bundled photos instead (a few minutes)")
    parser.add_argument("--steps", type=positive_int_argument, default=None,
                        help=f"training steps of --reproduce (default {REPRODUCE_STEPS})")
    parser.set_defaults(func=run)
