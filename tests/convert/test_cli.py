"""The ``vader-hub convert`` sub-commands, run through their argparse registration."""
import argparse
from pathlib import Path
from typing import List

import pytest
import torch
from safetensors import safe_open
from torch import nn

from vader_hub.cli import convert as cli
from vader_hub.weights import export_weights

from . import projects


def run(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="vader-hub")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["convert", *argv])
    return args.func(args)


@pytest.fixture
def weights_file(vader_r18: nn.Module, tmp_path: Path) -> Path:
    """vader_r18 exported by the weights layer, as users get it."""
    result = export_weights(vader_r18.state_dict(), "vader_r18_fpn", tmp_path / "export", tag="test",
                            provenance={"data": "synthetic", "steps": 0})
    return result.weights


def test_import_writes_the_trunk_and_keeps_existing_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = projects.moco_v1_v2(mlp=True)
    torch.save(checkpoint.content, tmp_path / "moco.pth.tar")
    out = tmp_path / "trunk.safetensors"
    assert run(["import", str(tmp_path / "moco.pth.tar"), "--model", "vader_r18_fpn", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "layout: moco-v1/v2" in printed and "dropped 4 non-trunk tensors" in printed
    with safe_open(str(out), "pt") as handle:
        assert torch.equal(handle.get_tensor("trunk.layer3.0.conv2.weight"), checkpoint.encoder.layer3[0].conv2.weight)
    written = out.read_bytes()
    assert run(["import", str(tmp_path / "moco.pth.tar"), "--model", "vader_r18_fpn", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == written


def test_import_of_an_unknown_layout_explains(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.save({"net": {"body.conv1.weight": torch.zeros(64, 3, 7, 7)}}, tmp_path / "odd.pth")
    assert run(["import", str(tmp_path / "odd.pth"), "--model", "vader_r18_fpn", "--out", str(tmp_path / "t.st")]) == 2
    error = capsys.readouterr().err
    assert "unknown checkpoint layout" in error and "'net' (dict)" in error and "body. (1)" in error
    assert not (tmp_path / "t.st").exists()


def test_export_torchvision_and_detectron2_with_decoder(weights_file: Path, vader_r18: nn.Module,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["export", str(weights_file), "--to", "torchvision", "--out", str(tmp_path / "tv.pth")]) == 0
    network = projects.torchvision_resnet("resnet18")
    network.fc = nn.Identity()
    network.load_state_dict(torch.load(tmp_path / "tv.pth", weights_only=True), strict=True)
    assert torch.equal(network.layer4[0].downsample[0].weight, vader_r18.trunk.layer4[0].downsample[0].weight)
    argv = ["export", str(weights_file), "--to", "detectron2", "--out", str(tmp_path / "d2.pkl"),
            "--decoder-out", str(tmp_path / "decoder.safetensors")]
    assert run(argv) == 0
    assert "STRIDE_IN_1X1 False" in capsys.readouterr().out
    assert (tmp_path / "d2.pkl").stat().st_size > 40_000_000
    with safe_open(str(tmp_path / "decoder.safetensors"), "pt") as handle:
        assert handle.metadata()["architecture"] == "vader_r18_fpn"
        assert torch.equal(handle.get_tensor("proj.weight"), vader_r18.decoder.proj.weight)


def test_export_refuses_a_foreign_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.save(projects.torchvision_resnet("resnet18").state_dict(), tmp_path / "r18.pth")
    assert run(["export", str(tmp_path / "r18.pth"), "--to", "timm", "--out", str(tmp_path / "o.pth")]) == 2
    assert "vader-hub convert import" in capsys.readouterr().err


@pytest.mark.slow
def test_torch_export_command(weights_file: Path, vader_r18: nn.Module, tmp_path: Path) -> None:
    out = tmp_path / "vader_r18_fpn.pt2"
    assert run(["torch-export", "--arch", "vader_r18_fpn", "--weights", str(weights_file), "--out", str(out)]) == 0
    images = torch.randn(1, 3, 45, 70)
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(str(out)).module()(images), vader_r18(images),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_onnx_command_checks_with_onnxruntime(weights_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "vader_r18_fpn.onnx"
    assert run(["onnx", "--arch", "vader_r18_fpn", "--weights", str(weights_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" ok") == 3 and "FAILED" not in printed
