"""Manifests are read when needed: a VADER_HUB_MANIFEST set after import is seen by timm's tag lists and the
loader alike, and a broken one breaks only the loads that need it."""
import json
import subprocess
import sys

import pytest
import timm
import torch

from vader_hub.cli import main
from vader_hub.models import pretrained_names
from vader_hub.weights import ManifestError, export_weights
from vader_hub.weights.manifest import MANIFEST_ENV


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(3)
    return timm.create_model("vader_r18_fpn").eval()


@pytest.fixture
def late_manifest(r18, tmp_path):
    result = export_weights(r18.state_dict(), "vader_r18_fpn", tmp_path / "export", tag="late")
    path = tmp_path / "late.json"
    path.write_text(json.dumps({"schema_version": 1, "entries": [result.entry.to_dict()]}))
    return path


def test_a_manifest_named_after_import_is_seen_by_timm_and_the_loader(r18, late_manifest, monkeypatch):
    assert "vader_r18_fpn.late" not in timm.list_pretrained("vader_r18_fpn*")
    monkeypatch.setenv(MANIFEST_ENV, str(late_manifest))
    model = timm.create_model("vader_r18_fpn.late", pretrained=True).eval()
    assert torch.equal(model.trunk.conv1.weight, r18.trunk.conv1.weight)
    assert "vader_r18_fpn.late" in timm.list_pretrained("vader_r18_fpn*")
    assert "vader_r18_fpn.late" in pretrained_names()
    monkeypatch.delenv(MANIFEST_ENV)
    assert "vader_r18_fpn.late" not in pretrained_names()


def test_a_broken_manifest_breaks_neither_import_nor_other_commands(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    env_script = f"import os; os.environ[{MANIFEST_ENV!r}] = {str(broken)!r}; import vader_hub, timm; "
    result = subprocess.run([sys.executable, "-c", env_script + "print(timm.list_models('vader_*'))"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "vader_r18_fpn" in result.stdout, result.stderr


def test_weights_list_shows_a_broken_manifest_and_a_load_from_it_says_what_is_wrong(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    monkeypatch.setenv(MANIFEST_ENV, str(broken))
    assert main(["weights", "list"]) == 1
    captured = capsys.readouterr()
    assert "vader_r18_fpn.photos57" in captured.out and f"{broken}: not valid JSON" in captured.err
    assert main(["info", "--model", "vader_r18_fpn", "--size", "32"]) == 0
    with pytest.raises(ManifestError, match="not valid JSON"):
        timm.create_model("vader_r18_fpn", pretrained=True)
