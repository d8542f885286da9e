"""Trunk export to torchvision, timm and detectron2; round trips; the decoder on its own."""
import pickle
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
import timm
import torch
from torch import nn

from vader_hub.convert import detectron2_name, export_decoder, export_trunk, import_trunk, save_export

from .projects import torchvision_resnet

INPUT = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))


def _torchvision_stages(network: nn.Module, x: torch.Tensor) -> list:
    x = network.maxpool(network.relu(network.bn1(network.conv1(x))))
    stages = []
    for layer in (network.layer1, network.layer2, network.layer3, network.layer4):
        x = layer(x)
        stages.append(x)
    return stages


@pytest.mark.parametrize("target", ["torchvision", "timm"])
def test_vader_r50_round_trip_is_bitwise(vader_r50: nn.Module, target: str) -> None:
    state = vader_r50.state_dict()
    exported = export_trunk(state, to=target)
    back = import_trunk(exported, "vader_r50_fpn").state_dict
    trunk = {name: tensor for name, tensor in state.items() if name.startswith("trunk.")}
    assert set(back) == set(trunk)
    for name, tensor in trunk.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name


def test_torchvision_resnet50_from_export_gives_the_vader_stages(vader_r50: nn.Module) -> None:
    network = torchvision_resnet("resnet50")
    network.fc = nn.Identity()
    network.load_state_dict(export_trunk(vader_r50.state_dict(), to="torchvision"), strict=True)
    network.eval()
    with torch.no_grad():
        expected, actual = vader_r50.forward_trunk(INPUT), _torchvision_stages(network, INPUT)
    for level, (want, got) in enumerate(zip(expected, actual, strict=True)):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=f"stage C{level + 2}")


def test_timm_resnet50_from_export_gives_the_vader_stages(vader_r50: nn.Module) -> None:
    network = timm.create_model("resnet50", num_classes=0)
    network.load_state_dict(export_trunk(vader_r50.state_dict(), to="timm"), strict=True)
    network.eval()
    with torch.no_grad():
        expected = vader_r50.forward_trunk(INPUT)
        actual = network.forward_intermediates(INPUT, indices=[1, 2, 3, 4], intermediates_only=True)
    for level, (want, got) in enumerate(zip(expected, actual, strict=True)):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=f"stage C{level + 2}")


def test_timm_loads_the_saved_export_through_its_own_pretrained_path(vader_r18: nn.Module, tmp_path: Path) -> None:
    path = save_export(export_trunk(vader_r18.state_dict(), to="timm"), "timm", tmp_path / "r18.safetensors")
    network = timm.create_model("resnet18", pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(path)})
    assert torch.equal(network.layer4[1].bn2.running_var, vader_r18.trunk.layer4[1].bn2.running_var)
    assert torch.equal(network.conv1.weight, vader_r18.trunk.conv1.weight)


def test_torchvision_export_file_loads_with_weights_only(vader_r18: nn.Module, tmp_path: Path) -> None:
    path = save_export(export_trunk(vader_r18.state_dict(), to="torchvision"), "torchvision", tmp_path / "r18.pth")
    network = torchvision_resnet("resnet18")
    network.fc = nn.Identity()
    network.load_state_dict(torch.load(path, weights_only=True), strict=True)
    expected = vader_r18.trunk.layer2[0].downsample[1].running_mean
    assert torch.equal(network.layer2[0].downsample[1].running_mean, expected)


# detectron2's ResNet, from detectron2/modeling/backbone/resnet.py build_resnet_backbone with the
# default config (STEM_OUT_CHANNELS 64, RES2_OUT_CHANNELS 256 (64 for R18/R34), NUM_GROUPS 1,
# WIDTH_PER_GROUP 64, NORM FrozenBN: weight, bias, running_mean, running_var buffers).
DETECTRON2_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}


def detectron2_resnet_shapes(depth: int) -> Dict[str, Tuple[int, ...]]:
    """Every key and shape of detectron2's ResNet backbone (stem + res2..res5) for ``depth``."""

    def conv(name: str, out_channels: int, in_channels: int, kernel: int) -> Dict[str, Tuple[int, ...]]:
        buffers = ("weight", "bias", "running_mean", "running_var")
        norm = {f"{name}.norm.{buffer}": (out_channels,) for buffer in buffers}
        return {f"{name}.weight": (out_channels, in_channels, kernel, kernel), **norm}

    basic = depth in (18, 34)
    shapes = conv("stem.conv1", 64, 3, 7)
    in_channels, out_channels, bottleneck = 64, 64 if basic else 256, 64
    for stage, blocks in enumerate(DETECTRON2_BLOCKS[depth]):
        for block in range(blocks):
            prefix = f"res{stage + 2}.{block}"
            if in_channels != out_channels:
                shapes.update(conv(f"{prefix}.shortcut", out_channels, in_channels, 1))
            if basic:
                shapes.update(conv(f"{prefix}.conv1", out_channels, in_channels, 3))
                shapes.update(conv(f"{prefix}.conv2", out_channels, out_channels, 3))
            else:
                shapes.update(conv(f"{prefix}.conv1", bottleneck, in_channels, 1))
                shapes.update(conv(f"{prefix}.conv2", bottleneck, bottleneck, 3))
                shapes.update(conv(f"{prefix}.conv3", out_channels, bottleneck, 1))
            in_channels = out_channels
        out_channels, bottleneck = out_channels * 2, bottleneck * 2
    return shapes


@pytest.mark.parametrize("fixture, depth", [("vader_r18", 18), ("vader_r50", 50)])
def test_detectron2_export_has_detectron2s_keys_and_shapes(fixture: str, depth: int, request) -> None:
    model = request.getfixturevalue(fixture)
    exported = export_trunk(model.state_dict(), to="detectron2")
    assert exported["__author__"] == "vader-hub" and exported["matching_heuristics"] is True
    weights = exported["model"]
    assert {name: array.shape for name, array in weights.items()} == detectron2_resnet_shapes(depth)
    assert all(isinstance(array, np.ndarray) and array.dtype == np.float32 for array in weights.values())
    np.testing.assert_array_equal(weights["res3.0.shortcut.norm.running_var"],
                                  model.trunk.layer2[0].downsample[1].running_var.numpy())
    np.testing.assert_array_equal(weights["stem.conv1.norm.bias"], model.trunk.bn1.bias.detach().numpy())


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Reads back our own .pkl allowing numpy arrays only (as a safety net, not detectron2's reader)."""

    def find_class(self, module: str, name: str):
        if module.startswith("numpy") and name in ("_reconstruct", "ndarray", "dtype", "scalar"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def test_detectron2_pickle_is_what_detectron2s_checkpointer_reads(vader_r18: nn.Module, tmp_path: Path) -> None:
    exported = export_trunk(vader_r18.state_dict(), to="detectron2")
    path = save_export(exported, "detectron2", tmp_path / "r18_d2.pkl")
    with path.open("rb") as handle:
        data = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    # detectron2 Checkpointer._load_file: a .pkl with "model" and "__author__" is taken as is.
    assert {"model", "__author__", "matching_heuristics"} <= set(data)
    assert data["model"].keys() == exported["model"].keys()
    np.testing.assert_array_equal(data["model"]["res5.1.conv2.weight"], vader_r18.trunk.layer4[1].conv2.weight.detach())
    with pytest.raises(ValueError, match=r"\.pkl"):
        save_export(exported, "detectron2", tmp_path / "r18_d2.pth")


def test_detectron2_names_follow_convert_torchvision_to_d2() -> None:
    assert detectron2_name("conv1.weight") == "stem.conv1.weight"
    assert detectron2_name("bn1.running_mean") == "stem.conv1.norm.running_mean"
    assert detectron2_name("layer1.0.bn3.weight") == "res2.0.conv3.norm.weight"
    assert detectron2_name("layer4.2.conv2.weight") == "res5.2.conv2.weight"
    assert detectron2_name("layer2.0.downsample.0.weight") == "res3.0.shortcut.weight"
    assert detectron2_name("layer3.0.downsample.1.bias") == "res4.0.shortcut.norm.bias"


def test_decoder_export_is_the_decoder(vader_r18: nn.Module) -> None:
    decoder = export_decoder(vader_r18.state_dict())
    assert decoder.keys() == vader_r18.decoder.state_dict().keys()
    for name, tensor in vader_r18.decoder.state_dict().items():
        assert torch.equal(decoder[name], tensor), name


def test_export_errors() -> None:
    with pytest.raises(ValueError, match="unknown export target 'mmdet'"):
        export_trunk({}, to="mmdet")
    plain = torchvision_resnet("resnet18").state_dict()
    with pytest.raises(ValueError, match=r"no 'trunk\.\*' tensors .*\['bn1\.', 'conv1\.', 'fc\.'"):
        export_trunk(plain, to="torchvision")
    with pytest.raises(ValueError, match=r"no 'decoder\.\*' tensors"):
        export_decoder(plain)
