"""`vader-hub train` and `python -m vader_hub.train`: the same parser, one flag per config field.

    python -m vader_hub.train --preset smoke --data photos/ --out runs/smoke
    python -m vader_hub.train --data photos/ --model vader_r18_fpn --image-size 128 --batch-size 32 --steps 2000
    python -m vader_hub.train --resume runs/smoke                   # continue exactly where it stopped
    python -m vader_hub.train --preset smoke --data photos/ --out runs/smoke --overwrite   # start it again
    torchrun --nproc_per_node 2 -m vader_hub.train --preset smoke --data photos/

Every `TrainConfig` field is a flag (`batch_size` -> `--batch-size`; booleans also take `--no-...`;
`none` clears an optional field), except that the run folder `out_dir` is `--out`, as every
command spells its output. Flags override the preset (default `paper`) or, with `--resume`,
the checkpoint's own config; a resume writes into the folder it resumes from unless `--out` says
otherwise. A folder that holds another run is refused unless `--overwrite` replaces that run.
"""

import argparse
import dataclasses
import sys
import typing

from ..train.config import PRESETS, TrainConfig, apply_overrides, field_types, preset
from ..train.distributed import is_main_process
from ..train.loop import NonFiniteLossError, train
from ..train.resume import resumed_config
from .options import add_former_spelling
from .status import DONE, DONE_IN_PART, reporting_errors_of


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the trainer's options to `parser` (shared by both entry points)."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                        help="the base settings that the flags below override (default: paper)")
    parser.add_argument("--resume", metavar="RUN_OR_CHECKPOINT",
                        help="continue a run exactly from its folder or checkpoint file; flags override its config")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run an existing --out folder holds (its checkpoint, config, data list, "
                        "log and export); without it such a folder is refused")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (the JSONL log is still written)")
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        annotation = field_types()[field.name]
        default = getattr(defaults, field.name)
        flags = ["--out"] if field.name == "out_dir" else [_flag(field.name)]
        if bool in typing.get_args(annotation) or annotation is bool:
            parser.add_argument(*flags, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"paper default: {default}")
        else:
            parser.add_argument(*flags, dest=field.name, metavar=field.name.upper(), default=argparse.SUPPRESS,
                                help=f"paper default: {default}")
    add_former_spelling(parser, "--out-dir", "--out", dest="out_dir", default=argparse.SUPPRESS)


def register(subparsers) -> None:
    """Add the `train` sub-command to the `vader-hub` parser."""
    parser = subparsers.add_parser("train", help="train a VADeR network (CPU, one GPU, or many with torchrun)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config the arguments describe: preset (or resumed config, in the resumed folder) plus the given flags.

    Raises:
        ValueError: for unparsable or inconsistent values, or a `--resume` file that is not a checkpoint.
        FileNotFoundError: for a missing `--resume` checkpoint.
    """
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    base = resumed_config(args.resume) if args.resume else preset(args.preset)
    return apply_overrides(base, overrides)


@reporting_errors_of("vader-hub train")
def run(args: argparse.Namespace) -> int:
    """Run training for parsed arguments; returns the exit status (1: stopped on a non-finite loss)."""
    config = config_from_args(args)
    try:
        result = train(config, resume=args.resume, overwrite=args.overwrite, show_progress=not args.no_progress)
    except NonFiniteLossError as error:
        print(f"vader-hub train: stopped: {error}", file=sys.stderr)
        return DONE_IN_PART
    if is_main_process():  # under torchrun, one summary
        if result.export is not None:
            print(f"exported {result.export.weights} (sha256 {result.export.sha256})")
        print(f"done: {result.steps} steps in {result.wall_time_s:.0f} s; checkpoint {result.checkpoint}")
    return DONE


def main(argv: list[str] | None = None) -> int:
    """`python -m vader_hub.train`: the `train` sub-command's parser on its own."""
    parser = argparse.ArgumentParser(prog="python -m vader_hub.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
