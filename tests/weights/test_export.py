"""export_weights: the safetensors file and its metadata, config.json, model card, manifest entry."""
import hashlib
import json

import pytest
import torch
from safetensors import safe_open

from vader_hub.weights import ManifestError, export_weights, load_pretrained
from vader_hub.weights.manifest import read_manifest_file, write_entry

from .helpers import small_module


def test_files_metadata_hash_and_size(exported):
    result = exported.result
    assert {p.name for p in result.weights.parent.iterdir()} == {
        "model.safetensors", "config.json", "README.md", "manifest_entry.json"}
    assert result.sha256 == hashlib.sha256(exported.data).hexdigest() and result.size == len(exported.data)
    with safe_open(str(result.weights), "pt") as handle:
        metadata = handle.metadata()
        assert set(handle.keys()) == set(exported.module.state_dict())
    assert metadata["architecture"] == "vader_r18_fpn" and metadata["format"] == "vader-hub/1"
    assert metadata["tag"] == "test"
    assert json.loads(metadata["provenance"]) == {"config": None, "data": "synthetic", "steps": 0,
                                                  "code_version": None}


def test_manifest_entry_loads_back_through_a_manifest(exported, tmp_path, monkeypatch):
    manifest = tmp_path / "mine.json"
    write_entry(manifest, exported.result.entry)
    (entry,) = read_manifest_file(manifest)
    assert entry.filename == "vader_r18_fpn.test.safetensors" and entry.sha256 == exported.result.sha256
    monkeypatch.setenv("VADER_HUB_MANIFEST", str(manifest))
    model = small_module(seed=7, channels=64).eval()
    load_pretrained(model, {"architecture": "vader_r18_fpn", "tag": "test"})
    x = torch.randn(1, 3, 12, 12)
    assert torch.equal(model(x), exported.module.eval()(x))


def test_config_json_follows_timm(tmp_path):
    state = {"decoder.proj.weight": torch.zeros(128, 128, 1, 1), "head.weight": torch.zeros(21, 128, 1, 1)}
    cfg = {"mean": (0.5, 0.5, 0.5), "input_size": (3, 224, 224), "hf_hub_id": "x/y", "file": "/tmp/a", "url": None}
    config = {"num_classes": 21, "num_features": 128, "pretrained_cfg": cfg}
    result = export_weights(state, "vader_r50_fpn", tmp_path, tag="voc", license="cc-by-4.0", config=config)
    config = json.loads(result.config.read_text())
    assert config == {
        "architecture": "vader_r50_fpn", "num_classes": 21, "num_features": 128,
        "pretrained_cfg": {"mean": [0.5, 0.5, 0.5], "input_size": [3, 224, 224], "tag": "voc",
                           "license": "cc-by-4.0", "num_classes": 21},
    }


def test_model_card_states_the_facts(exported):
    card = exported.result.model_card.read_text()
    assert card.startswith("---\nlicense: other\nlibrary_name: timm\n")
    for fact in [exported.result.sha256, str(exported.result.size), "vader_r18_fpn.test", '"data": "synthetic"',
                 "pretrained_cfg_overlay"]:
        assert fact in card, fact


def test_tied_and_non_contiguous_tensors_are_exported(tmp_path):
    shared = torch.arange(12.0).reshape(3, 4)
    result = export_weights({"a": shared, "b": shared, "c": shared.t()}, "vader_r18_fpn", tmp_path)
    with safe_open(str(result.weights), "pt") as handle:
        assert torch.equal(handle.get_tensor("c"), shared.t())


@pytest.mark.parametrize("state, kwargs, error, message", [
    ({}, {}, TypeError, "non-empty mapping"),
    ({"a": 1.0}, {}, TypeError, "must be tensors"),
    ({"a": torch.zeros(1)}, {"architecture": "ResNet 50"}, ManifestError, "architecture"),
    ({"a": torch.zeros(1)}, {"tag": "../x"}, ManifestError, "tag"),
    ({"a": torch.zeros(1)}, {"license": " "}, ManifestError, "license"),
    ({"a": torch.zeros(1)}, {"provenance": {"config": object()}}, TypeError, "JSON"),
    ({"a": torch.zeros(1)}, {"metrics": {"m": object()}}, TypeError, "JSON"),
])
def test_bad_exports_are_refused_before_writing(tmp_path, state, kwargs, error, message):
    args = {"architecture": "vader_r18_fpn", **kwargs}
    with pytest.raises(error, match=message):
        export_weights(state, args.pop("architecture"), tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_a_manifest_beside_its_weights_records_them_relatively_and_moves_with_them(exported, tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    exported_again = export_weights(exported.module.state_dict(), "vader_r18_fpn", folder / "w", tag="test")
    write_entry(folder / "manifest.json", exported_again.entry)
    written = json.loads((folder / "manifest.json").read_text())["entries"][0]["sources"]
    assert written == [{"type": "file", "path": "w/model.safetensors"}]
    moved = tmp_path / "moved"
    folder.rename(moved)
    monkeypatch.setenv("VADER_HUB_MANIFEST", str(moved / "manifest.json"))
    model = small_module(seed=7, channels=64).eval()
    loaded = load_pretrained(model, {"architecture": "vader_r18_fpn", "tag": "test"})
    assert loaded == moved / "w" / "model.safetensors"


def test_half_precision_export_halves_the_file_and_loads_the_rounded_values(exported, tmp_path):
    full = exported.result
    half = export_weights(exported.module.state_dict(), "vader_r18_fpn", tmp_path / "half", tag="h", half=True)
    assert half.size < 0.55 * full.size
    with safe_open(str(half.weights), framework="pt") as handle:
        dtypes = {handle.get_tensor(key).dtype for key in handle.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    model = small_module(seed=9, channels=64)
    load_pretrained(model, {"architecture": "vader_r18_fpn", "file": str(half.weights)})
    for key, value in exported.module.state_dict().items():
        expected = value.half().to(value.dtype) if value.is_floating_point() else value
        assert model.state_dict()[key].dtype == value.dtype and torch.equal(model.state_dict()[key], expected), key
