"""timm registrations of the VADeR networks, with pretrained cfgs generated from the weights manifests.

``import vader_hub`` runs this module: ``timm.list_models("vader_*")`` then lists the models, and
every ``model.tag`` of the bundled manifest and of the user's ``VADER_HUB_MANIFEST`` files is a known
pretrained tag (``timm.create_model("vader_r50_fpn.<tag>", pretrained=True)``).

Pretrained weights never go through timm's own loader: the create function builds the network, then
hands it to :func:`vader_hub.weights.load_pretrained`, which resolves the file (an explicit
``pretrained_cfg_overlay=dict(file=...)`` first, then the cache, then the manifest's sources),
checks its sha256 on the very bytes it deserialises, and loads it strictly. ``checkpoint_path=`` is
timm's own, unverified path and bypasses all of this.
"""
from typing import Any, Dict, List

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureGetterNet
from timm.models.resnet import BasicBlock, Bottleneck

from ..weights import load_pretrained
from ..weights.errors import WeightsNotFoundError
from ..weights.manifest import WeightsEntry, read_manifests
from .vader import MIN_INPUT_SIZE, VaderFPN

TRUNKS: Dict[str, dict] = {
    "vader_r18_fpn": dict(block=BasicBlock, layers=(2, 2, 2, 2)),
    "vader_r50_fpn": dict(block=Bottleneck, layers=(3, 4, 6, 3)),
    "vader_r101_fpn": dict(block=Bottleneck, layers=(3, 4, 23, 3)),
}
# The order in which a default is chosen among architectures that have weights: the paper's network
# first, then the larger and the smaller trunk.
DEFAULT_PREFERENCE = ("vader_r50_fpn", "vader_r101_fpn", "vader_r18_fpn")
PAPER = dict(
    paper_name="Unsupervised Learning of Dense Visual Representations (NeurIPS 2020)",
    paper_ids="arXiv:2011.05499",
)
CODE_LICENSE = "apache-2.0"


def _cfg(**kwargs: Any) -> Dict[str, Any]:
    """A dense-model cfg: no classes, no pooling, no centre crop, at least 32 px."""
    return dict(
        num_classes=0,
        input_size=(3, 224, 224),
        min_input_size=(3, MIN_INPUT_SIZE, MIN_INPUT_SIZE),
        pool_size=None,
        crop_pct=1.0,
        interpolation="bicubic",
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        first_conv="trunk.conv1",
        classifier="head",
        license=CODE_LICENSE,
        **PAPER,
        **kwargs,
    )


def _entry_cfg(entry: WeightsEntry) -> Dict[str, Any]:
    """The timm cfg of one manifest entry; its source fields are descriptive only (timm never loads)."""
    return {**_cfg(), "license": entry.license, "description": entry.description, **entry.timm_source()}


def _default_cfgs() -> dict:
    cfgs: Dict[str, Dict[str, Any]] = {}
    entries = read_manifests().entries
    for architecture in TRUNKS:
        tagged = {e.name: _entry_cfg(e) for e in entries if e.architecture == architecture}
        cfgs.update(tagged or {architecture: _cfg()})
    return generate_default_cfgs(cfgs)


default_cfgs = _default_cfgs()


def pretrained_names() -> List[str]:
    """Every ``architecture.tag`` with weights in the manifests read at import, in preference order.

    Returns:
        The names, architectures in :data:`DEFAULT_PREFERENCE` order, each architecture's tags in
        manifest order (the first is its default).
    """
    return [f"{architecture}.{tag}" if tag else architecture
            for architecture in DEFAULT_PREFERENCE
            for tag in default_cfgs[architecture].tags if default_cfgs[architecture].cfgs[tag].has_weights]


def default_model_name() -> str:
    """The model that defaults use: the preferred architecture that has weights, with its default tag.

    Returns:
        A timm name ``"architecture.tag"`` (today ``vader_r18_fpn`` with the bundled weights' tag).

    Raises:
        WeightsNotFoundError: If no manifest lists weights for any VADeR model.
    """
    names = pretrained_names()
    if not names:
        raise WeightsNotFoundError(
            "no VADeR model has weights in the manifests read (the bundled one and VADER_HUB_MANIFEST); "
            "name a model and its weights file explicitly, or train and export weights (`vader-hub weights export`)"
        )
    return names[0]


def _create_vader(variant: str, pretrained: bool = False, **kwargs: Any) -> VaderFPN:
    """Build a VADeR network; load verified weights if ``pretrained``; wrap it if ``features_only``.

    Args:
        variant: The registered name, a key of ``TRUNKS``.
        pretrained: Load verified weights for the cfg's tag (:func:`vader_hub.weights.load_pretrained`).
        **kwargs: Passed to timm's ``build_model_with_cfg`` (e.g. ``pretrained_cfg_overlay``) and on to
            :class:`VaderFPN` (e.g. ``num_classes``); ``features_only``, ``out_indices`` and ``feature_cls``
            (``"getter"`` only) ask for timm's feature wrapper instead.

    Returns:
        The :class:`VaderFPN`, or a ``FeatureGetterNet`` around it if ``features_only``.

    Raises:
        ValueError: For a ``feature_cls`` other than ``"getter"``; and the errors of ``load_pretrained``.
    """
    features_only = kwargs.pop("features_only", False)
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    feature_cls = kwargs.pop("feature_cls", "getter")
    if features_only and feature_cls != "getter":
        raise ValueError(
            f"feature_cls={feature_cls!r} is not supported: timm's hook and list wrappers cannot tap a nested "
            "trunk or a top-down FPN; use the default feature_cls='getter'"
        )
    model = build_model_with_cfg(VaderFPN, variant, pretrained=False, **dict(TRUNKS[variant], **kwargs))
    if pretrained:
        load_pretrained(model, model.pretrained_cfg)
    if not features_only:
        return model
    pretrained_cfg = model.pretrained_cfg
    features = FeatureGetterNet(model, out_indices=out_indices)
    features.pretrained_cfg = features.default_cfg = pretrained_cfg_for_features(pretrained_cfg)
    return features


@register_model
def vader_r18_fpn(pretrained: bool = False, **kwargs: Any) -> VaderFPN:
    """VADeR with a ResNet-18 trunk and an FPN decoder: 128-d features at stride 4 (small: tests, CPU).

    Arguments, result and errors: :func:`_create_vader`.
    """
    return _create_vader("vader_r18_fpn", pretrained, **kwargs)


@register_model
def vader_r50_fpn(pretrained: bool = False, **kwargs: Any) -> VaderFPN:
    """VADeR with a ResNet-50 trunk and an FPN decoder, the paper's network: 128-d features at stride 4.

    Arguments, result and errors: :func:`_create_vader`.
    """
    return _create_vader("vader_r50_fpn", pretrained, **kwargs)


@register_model
def vader_r101_fpn(pretrained: bool = False, **kwargs: Any) -> VaderFPN:
    """VADeR with a ResNet-101 trunk and an FPN decoder: 128-d features at stride 4.

    Arguments, result and errors: :func:`_create_vader`.
    """
    return _create_vader("vader_r101_fpn", pretrained, **kwargs)
