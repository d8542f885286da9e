"""The command line's vocabulary: one flag for one thing in every sub-command.

- ``--model NAME[.TAG]`` names a network or an architecture, ``--weights FILE`` a weights file of
  yours: every sub-command and example that runs a network takes these two and builds it with
  :func:`load_model` (a named model with its verified pretrained weights, your file with the
  architecture read from it, or, with neither, the best model that has weights, announced on stderr).
  Commands that only need an architecture (``weights export``, ``convert import``) take ``--model`` too.
- ``--out PATH`` is what a command writes: a file or a folder, as its help says, with a default
  where one makes sense.
- Former spellings (``--arch``, ``--architecture``, ``--out-dir``) still work, hidden from ``--help``,
  and say on stderr which flag to use instead.
"""
import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import timm
import torch
from torch import nn

from ..features.extract import parse_device, resolve_model
from ..models import default_model_name
from ..weights.errors import WeightsNotFoundError
from ..weights.verify import recorded_architecture

CLI_HINT = (
    "On the command line, pass --weights FILE (a vader-hub .safetensors file, such as a training run's "
    "export/model.safetensors) or --model NAME[.TAG] of a model that has weights (see `vader-hub weights list`)."
)


@dataclass(frozen=True)
class ChosenModel:
    """A network built from the command line, and what it is, for messages and output metadata.

    Attributes:
        model: The network, in eval mode.
        name: Its timm name, ``architecture`` or ``architecture.tag``.
        weights: The user's weights file, or None for a named model's pretrained weights.
    """

    model: nn.Module
    name: str
    weights: Optional[Path]

    def describe(self) -> str:
        """``"vader_r18_fpn.tag"`` or ``"vader_r18_fpn from FILE"``."""
        return f"{self.name} from {self.weights}" if self.weights is not None else self.name


class _FormerSpelling(argparse.Action):
    """Store the value like the current flag does, and say which flag that is."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is now spelled {self.const}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_former_spelling(parser: argparse.ArgumentParser, former: str, current: str, dest: str, **kwargs) -> None:
    """Accept ``former`` as a hidden alias of the flag ``current`` (stored in ``dest``), with a note on stderr."""
    parser.add_argument(former, dest=dest, action=_FormerSpelling, const=current, help=argparse.SUPPRESS, **kwargs)


def add_architecture_argument(parser: argparse.ArgumentParser, required: bool = False, help: str = "") -> None:
    """Add ``--model NAME`` for a command that needs an architecture, not weights (and its former spellings).

    A ``required`` architecture is checked by :func:`required_architecture`, not by argparse, so that
    a former spelling counts too.
    """
    text = help or "a VADeR architecture, e.g. vader_r18_fpn (`vader-hub info` lists them)"
    parser.add_argument("--model", metavar="NAME", help=f"{text} (required)" if required else text)
    for former in ("--arch", "--architecture"):
        add_former_spelling(parser, former, "--model", dest="model")


def required_architecture(args: argparse.Namespace) -> str:
    """``args.model``, or a usage error naming the flag.

    Raises:
        ValueError: If ``--model`` was not given.
    """
    if args.model is None:
        raise ValueError("name the architecture: --model NAME (e.g. vader_r18_fpn; `vader-hub info` lists them)")
    return args.model


def add_output_argument(parser: argparse.ArgumentParser, help: str, default: Optional[Path] = None,
                        metavar: str = "PATH") -> None:
    """Add ``--out PATH``, the command's output; required when there is no ``default``."""
    parser.add_argument("--out", type=Path, default=default, required=default is None, metavar=metavar,
                        help=f"{help} (default: {default})" if default is not None else help)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive ``--model NAME[.TAG]`` and ``--weights FILE`` options to ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", metavar="NAME[.TAG]",
                       help="a VADeR model with its pretrained weights, verified (default: the best model "
                       "that has weights; `vader-hub weights list` shows them)")
    group.add_argument("--weights", type=Path, metavar="FILE",
                       help="a vader-hub .safetensors weights file (its architecture is read from the file)")
    add_former_spelling(parser, "--arch", "--model", dest="model")


def load_model(args: argparse.Namespace, device: Union[None, str, torch.device] = None,
               announce: bool = True) -> ChosenModel:
    """The network that ``args.model`` / ``args.weights`` name, or the default one.

    Args:
        args: Parsed options with ``model`` and ``weights`` (see :func:`add_model_arguments`).
        device: Device to put the network on (default CPU).
        announce: Say on stderr which model a default chose.

    Returns:
        The :class:`ChosenModel`.

    Raises:
        WeightsNotFoundError: If the weights cannot be found; the message names the options to use.
        ValueError: For an unknown model name or tag, or an unknown device.
        vader_hub.weights.WeightsError: For a weights file that does not fit (see ``load_pretrained``).
    """
    try:
        if args.weights is not None:
            return _from_file(Path(args.weights), device, args.model)
        name = args.model or default_model_name()
        if args.model is None and announce:
            print(f"using {name}: the default, the best model that has weights (choose another with --model "
                  "NAME[.TAG] or --weights FILE)", file=sys.stderr)
        model, _ = resolve_model(name, device)
        return ChosenModel(model, name, None)
    except WeightsNotFoundError as error:
        raise WeightsNotFoundError(f"{error}\n{CLI_HINT}") from error


def architecture_name(args: argparse.Namespace) -> str:
    """The architecture that ``--model`` / ``--weights`` name, else the default model's (e.g. for random weights).

    Raises:
        WeightsNotFoundError: With neither option, if no model has weights to choose a default by.
        vader_hub.weights.WeightsError: For a ``--weights`` file that records no VADeR architecture.
    """
    if args.weights is not None:
        return recorded_architecture(args.weights)
    return (args.model or default_model_name()).split(".", 1)[0]


def _from_file(path: Path, device: Union[None, str, torch.device], model: Optional[str]) -> ChosenModel:
    architecture = recorded_architecture(path)
    if model is not None and model != architecture:
        raise ValueError(f"{path} holds weights for {architecture}, not --model {model}; pass one of --model "
                         "NAME[.TAG] and --weights FILE (the file records its architecture)")
    model = timm.create_model(architecture, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    return ChosenModel(model.eval().to(parse_device(device) or torch.device("cpu")), architecture, path)
