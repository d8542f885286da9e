"""A per-pixel linear probe on frozen dense features: segmenting synthetic textures.

    python examples/linear_probe.py                                      # the default pretrained model
    python examples/linear_probe.py --model vader_r18_fpn --random-weights --steps 20   # offline smoke run

Each image is a patchwork of three textures (horizontal stripes, vertical stripes, a checkerboard) in
random Voronoi regions, with random colours, so only texture tells them apart. A 1x1 convolution is
trained on the frozen features of the training images, at the label of the pixel each cell is centred
on (the cell convention: cell (i, j) <-> pixel (4i, 4j)); its logits are then upsampled to every pixel
of the test images and scored against the full-resolution labels.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vader_hub import extract_dense_features
from vader_hub.cli.options import add_model_arguments, architecture_name, load_model
from vader_hub.models.cells import upsample_to_pixels

NUM_CLASSES = 3
PALETTE = torch.tensor([[230, 25, 75], [60, 180, 75], [0, 130, 200]], dtype=torch.uint8)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights of --model's architecture instead (smoke tests only)")
    parser.add_argument("--train-images", type=int, default=16)
    parser.add_argument("--test-images", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=300, help="full-batch Adam steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("linear_probe.png"), help="test image | truth | prediction")
    return parser.parse_args(argv)


def texture_scene(size: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """A (3, size, size) image in [0, 1] and its (size, size) texture labels."""
    seeds = torch.rand(6, 2, generator=generator) * size  # (6, 2) Voronoi sites
    classes = torch.randint(NUM_CLASSES, (6,), generator=generator)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")  # (S, S) each
    pixels = torch.stack([ys, xs], dim=-1).float()  # (S, S, 2)
    labels = classes[torch.cdist(pixels.view(-1, 2), seeds).argmin(dim=1)].view(size, size)  # (S, S)
    phase = torch.rand(1, generator=generator) * 8
    patterns = torch.stack([
        torch.sin((ys + phase) * 2 * torch.pi / 8),
        torch.sin((xs + phase) * 2 * torch.pi / 8),
        torch.sign(torch.sin((ys + phase) * torch.pi / 4) * torch.sin((xs + phase) * torch.pi / 4)),
    ])  # (3, S, S), one pattern per class
    intensity = 0.5 + 0.5 * patterns.gather(0, labels[None]).squeeze(0)  # (S, S) in [0, 1]
    dark, light = torch.rand(2, 3, 1, 1, generator=generator)  # random colours: texture is the only cue
    return dark + (light - dark) * intensity, labels


def make_scenes(count: int, size: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    scenes = [texture_scene(size, generator) for _ in range(count)]
    return torch.stack([image for image, _ in scenes]), torch.stack([labels for _, labels in scenes])


def train_probe(features: torch.Tensor, labels: torch.Tensor, steps: int) -> nn.Module:
    """Fit a 1x1 conv on (N, C, h, w) frozen features to the labels of the cells' centre pixels."""
    cell_labels = labels[:, ::4, ::4]  # (N, h, w): the pixel (4i, 4j) each cell is centred on
    probe = nn.Conv2d(features.shape[1], NUM_CLASSES, kernel_size=1)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(probe(features), cell_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"probe training loss after {steps} steps: {loss.item():.3f}")
    return probe


def segment(probe: nn.Module, features: torch.Tensor, size: int) -> torch.Tensor:
    """Per-pixel class predictions (N, size, size) from per-cell logits."""
    with torch.no_grad():
        return upsample_to_pixels(probe(features), (size, size)).argmax(dim=1)  # (N, S, S)


def mean_iou(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    ious = []
    for label in range(NUM_CLASSES):
        union = ((prediction == label) | (truth == label)).sum()
        if union > 0:
            ious.append((((prediction == label) & (truth == label)).sum() / union).item())
    return sum(ious) / len(ious)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    generator = torch.Generator().manual_seed(args.seed)
    model = timm.create_model(architecture_name(args)) if args.random_weights else load_model(args).model
    train_images, train_labels = make_scenes(args.train_images, args.size, generator)
    test_images, test_labels = make_scenes(args.test_images, args.size, generator)
    train_features = extract_dense_features(train_images, model)  # (N, 128, S/4, S/4), frozen
    test_features = extract_dense_features(test_images, model)

    probe = train_probe(train_features, train_labels, args.steps)
    for split, features, labels in (("train", train_features, train_labels), ("test", test_features, test_labels)):
        prediction = segment(probe, features, args.size)
        accuracy = (prediction == labels).float().mean().item()
        print(f"{split}: pixel accuracy {100 * accuracy:.1f}% (chance ~{100 / NUM_CLASSES:.0f}%), "
              f"mIoU {100 * mean_iou(prediction, labels):.1f}%")

    first_prediction = segment(probe, test_features[:1], args.size)[0]  # (S, S)
    shown = [(test_images[0].permute(1, 2, 0) * 255).round().byte(), PALETTE[test_labels[0]], PALETTE[first_prediction]]
    Image.fromarray(torch.cat(shown, dim=1).numpy()).save(args.out)  # (S, 3S, 3)
    print(f"test image | truth | prediction written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
