"""Publishing: the checks before upload, and the upload itself against a loopback Hub endpoint."""
import json

import pytest
import timm
import torch

from vader_hub.weights import ChecksumMismatchError, StateDictMismatchError, load_pretrained
from vader_hub.weights.manifest import read_manifest_file
from vader_hub.weights.publish import PUBLISHED_FILES, prepare_publish, publish


def test_prepare_lists_the_three_files(r18_exported):
    plan = prepare_publish(r18_exported.result.weights.parent, "org/vader-r18")
    assert [p.name for p in plan.files] == list(PUBLISHED_FILES)
    assert plan.entry.sha256 == r18_exported.result.sha256


def test_prepare_refuses_a_changed_weights_file(r18_exported):
    r18_exported.result.weights.write_bytes(r18_exported.data[:-1] + b"\0")
    with pytest.raises(ChecksumMismatchError, match="model.safetensors has sha256"):
        prepare_publish(r18_exported.result.weights.parent, "org/vader-r18")


def test_prepare_refuses_missing_files_and_bad_repo_ids(r18_exported):
    with pytest.raises(ValueError, match="'namespace/name'"):
        prepare_publish(r18_exported.result.weights.parent, "vader-r18")
    r18_exported.result.config.unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['config.json'\]"):
        prepare_publish(r18_exported.result.weights.parent, "org/vader-r18")


def test_upload_to_a_loopback_hub_then_load_from_it(server, r18_exported, tmp_path, monkeypatch):
    manifest = tmp_path / "published.json"
    result = publish(r18_exported.result.weights.parent, "org/vader-r18", manifest=manifest,
                     endpoint=server.base_url, token="hf_test")
    ((repo_id, files),) = server.state.commits
    assert repo_id == "org/vader-r18" and set(files) == set(PUBLISHED_FILES)
    assert files["model.safetensors"] == r18_exported.data
    assert files["config.json"] == r18_exported.result.config.read_bytes()
    (entry,) = read_manifest_file(manifest)
    assert entry.sources[0].revision == result.commit and entry.sources[0].repo_id == "org/vader-r18"
    assert all(source.to_dict()["type"] != "file" for source in entry.sources)  # no machine-local paths
    assert json.loads(r18_exported.result.manifest_entry.read_text())["sources"][0]["revision"] == result.commit

    monkeypatch.setenv("VADER_HUB_MANIFEST", str(manifest))
    model = timm.create_model("vader_r18_fpn")
    path = load_pretrained(model, {"architecture": "vader_r18_fpn", "tag": "test"})
    assert path.is_relative_to(tmp_path / "hf_cache")  # fetched through huggingface_hub from the commit
    assert torch.equal(model.trunk.conv1.weight, r18_exported.module.trunk.conv1.weight.half().float())


def test_prepare_refuses_tensors_that_are_not_the_architectures_with_the_loaders_report(exported):
    with pytest.raises(StateDictMismatchError, match=r"does not match VaderFPN:\n  missing from the file"):
        prepare_publish(exported.result.weights.parent, "org/vader-r18")
