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
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Tuple, Type, Union

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureGetterNet
from timm.models._hub import save_config_for_hf
from timm.models.resnet import BasicBlock, Bottleneck

from ..weights import load_pretrained, load_state_dict_strict
from ..weights.errors import WeightsNotFoundError
from ..weights.manifest import WeightsEntry, manifests_signature, read_readable_manifests
from ..weights.names import check_architecture
from .vader import MIN_INPUT_SIZE, VaderFPN


@dataclass(frozen=True)
class Trunk:
    """One registered backbone: a timm ResNet trunk under the FPN decoder.

    Attributes:
        block: The ResNet block type.
        layers: Blocks per stage.
        summary: How the model's docstring describes it (``torch.hub.help`` and ``help()`` show it).
    """

    block: Type[Union[BasicBlock, Bottleneck]]
    layers: Tuple[int, int, int, int]
    summary: str


# The one table of backbones: an entry here is a timm model, a torch.hub entry point and a row of
# `vader-hub info`; its weights, if any, are manifest entries.
TRUNKS: Dict[str, Trunk] = {
    "vader_r18_fpn": Trunk(BasicBlock, (2, 2, 2, 2), "a ResNet-18 trunk (small: tests, CPU)"),
    "vader_r50_fpn": Trunk(Bottleneck, (3, 4, 6, 3), "a ResNet-50 trunk, the paper's network"),
    "vader_r101_fpn": Trunk(Bottleneck, (3, 4, 23, 3), "a ResNet-101 trunk"),
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
        interpolation="bilinear",  # what the trainer and dense_transform resize with
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
    entries = read_readable_manifests().entries
    for architecture in TRUNKS:
        tagged = {e.name: _entry_cfg(e) for e in entries if e.architecture == architecture}
        cfgs.update(tagged or {architecture: _cfg()})
    return generate_default_cfgs(cfgs)


default_cfgs = _default_cfgs()
_registered_manifests = manifests_signature()


def refresh_registrations() -> None:
    """Register the manifests' tags with timm again if the manifests changed since they were registered.

    ``VADER_HUB_MANIFEST`` may be set, or a manifest written, after ``import vader_hub`` (a
    notebook): the create functions and the tag lists call this first, so they see the manifests
    the loader reads.
    """
    global default_cfgs, _registered_manifests
    signature = manifests_signature()
    if signature == _registered_manifests:
        return
    default_cfgs, _registered_manifests = _default_cfgs(), signature
    with warnings.catch_warnings():  # timm re-registers a name in place, with a warning meant for clashes
        warnings.filterwarnings("ignore", message="Overwriting vader_", category=UserWarning)
        for create in CREATE_FUNCTIONS.values():
            register_model(create)


def pretrained_names() -> List[str]:
    """Every ``architecture.tag`` with weights in the manifests, in preference order.

    Returns:
        The names, architectures in :data:`DEFAULT_PREFERENCE` order, each architecture's tags in
        manifest order (the first is its default).
    """
    refresh_registrations()
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


def model_for_state_dict(architecture: str, state_dict: Mapping[str, torch.Tensor], origin: str) -> VaderFPN:
    """A fresh ``architecture`` network holding ``state_dict``, with a head as wide as the state dict's.

    The one check that a state dict is weights of this architecture: keys and shapes must be
    exactly the network's, reported as the loader reports them.

    Args:
        architecture: A registered VADeR name, e.g. ``"vader_r18_fpn"``.
        state_dict: The network's tensors; ``head.weight`` sets ``num_classes`` (none: no head).
        origin: Where the tensors came from, for messages.

    Returns:
        The network, holding the tensors (floating-point ones cast to its dtype).

    Raises:
        UnknownModelError: For an architecture that is not registered.
        StateDictMismatchError: Listing the missing, unexpected and reshaped keys.
    """
    head = state_dict.get("head.weight")
    num_classes = int(head.shape[0]) if head is not None else 0
    model = CREATE_FUNCTIONS[check_architecture(architecture)](num_classes=num_classes)
    load_state_dict_strict(model, state_dict, origin)
    return model


def hub_config(model: VaderFPN) -> Dict[str, Any]:
    """timm's Hugging Face Hub ``config.json`` of a network, exactly as timm's ``save_for_hf`` writes it.

    Args:
        model: A VADeR network built by timm (it has a ``pretrained_cfg``).

    Returns:
        ``architecture``, ``num_classes``, ``num_features``, ``model_args`` and the full
        ``pretrained_cfg`` (mean, std, interpolation, ``crop_pct``, ``min_input_size``, ...), so that a
        network built from it is this network.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        save_config_for_hf(model, str(path))
        return json.loads(path.read_text(encoding="utf-8"))


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
    trunk = TRUNKS[variant]
    model = build_model_with_cfg(VaderFPN, variant, pretrained=False, block=trunk.block, layers=trunk.layers, **kwargs)
    if pretrained:
        load_pretrained(model, model.pretrained_cfg)
    if not features_only:
        return model
    pretrained_cfg = model.pretrained_cfg
    features = FeatureGetterNet(model, out_indices=out_indices)
    features.pretrained_cfg = features.default_cfg = pretrained_cfg_for_features(pretrained_cfg)
    return features


def _registered(architecture: str) -> Callable[..., VaderFPN]:
    """Register ``architecture`` with timm under its own name; returns its create function."""
    def create(pretrained: bool = False, **kwargs: Any) -> VaderFPN:
        refresh_registrations()
        return _create_vader(architecture, pretrained, **kwargs)

    create.__name__ = create.__qualname__ = architecture
    create.__doc__ = (f"VADeR with {TRUNKS[architecture].summary} and an FPN decoder: 128-d features at stride 4.\n\n"
                      "Arguments, result and errors: :func:`vader_hub.models.registry._create_vader`.")
    return register_model(create)


CREATE_FUNCTIONS = {architecture: _registered(architecture) for architecture in TRUNKS}
