"""torch.hub entry points of vader-hub: one per registered VADeR model (``vader_hub.models.TRUNKS``).

    import torch
    torch.hub.list("<owner>/vader-hub")                                              # the entry points
    model = torch.hub.load("<owner>/vader-hub", "vader_r18_fpn", pretrained=True)   # the shipped weights
    model = torch.hub.load("/path/to/checkout", "vader_r18_fpn", source="local")

Each entry point returns the same network as ``timm.create_model(<name>)`` and takes the same keyword
arguments (``num_classes``, ``features_only``, ``pretrained_cfg_overlay=dict(file=...)``, ...), plus
``tag`` to pick pretrained weights. The entry points are made on first use from the registry, so this
file imports nothing at import time: torch.hub imports it before it checks ``dependencies``, and a
missing package is then reported by name instead of failing here.
"""

import importlib
import os
import sys

dependencies = [
    "torch", "torchvision", "timm", "safetensors", "huggingface_hub", "requests", "PIL", "numpy", "filelock", "tqdm",
]


def _models():
    """``vader_hub.models`` of the checkout beside this file, unless the process already imported vader_hub.

    torch.hub takes its checkout off ``sys.path`` right after importing this file, before it lists
    the entry points, so the checkout is put back just for this import.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    try:
        return importlib.import_module("vader_hub.models")
    finally:
        sys.path.remove(here)


def _architectures() -> list:
    return list(_models().TRUNKS)


def _entry_point(name: str):
    import timm

    create_functions = _models().CREATE_FUNCTIONS

    def entry_point(*, pretrained: bool = False, tag: str | None = None, **kwargs):
        return timm.create_model(f"{name}.{tag}" if tag else name, pretrained=pretrained, **kwargs)

    entry_point.__name__ = entry_point.__qualname__ = name
    entry_point.__doc__ = (
        f"{create_functions[name].__doc__.splitlines()[0]}\n\n"
        "(B, 3, H, W) -> (B, 128, ceil(H/4), ceil(W/4)) dense features. ``pretrained=True`` loads the manifest's "
        "weights (the default tag, or ``tag``) after checking their sha256."
    )
    return entry_point


def __getattr__(name: str):
    if not name.startswith("_") and name in _architectures():
        return _entry_point(name)
    raise AttributeError(f"hubconf has no entry point {name!r}")


def __dir__() -> list:
    return sorted([*globals(), *_architectures()])
