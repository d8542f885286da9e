"""``vader-hub demo``: the whole package in one offline CPU command, in a few minutes.

    vader-hub demo                      # writes demo-out/
    vader-hub demo --out DIR --steps 40

1. trains ``vader_r18_fpn`` from scratch with the project's trainer on five small photos bundled in
   the package (``vader_hub/assets``, public domain / CC0, see ATTRIBUTION.md);
2. exports the weights through the weights layer, writes a manifest whose source is that local file
   with its sha256, and loads the network back through the manifest machinery (``VADER_HUB_MANIFEST``
   and ``pretrained_cfg_overlay=dict(tag="demo")``): the same verified path as published weights;
3. extracts the features of the sixth bundled photo, which training never saw, and writes its PCA
   picture and a correspondence picture against a zoomed, shifted view of it;
4. evaluates the trained network against random initialisation (3 seeds) and raw normalised patches
   on synthetic warps of the held-out photo, prints the table and writes it.
"""
import argparse
import dataclasses
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Iterator

import timm
import torch
from PIL import Image

from .eval import evaluate, network_method, patch_method, random_init_method, to_markdown, write_report
from .features import correspondence_image, extract_dense_features, match_features, pca_image
from .train import TrainConfig, preset, train
from .weights.manifest import MANIFEST_ENV, write_entry

ARCHITECTURE = "vader_r18_fpn"
TAG = "demo"
TRAIN_PHOTOS = ("astronaut.jpg", "coffee.jpg", "rocket.jpg", "retina.jpg", "hubble.jpg")
HELD_OUT_PHOTO = "chelsea.jpg"
DEMO_STEPS = 500
EVAL_LONG_SIDE = 256
# Measured on 2 cores; see "The demo's budget" in the README.
BUDGET_NOTE = (
    "A demo-sized run (minutes of CPU on five photos) exercises the whole pipeline; it is not expected to beat\n"
    "random init, whose random convolutions keep local detail that early training trades for invariance. With\n"
    "the first checkpoint's recipe on 66 photos, a 150-step run (6 min on 2 cores) only matches random init on\n"
    "this photo, and 400 steps are far above it: see \"The demo's budget\" in the README."
)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put its outputs, and how long it took."""

    out_dir: Path
    weights: Path
    manifest: Path
    pca_picture: Path
    correspondence_picture: Path
    eval_markdown: Path
    eval_table: str
    wall_time_s: float


def demo_config(data: Path, out_dir: Path, steps: int) -> TrainConfig:
    """The demo's training run: the first checkpoint's recipe (rotation and homography views, a
    warmed-up learning rate of about 0.03) shrunk to five photos, 96 px views and batches of 4."""
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


def copy_bundled_photos(destination: Path) -> dict[str, Path]:
    """Copy the bundled photos into ``destination``; returns name -> path."""
    destination.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name in (*TRAIN_PHOTOS, HELD_OUT_PHOTO):
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


def load_through_manifest(manifest: Path) -> torch.nn.Module:
    """``vader_r18_fpn`` with the ``demo`` tag's weights, resolved and sha256-verified from ``manifest``."""
    with user_manifest(manifest):
        model = timm.create_model(ARCHITECTURE, pretrained=True, pretrained_cfg_overlay=dict(tag=TAG))
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
    matches = match_features(features[0], features[1], mode="mutual")
    correspondence_image(image, view, matches).save(match_path)
    return pca_path, match_path


def run_demo(out_dir: Path, steps: int = DEMO_STEPS, eval_long_side: int = EVAL_LONG_SIDE) -> DemoResult:
    """Train, export, verify, extract, draw and evaluate; see the module docstring.

    Args:
        out_dir: Folder for every output (created).
        steps: Training steps.
        eval_long_side: Long side, in pixels, of the held-out photo in the evaluation.

    Returns:
        A :class:`DemoResult`.

    Raises:
        PermissionError: If ``out_dir`` is not writable.
    """
    start = time.perf_counter()
    out_dir = prepare_out_dir(Path(out_dir))
    photos = copy_bundled_photos(out_dir / "photos")
    train_list = out_dir / "train.txt"
    train_list.write_text("".join(f"{photos[name]}\n" for name in TRAIN_PHOTOS))
    run = train(demo_config(train_list, out_dir / "train", steps))
    manifest = out_dir / "manifest.json"
    write_entry(manifest, run.export.entry)
    model = load_through_manifest(manifest)
    pca_path, match_path = write_pictures(model, photos[HELD_OUT_PHOTO], out_dir)
    methods = [network_method(model, f"{ARCHITECTURE}.{TAG} (trained)"), random_init_method(ARCHITECTURE),
               patch_method()]
    report = evaluate(methods, [photos[HELD_OUT_PHOTO]], seed=0, long_side=eval_long_side, progress=True)
    report_files = write_report(report, out_dir / "eval")
    return DemoResult(out_dir, run.export.weights, manifest, pca_path, match_path, report_files.markdown,
                      to_markdown(report), time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    try:
        result = run_demo(Path(args.out), steps=args.steps)
    except PermissionError as error:
        print(f"vader-hub demo: {error}")
        return 2
    print(f"\nweights {result.weights} (verified through {result.manifest})")
    print(f"pictures {result.pca_picture}, {result.correspondence_picture}")
    print(f"evaluation on the held-out photo ({HELD_OUT_PHOTO}), written to {result.eval_markdown}:\n")
    print(result.eval_table)
    print(BUDGET_NOTE)
    print(f"demo finished in {result.wall_time_s:.0f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="train, export, verify, extract and evaluate, offline on CPU")
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps")
    parser.set_defaults(func=run)
