"""The command line's one way to choose a network: ``--model NAME[.TAG]`` or ``--weights FILE``.

Every sub-command and example that runs a network takes these two options and builds it with
:func:`load_model`: a named model with its verified pretrained weights, a weights file of yours
(architecture read from the file), or, with neither, the best model that has weights
(:func:`vader_hub.models.default_model_name`), announced on stderr so the user knows which.
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


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive ``--model NAME[.TAG]`` and ``--weights FILE`` options to ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", metavar="NAME[.TAG]",
                       help="a VADeR model with its pretrained weights, verified (default: the best model "
                       "that has weights; `vader-hub weights list` shows them)")
    group.add_argument("--weights", type=Path, metavar="FILE",
                       help="a vader-hub .safetensors weights file (its architecture is read from the file)")


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
            return _from_file(Path(args.weights), device)
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


def _from_file(path: Path, device: Union[None, str, torch.device]) -> ChosenModel:
    architecture = recorded_architecture(path)
    model = timm.create_model(architecture, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    return ChosenModel(model.eval().to(parse_device(device) or torch.device("cpu")), architecture, path)
