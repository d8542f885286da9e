"""``vader-hub info``: the registered models, their sizes, and a timed forward on a bundled photo.

    vader-hub info                       # every vader_* model on the bundled astronaut photo
    vader-hub info --model vader_r18_fpn --size 320

Runs offline on CPU with randomly initialised networks; it is a quick check that the install works.
"""
import argparse
import time
from importlib.resources import files

import numpy as np
import timm
import torch
from PIL import Image

from .checks import positive_int_argument
from .cli.status import reporting_errors_of
from .models.preprocess import normalize_images
from .weights.names import check_architecture, vader_architectures


def bundled_photo(name: str = "astronaut.jpg") -> Image.Image:
    """One of the small CC0/public-domain photos shipped in ``vader_hub/assets`` (see ATTRIBUTION.md)."""
    with (files("vader_hub") / "assets" / name).open("rb") as f:
        return Image.open(f).convert("RGB")


def photo_batch(model: torch.nn.Module, size: int) -> torch.Tensor:
    """The bundled astronaut photo resized to ``size`` and normalised with the model's cfg, (1, 3, size, size)."""
    image = bundled_photo().resize((size, size), Image.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)  # (3, S, S) uint8
    return normalize_images(pixels.unsqueeze(0), model.pretrained_cfg)  # (1, 3, S, S)


def describe(name: str, size: int, repeats: int = 3) -> str:
    """One line: parameters, output shape and median forward time of ``name`` at ``size`` px."""
    model = timm.create_model(name).eval()
    x = photo_batch(model, size)
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            out = model(x)
            times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    shapes = f"{tuple(x.shape)} -> {tuple(out.shape)}"
    return f"{name:16s} {params:6.2f} M params  {shapes}  {np.median(times) * 1e3:7.1f} ms"


@reporting_errors_of("vader-hub info")
def run(args: argparse.Namespace) -> int:
    """``vader-hub info``: one line per model; returns the exit status."""
    names = [args.model] if args.model else vader_architectures()
    for name in names:
        check_architecture(name)
    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} CPU threads")
    for name in names:
        print(describe(name, args.size))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="list the models and time a forward pass on a bundled photo")
    parser.add_argument("--model", help="one model name (default: every vader_* model)")
    parser.add_argument("--size", type=positive_int_argument, default=224, help="input side in pixels (default 224)")
    parser.set_defaults(func=run)
