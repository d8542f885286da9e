"""Dense features of a photo, shown as the PCA picture next to the photo.

    python examples/dense_features.py                                  # bundled astronaut, the default pretrained model
    python examples/dense_features.py photo.jpg --short-side 448 --out photo_pca.png
    python examples/dense_features.py --model vader_r18_fpn --random-weights   # offline smoke run

With pretrained weights, parts of a scene that mean the same thing share a colour; with random weights
the picture mostly follows colour and edges.
"""
import argparse
import importlib.resources
import sys
from pathlib import Path
from typing import Optional, Sequence

import timm
from PIL import Image

from vader_hub import extract_dense_features, pca_image
from vader_hub.cli.options import add_model_arguments, architecture_name, load_model
from vader_hub.features.inputs import load_image, target_size


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", nargs="?", type=Path, help="an image file (default: the bundled astronaut)")
    add_model_arguments(parser)
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights of --model's architecture instead (smoke tests only)")
    parser.add_argument("--short-side", type=int, default=None, help="resize so the shorter side is N pixels")
    parser.add_argument("--out", type=Path, default=Path("dense_features_pca.png"), help="output picture")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    model = timm.create_model(architecture_name(args)) if args.random_weights else load_model(args).model
    with importlib.resources.as_file(importlib.resources.files("vader_hub") / "assets" / "astronaut.jpg") as bundled:
        photo = load_image(args.image or bundled)  # (3, H, W), EXIF orientation applied
    features = extract_dense_features(photo, model, short_side=args.short_side)  # (128, h, w)
    input_size = target_size(*photo.shape[-2:], short_side=args.short_side)
    print(f"image {tuple(photo.shape[-2:])} -> network input {input_size} -> features {tuple(features.shape)}")

    pca = pca_image(features, image_size=input_size)
    pixels = (photo.permute(1, 2, 0) * 255).round().byte().numpy()  # (H, W, 3)
    shown = Image.fromarray(pixels).resize(pca.size, Image.BILINEAR)
    side_by_side = Image.new("RGB", (2 * pca.width, pca.height))
    side_by_side.paste(shown, (0, 0))
    side_by_side.paste(pca, (pca.width, 0))
    side_by_side.save(args.out)
    print(f"photo and PCA picture written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
