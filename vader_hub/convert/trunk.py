"""Import a ResNet trunk from another project's checkpoint into a ``vader_*`` model's ``trunk.*`` names.

    from vader_hub.convert import load_trunk, load_trunk_into, save_trunk
    trunk = load_trunk("moco_v2_800ep_pretrain.pth.tar", "vader_r50_fpn")
    print(trunk.summary())
    save_trunk(trunk, "moco_v2_trunk.safetensors")       # starts the trainer: --init moco_v2_trunk.safetensors
    load_trunk_into(timm.create_model("vader_r50_fpn"), trunk)

The layout is detected (:mod:`.layouts`), the trunk is checked against the architecture's own
parameter names and shapes (a depth or width mismatch is refused), and only the trunk is kept: heads
such as MoCo's ``fc`` projection are reported as dropped. Tensors are passed through untouched.
"""
import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import timm
import torch
from torch import nn

from ..weights.names import check_architecture, vader_architectures
from .files import PathLike, read_checkpoint, write_safetensors
from .layouts import Layout, find_layout
from .structure import ResNetStructure, resnet_structure

TRUNK_PREFIX = "trunk."
TRUNK_FORMAT = "vader-hub-trunk/1"
BATCH_COUNTER = "num_batches_tracked"


@dataclass
class TrunkImport:
    """A trunk imported from a checkpoint, ready for a ``vader_*`` model.

    Attributes:
        state_dict: The trunk's tensors named ``trunk.*``, exactly the trunk of ``architecture``.
        architecture: The vader-hub model it fits, e.g. ``"vader_r50_fpn"``.
        layout: Name of the detected layout, e.g. ``"moco-v1/v2"``.
        layout_description: What produces that layout.
        container: Top-level key the tensors came from (None: the file itself).
        prefix: Name prefix stripped from the source names.
        source_structure: The source trunk, e.g. ``"ResNet-50 (Bottleneck 3-4-6-3)"``.
        source_keys: Number of tensors found behind the prefix.
        dropped_keys: Source names behind the prefix that are not trunk tensors (heads such as ``fc.*``).
        filled_keys: BatchNorm counters the source lacks (older torchvision files), set to 0.
    """

    state_dict: Dict[str, torch.Tensor]
    architecture: str
    layout: str
    layout_description: str
    container: Optional[str]
    prefix: str
    source_structure: str
    source_keys: int
    dropped_keys: List[str] = field(default_factory=list)
    filled_keys: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the user: layout, trunk, what was dropped or filled."""
        where = repr(self.container) if self.container is not None else "the top level"
        lines = [
            f"layout: {self.layout} ({self.layout_description}), prefix {self.prefix!r} in {where}",
            f"trunk: {self.source_structure}, {len(self.state_dict)} tensors -> {self.architecture}",
        ]
        if self.dropped_keys:
            shown = ", ".join(self.dropped_keys[:6]) + (", ..." if len(self.dropped_keys) > 6 else "")
            lines.append(f"dropped {len(self.dropped_keys)} non-trunk tensors: {shown}")
        if self.filled_keys:
            lines.append(f"filled {len(self.filled_keys)} missing BatchNorm counters ({BATCH_COUNTER}) with 0")
        return "\n".join(lines)


@functools.cache
def _trunk_shapes(architecture: str) -> Dict[str, torch.Size]:
    with torch.device("meta"):
        model = timm.create_model(architecture)
    return {
        name[len(TRUNK_PREFIX):]: tensor.shape
        for name, tensor in model.state_dict().items()
        if name.startswith(TRUNK_PREFIX)
    }


def trunk_shapes(architecture: str) -> Dict[str, torch.Size]:
    """Trunk parameter names (without ``trunk.``) and shapes of a vader-hub architecture.

    Args:
        architecture: A vader-hub model name, e.g. ``"vader_r50_fpn"``.

    Returns:
        ``{name: shape}`` for every trunk state-dict entry, BatchNorm buffers included; a fresh dict
        the caller may change (the model is built once per architecture, on the meta device).

    Raises:
        ValueError: If ``architecture`` is not a registered ``vader_*`` model.
    """
    return dict(_trunk_shapes(check_architecture(architecture)))


def _architecture_with(structure: ResNetStructure) -> Optional[str]:
    """The vader-hub architecture whose trunk has this structure, if any."""
    for architecture in vader_architectures():
        if resnet_structure(trunk_shapes(architecture)) == structure:
            return architecture
    return None


def _check_depth(found: Mapping[str, Any], expected: Mapping[str, Any], architecture: str, source: str) -> str:
    """Refuse a trunk of another depth or block type; return the source structure's description."""
    found_structure = resnet_structure(found)
    expected_structure = resnet_structure(expected)
    if found_structure != expected_structure:
        fitting = _architecture_with(found_structure)
        models = vader_architectures()
        advice = f"use --model {fitting}" if fitting else f"no vader-hub model has this trunk ({models})"
        raise ValueError(
            f"{source} holds a {found_structure.describe()} trunk, but {architecture} has a "
            f"{expected_structure.describe()} trunk: {advice}"
        )
    return found_structure.describe()


def _match_tensors(found: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size], source: str):
    """Pick the expected tensors from ``found``; fill BN counters; refuse missing or misshapen tensors."""
    state_dict, filled, missing, misshapen = {}, [], [], []
    for name, shape in expected.items():
        tensor = found.get(name)
        if tensor is None and name.endswith(BATCH_COUNTER):
            tensor = torch.zeros((), dtype=torch.long)  # absent from pre-1.0 torchvision files; a counter only
            filled.append(TRUNK_PREFIX + name)
        if tensor is None:
            missing.append(name)
        elif tensor.shape != shape:
            misshapen.append(f"{name} {tuple(tensor.shape)} (expected {tuple(shape)})")
        else:
            state_dict[TRUNK_PREFIX + name] = tensor
    if missing:
        raise ValueError(f"{source} lacks {len(missing)} trunk tensors: {', '.join(missing[:10])}")
    if misshapen:
        raise ValueError(
            f"{source} has {len(misshapen)} trunk tensors of the wrong shape (a wide or grouped ResNet?): "
            + ", ".join(misshapen[:10])
        )
    return state_dict, filled


def import_trunk(
    content: Mapping[str, Any],
    architecture: str,
    *,
    container: Optional[str] = None,
    prefix: Optional[str] = None,
    source: str = "checkpoint",
) -> TrunkImport:
    """Take the ResNet trunk out of a loaded checkpoint, named and checked for ``architecture``.

    Args:
        content: The checkpoint's top-level mapping (e.g. ``torch.load(path, weights_only=True)``).
        architecture: A vader-hub model name, e.g. ``"vader_r50_fpn"``.
        container: Top-level key holding the state dict; with ``prefix``, overrides detection.
        prefix: Name prefix in front of the torchvision/timm names; overrides detection.
        source: Name of the checkpoint in error messages.

    Returns:
        The trunk and what was found.

    Raises:
        ValueError: For an unknown layout (listing keys and prefixes), a depth mismatch, missing or
            misshapen tensors, or an unknown architecture.
    """
    expected = trunk_shapes(architecture)
    if container is None and prefix is None:
        layout = find_layout(content)
    else:
        layout = Layout("custom", "container and prefix given by the user", container, prefix or "")
        if layout.state_dict(content) is None:
            keys = list(content)[:20]
            raise ValueError(f"{source} has no mapping under container {container!r}; top-level keys: {keys}")
    found = layout.extract(content)
    if not found:
        raise ValueError(f"{source} has no tensors behind prefix {layout.prefix!r} in container {container!r}")
    structure = _check_depth(found, expected, architecture, source)
    state_dict, filled = _match_tensors(found, expected, source)
    return TrunkImport(
        state_dict=state_dict,
        architecture=architecture,
        layout=layout.name,
        layout_description=layout.description,
        container=layout.container,
        prefix=layout.prefix,
        source_structure=structure,
        source_keys=len(found),
        dropped_keys=sorted(set(found) - set(expected)),
        filled_keys=filled,
    )


def load_trunk(
    path: PathLike, architecture: str, *, container: Optional[str] = None, prefix: Optional[str] = None
) -> TrunkImport:
    """Read a checkpoint file (safetensors or ``torch.save``, never unsafe unpickling) and import its trunk.

    Args:
        path: The checkpoint file.
        architecture: A vader-hub model name, e.g. ``"vader_r50_fpn"``.
        container: Top-level key holding the state dict, to override detection (with ``prefix``).
        prefix: Name prefix in front of the torchvision/timm names, to override detection.

    Returns:
        The trunk named ``trunk.*`` and what was found (see :class:`TrunkImport`).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file cannot be read safely, or for the reasons of :func:`import_trunk`.
    """
    checkpoint = read_checkpoint(path)
    return import_trunk(checkpoint.content, architecture, container=container, prefix=prefix, source=str(path))


def save_trunk(trunk: TrunkImport, path: PathLike, overwrite: bool = False) -> None:
    """Write an imported trunk as safetensors (``trunk.*`` names; metadata: architecture, format, layout).

    Args:
        trunk: The result of :func:`load_trunk` or :func:`import_trunk`.
        path: The file to write, atomically.
        overwrite: Replace an existing file.

    Raises:
        FileNotFoundError: If the output folder does not exist.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    metadata = {"architecture": trunk.architecture, "format": TRUNK_FORMAT, "source_layout": trunk.layout}
    write_safetensors(trunk.state_dict, path, metadata, overwrite=overwrite)


def load_trunk_into(model: nn.Module, trunk: TrunkImport) -> None:
    """Load an imported trunk into a ``vader_*`` model, leaving its decoder and head as they are.

    Args:
        model: A model built for ``trunk.architecture`` (e.g. ``timm.create_model("vader_r50_fpn")``);
            changed in place.
        trunk: The result of :func:`load_trunk` or :func:`import_trunk`.

    Raises:
        ValueError: If the model's trunk does not have exactly these tensor names and shapes.
    """
    model_state = model.state_dict()
    mismatched = [
        name for name, tensor in trunk.state_dict.items()
        if name not in model_state or model_state[name].shape != tensor.shape
    ]
    untouched = [name for name in model_state if name.startswith(TRUNK_PREFIX) and name not in trunk.state_dict]
    if mismatched or untouched:
        raise ValueError(
            f"this model does not have the {trunk.architecture} trunk: {len(mismatched)} tensors absent or of "
            f"another shape (e.g. {mismatched[:3]}), {len(untouched)} trunk tensors not in the import "
            f"(e.g. {untouched[:3]}); build the model with timm.create_model({trunk.architecture!r})"
        )
    model.load_state_dict(trunk.state_dict, strict=False)
