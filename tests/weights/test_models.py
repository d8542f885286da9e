"""Exported weights through the real entry points: timm overlays, manifest tags, torch.hub, the CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import vader_hub  # noqa: F401  (registers the VADeR models)
from vader_hub.cli import main as vader_hub_main
from vader_hub.weights import WeightsNotFoundError, export_weights, read_manifests

from .helpers import use_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("vader_r18_fpn").eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that they must be loaded too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def r18_export(source_model, tmp_path_factory):
    return export_weights(source_model.state_dict(), "vader_r18_fpn", tmp_path_factory.mktemp("r18"), tag="mine")


def assert_same_features(model, source_model, image) -> None:
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(image), source_model(image), rtol=0, atol=0)


def test_overlay_file_through_timm(r18_export, source_model, image):
    model = timm.create_model("vader_r18_fpn", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(r18_export.weights)))
    assert_same_features(model, source_model, image)


def test_another_num_classes_keeps_a_fresh_head(r18_export, source_model, image):
    model = timm.create_model("vader_r18_fpn", pretrained=True, num_classes=5,
                              pretrained_cfg_overlay=dict(file=str(r18_export.weights)))
    assert model.head.weight.shape[0] == 5
    torch.testing.assert_close(model.trunk.conv1.weight, source_model.trunk.conv1.weight, rtol=0, atol=0)


def test_pretrained_without_published_weights_says_so():
    unpublished = [name for name in timm.list_models("vader_*") if not read_manifests().tags_for(name)]
    if not unpublished:
        pytest.skip("every vader model has published weights")
    with pytest.raises(WeightsNotFoundError, match="no weights are published for it yet.*train them"):
        timm.create_model(unpublished[0], pretrained=True)


def test_an_r18_file_is_refused_by_r50(r18_export):
    with pytest.raises(ValueError, match="holds weights for vader_r18_fpn, not vader_r50_fpn"):
        timm.create_model("vader_r50_fpn", pretrained=True, pretrained_cfg_overlay=dict(file=str(r18_export.weights)))


def test_manifest_tag_through_timm_from_a_mirror(server, r18_export, source_model, image, tmp_path, monkeypatch):
    """Tags are registered at import, so the user manifest must be set before: a fresh interpreter."""
    entry = {**r18_export.entry.to_dict(), "sources": [
        {"type": "url", "url": server.add("/r18.safetensors", r18_export.weights.read_bytes())}]}
    use_manifest(monkeypatch, tmp_path, [entry])
    torch.save(image, tmp_path / "image.pt")
    code = (
        "import sys, timm, torch, vader_hub\n"
        "assert 'vader_r18_fpn.mine' in timm.list_pretrained('vader_r18_fpn*'), timm.list_pretrained('vader*')\n"
        "model = timm.create_model('vader_r18_fpn.mine', pretrained=True).eval()\n"
        "with torch.no_grad():\n"
        "    torch.save(model(torch.load(sys.argv[1])), sys.argv[2])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "image.pt"), str(tmp_path / "out.pt")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "out.pt"), source_model(image), rtol=0, atol=0)
    assert len(server.requests_for("/r18.safetensors")) == 1


def test_cli_export_of_a_trainer_checkpoint_loads_through_torch_hub(source_model, image, tmp_path, capsys):
    checkpoint = {"encoder": source_model.state_dict(), "config": {"model": "vader_r18_fpn"}, "step": 7}
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    assert vader_hub_main(["weights", "export", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path / "out"),
                           "--tag", "smoke"]) == 0
    assert json.loads((tmp_path / "out" / "config.json").read_text())["num_features"] == 128
    model = torch.hub.load(str(REPO_ROOT), "vader_r18_fpn", source="local", pretrained=True,
                           pretrained_cfg_overlay=dict(file=str(tmp_path / "out" / "model.safetensors")))
    assert_same_features(model, source_model, image)
