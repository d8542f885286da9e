"""torch.hub entry points of vader-hub.

    import torch
    model = torch.hub.load("<owner>/vader-hub", "vader_r18_fpn", pretrained=True)   # the shipped weights
    model = torch.hub.load("/path/to/checkout", "vader_r18_fpn", source="local")

Each entry point returns the same network as ``timm.create_model(<name>)`` and takes the same keyword
arguments (``num_classes``, ``features_only``, ``pretrained_cfg_overlay=dict(file=...)``, ...).
Imports live inside the entry points: torch.hub imports this file before it checks ``dependencies``,
so a missing package is then reported by name instead of failing at import.
"""

dependencies = [
    "torch", "torchvision", "timm", "safetensors", "huggingface_hub", "requests", "PIL", "numpy", "filelock", "tqdm",
]


def _make_vader(name: str, pretrained: bool, tag: str | None, **kwargs):
    import timm

    import vader_hub  # noqa: F401  (registers the VADeR models with timm)

    return timm.create_model(f"{name}.{tag}" if tag else name, pretrained=pretrained, **kwargs)


def vader_r18_fpn(*, pretrained: bool = False, tag: str | None = None, **kwargs):
    """VADeR ResNet-18 FPN: (B, 3, H, W) -> (B, 128, ceil(H/4), ceil(W/4)) dense features.

    ``pretrained=True`` loads the manifest's weights (default tag, or ``tag``) after checking their sha256.
    """
    return _make_vader("vader_r18_fpn", pretrained, tag, **kwargs)


def vader_r50_fpn(*, pretrained: bool = False, tag: str | None = None, **kwargs):
    """VADeR ResNet-50 FPN, the paper's network: (B, 3, H, W) -> (B, 128, ceil(H/4), ceil(W/4)) dense features.

    ``pretrained=True`` loads the manifest's weights (default tag, or ``tag``) after checking their sha256.
    """
    return _make_vader("vader_r50_fpn", pretrained, tag, **kwargs)


def vader_r101_fpn(*, pretrained: bool = False, tag: str | None = None, **kwargs):
    """VADeR ResNet-101 FPN: (B, 3, H, W) -> (B, 128, ceil(H/4), ceil(W/4)) dense features.

    ``pretrained=True`` loads the manifest's weights (default tag, or ``tag``) after checking their sha256.
    """
    return _make_vader("vader_r101_fpn", pretrained, tag, **kwargs)
