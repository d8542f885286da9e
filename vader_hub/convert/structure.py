"""What ResNet a set of torchvision/timm parameter names describes: block type and blocks per stage.

Used to name a checkpoint's trunk in messages ("ResNet-18 (BasicBlock 2-2-2-2)") and to refuse a
depth mismatch before any tensor is compared.
"""
import re
from dataclasses import dataclass
from typing import Dict, Iterable, Set, Tuple

STEM_KEY = "conv1.weight"
_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.conv1\.weight$")

KNOWN_RESNETS: Dict[Tuple[str, Tuple[int, ...]], str] = {
    ("BasicBlock", (2, 2, 2, 2)): "ResNet-18",
    ("BasicBlock", (3, 4, 6, 3)): "ResNet-34",
    ("Bottleneck", (3, 4, 6, 3)): "ResNet-50",
    ("Bottleneck", (3, 4, 23, 3)): "ResNet-101",
    ("Bottleneck", (3, 8, 36, 3)): "ResNet-152",
}


@dataclass(frozen=True)
class ResNetStructure:
    """Block type and depth of a ResNet trunk.

    Attributes:
        block: ``"BasicBlock"`` or ``"Bottleneck"``.
        blocks_per_stage: Number of blocks in each stage, e.g. ``(3, 4, 6, 3)``.
    """

    block: str
    blocks_per_stage: Tuple[int, ...]

    @property
    def name(self) -> str:
        """``"ResNet-50"`` for the standard depths, ``"ResNet"`` otherwise."""
        return KNOWN_RESNETS.get((self.block, self.blocks_per_stage), "ResNet")

    def describe(self) -> str:
        """E.g. ``"ResNet-50 (Bottleneck 3-4-6-3)"``."""
        counts = "-".join(str(count) for count in self.blocks_per_stage)
        return f"{self.name} ({self.block} {counts})"


def resnet_structure(names: Iterable[str]) -> ResNetStructure:
    """Read the ResNet structure from torchvision/timm parameter names (no prefix).

    Args:
        names: Parameter names such as ``conv1.weight``, ``layer1.0.conv1.weight``.

    Returns:
        The block type and the blocks per stage.

    Raises:
        ValueError: If the names have no ResNet stem or stages, or a stage skips a block index.
    """
    names = set(names)
    blocks: Dict[int, Set[int]] = {}
    for name in names:
        match = _BLOCK_KEY.match(name)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if STEM_KEY not in names or not blocks:
        raise ValueError(
            f"these tensors are not a torchvision/timm ResNet: expected '{STEM_KEY}' and 'layer1.0.conv1.weight', "
            f"found e.g. {sorted(names)[:6]}"
        )
    stages = sorted(blocks)
    if stages != list(range(1, len(stages) + 1)):
        raise ValueError(f"ResNet stages must be layer1, layer2, ... without gaps, found layers {stages}")
    for stage in stages:
        if sorted(blocks[stage]) != list(range(len(blocks[stage]))):
            raise ValueError(f"layer{stage} has blocks {sorted(blocks[stage])}: block indices must be 0, 1, 2, ...")
    block = "Bottleneck" if "layer1.0.conv3.weight" in names else "BasicBlock"
    return ResNetStructure(block=block, blocks_per_stage=tuple(len(blocks[stage]) for stage in stages))
