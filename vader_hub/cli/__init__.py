"""The ``vader-hub`` command: one sub-command per part of the package.

    vader-hub demo                 # the whole pipeline, offline, on CPU, in a few minutes
    vader-hub info                 # models, shapes and timings on a bundled photo
    vader-hub extract IMG... --model vader_r18_fpn --out feats/
    vader-hub match A B --out match.png
    vader-hub train --preset smoke --data DIR --out runs/smoke
    vader-hub eval --photos eval.txt --weights model.safetensors
    vader-hub weights list|download|verify|clean|export|publish
    vader-hub convert ...
"""
import argparse
from typing import Optional, Sequence

from .. import __version__, demo, info
from . import convert, eval, features, train, weights

SUBCOMMAND_MODULES = (demo, info, features, train, eval, weights, convert)


def build_parser() -> argparse.ArgumentParser:
    """The ``vader-hub`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="vader-hub", description="VADeR dense self-supervised backbones.")
    parser.add_argument("--version", action="version", version=f"vader-hub {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``vader-hub`` with ``argv`` (default: the process arguments); returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args) or 0

