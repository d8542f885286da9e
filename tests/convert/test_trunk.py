"""Trunk import checks: depth mismatch, missing and misshapen tensors, loading into a model."""
from pathlib import Path

import pytest
import timm
import torch
import torchvision

from vader_hub.convert import import_trunk, load_trunk, load_trunk_into, trunk_shapes

from .projects import randomize_, torchvision_resnet


def test_trunk_shapes_are_the_models_trunk_parameters() -> None:
    model = timm.create_model("vader_r50_fpn")
    expected = {name[len("trunk."):]: tensor.shape for name, tensor in model.state_dict().items()
                if name.startswith("trunk.")}
    assert trunk_shapes("vader_r50_fpn") == expected
    assert len(expected) == len(torchvision.models.resnet50().state_dict()) - 2  # no fc.weight, fc.bias


def test_resnet18_weights_into_vader_r50_is_a_depth_mismatch() -> None:
    state = torchvision_resnet("resnet18").state_dict()
    with pytest.raises(ValueError) as error:
        import_trunk(state, "vader_r50_fpn", source="r18.pth")
    message = str(error.value)
    assert "r18.pth holds a ResNet-18 (BasicBlock 2-2-2-2) trunk" in message
    assert "vader_r50_fpn has a ResNet-50 (Bottleneck 3-4-6-3) trunk" in message
    assert "use --model vader_r18_fpn" in message


def test_resnet152_has_no_vader_model() -> None:
    with pytest.raises(ValueError, match="ResNet-152 .* no vader-hub model has this trunk"):
        import_trunk(torchvision_resnet("resnet152").state_dict(), "vader_r101_fpn")


def test_missing_tensors_are_named() -> None:
    state = torchvision_resnet("resnet18").state_dict()
    del state["layer3.1.bn2.running_mean"], state["layer4.0.downsample.0.weight"]
    with pytest.raises(ValueError, match="lacks 2 trunk tensors: layer3.1.bn2.running_mean, layer4.0.downsample.0"):
        import_trunk(state, "vader_r18_fpn")


def test_wide_resnet_has_the_right_depth_but_wrong_shapes() -> None:
    state = torchvision_resnet("wide_resnet50_2").state_dict()
    expected = r"176 trunk tensors of the wrong shape .*layer1\.0\.conv1\.weight \(128, 64, 1, 1\) \(expected \(64, 64"
    with pytest.raises(ValueError, match=expected):
        import_trunk(state, "vader_r50_fpn")


def test_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet50'.*vader_r18_fpn"):
        import_trunk(torchvision_resnet("resnet50").state_dict(), "resnet50")


def test_unreadable_or_absent_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_trunk(tmp_path / "absent.pth", "vader_r18_fpn")
    with pytest.raises(ValueError, match="no tensors behind prefix 'nothing.'"):
        import_trunk({"model": {"a": torch.zeros(1)}}, "vader_r18_fpn", container="model", prefix="nothing.")


def test_load_trunk_into_sets_the_trunk_and_leaves_the_decoder() -> None:
    source = randomize_(torchvision_resnet("resnet18"), seed=11)
    model = timm.create_model("vader_r18_fpn")
    decoder_before = {name: tensor.clone() for name, tensor in model.decoder.state_dict().items()}
    load_trunk_into(model, import_trunk(source.state_dict(), "vader_r18_fpn"))
    for name, tensor in model.trunk.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[name]), name
    for name, tensor in model.decoder.state_dict().items():
        assert torch.equal(tensor, decoder_before[name]), name


def test_load_trunk_into_refuses_another_architecture() -> None:
    trunk = import_trunk(torchvision_resnet("resnet18").state_dict(), "vader_r18_fpn")
    with pytest.raises(ValueError, match="does not have the vader_r18_fpn trunk"):
        load_trunk_into(timm.create_model("vader_r50_fpn"), trunk)
