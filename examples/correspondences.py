"""Correspondences between two images from dense features, drawn as joined points.

    python examples/correspondences.py left.jpg right.jpg --out match.png
    python examples/correspondences.py                       # the bundled coffee photo vs a zoomed crop of it
    python examples/correspondences.py --model vader_r18_fpn --random-weights   # offline smoke run

With a single image (or none), the second image is a crop of the first enlarged by ``--zoom``, so every
match has a known true position and the script reports how many land within ``--tolerance`` pixels.
"""
import argparse
import importlib.resources
import sys
from pathlib import Path
from typing import Optional, Sequence

import timm
import torch

from vader_hub import correspondence_image, extract_dense_features, match_features
from vader_hub.cli.options import add_model_arguments, architecture_name, load_model
from vader_hub.features.inputs import load_image, resize


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="zero, one or two image files")
    add_model_arguments(parser)
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights of --model's architecture instead (smoke tests only)")
    parser.add_argument("--zoom", type=float, default=1.5, help="enlargement of the synthetic second view")
    parser.add_argument("--tolerance", type=float, default=8.0, help="pixels within which a match is correct")
    parser.add_argument("--max-lines", type=int, default=60, help="matches to draw")
    parser.add_argument("--out", type=Path, default=Path("correspondences.png"), help="output picture")
    return parser.parse_args(argv)


def zoomed_crop(image: torch.Tensor, zoom: float) -> torch.Tensor:
    """The central 1/zoom of a (3, H, W) image, enlarged back by ``zoom``."""
    height, width = image.shape[-2:]
    top, left = round(height * (1 - 1 / zoom) / 2), round(width * (1 - 1 / zoom) / 2)
    crop = image[:, top : height - top, left : width - left]  # (3, H - 2 top, W - 2 left)
    return resize(crop, (round(crop.shape[1] * zoom), round(crop.shape[2] * zoom)))


def true_points(points_a: torch.Tensor, image_a: torch.Tensor, image_b: torch.Tensor, zoom: float) -> torch.Tensor:
    """Where (x, y) points of the image land in its zoomed crop (pixel centres at integers)."""
    height, width = image_a.shape[-2:]
    offset = torch.tensor([round(width * (1 - 1 / zoom) / 2), round(height * (1 - 1 / zoom) / 2)])
    crop_size = torch.tensor([width - 2 * offset[0], height - 2 * offset[1]])
    scale = torch.tensor([image_b.shape[2], image_b.shape[1]]) / crop_size
    return (points_a - offset + 0.5) * scale - 0.5


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if len(args.images) > 2:
        raise SystemExit("pass at most two images")
    model = timm.create_model(architecture_name(args)) if args.random_weights else load_model(args).model
    with importlib.resources.as_file(importlib.resources.files("vader_hub") / "assets" / "coffee.jpg") as bundled:
        image_a = load_image(args.images[0] if args.images else bundled)  # (3, H, W)
    synthetic = len(args.images) < 2
    image_b = zoomed_crop(image_a, args.zoom) if synthetic else load_image(args.images[1])

    features_a, features_b = extract_dense_features([image_a, image_b], model)
    matches = match_features(features_a, features_b)
    print(f"{len(matches)} mutual nearest-neighbour matches, median cosine {matches.scores.median():.3f}")
    if synthetic:
        error = (matches.points_b - true_points(matches.points_a, image_a, image_b, args.zoom)).norm(dim=1)
        correct = (error <= args.tolerance).float().mean()
        print(f"{100 * correct:.1f}% within {args.tolerance:g} px of the true point "
              f"(median error {error.median():.1f} px)")

    picture = correspondence_image(image_a, image_b, matches, max_lines=args.max_lines)
    picture.save(args.out)
    print(f"best {min(args.max_lines, len(matches))} matches drawn in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
