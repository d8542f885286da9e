"""ResNet structure from parameter names, against the block counts of torchvision's own constructors."""
import pytest
import torch
import torchvision

from vader_hub.convert import resnet_structure


@pytest.mark.parametrize("arch, name", [
    ("resnet18", "ResNet-18"), ("resnet34", "ResNet-34"), ("resnet50", "ResNet-50"),
    ("resnet101", "ResNet-101"), ("resnet152", "ResNet-152"), ("wide_resnet50_2", "ResNet-50"),
])
def test_structure_matches_torchvisions_layers(arch: str, name: str) -> None:
    with torch.device("meta"):
        network = torchvision.models.__dict__[arch]()
    structure = resnet_structure(network.state_dict())
    layers = (network.layer1, network.layer2, network.layer3, network.layer4)
    assert structure.blocks_per_stage == tuple(len(layer) for layer in layers)
    assert structure.block == type(network.layer1[0]).__name__
    assert structure.name == name


def test_unusual_depth_is_described_not_named() -> None:
    names = ["conv1.weight"] + [f"layer{s}.{b}.conv1.weight" for s, n in ((1, 1), (2, 2)) for b in range(n)]
    structure = resnet_structure(names)
    assert structure.describe() == "ResNet (BasicBlock 1-2)"


@pytest.mark.parametrize("names, message", [
    (["layer1.0.conv1.weight"], "not a torchvision/timm ResNet"),
    (["conv1.weight", "encoder.layer1.0.conv1.weight"], "not a torchvision/timm ResNet"),
    (["conv1.weight", "layer1.0.conv1.weight", "layer3.0.conv1.weight"], r"without gaps, found layers \[1, 3\]"),
    (["conv1.weight", "layer1.0.conv1.weight", "layer1.2.conv1.weight"], r"layer1 has blocks \[0, 2\]"),
])
def test_not_a_resnet(names: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resnet_structure(names)
