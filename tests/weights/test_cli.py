"""``vader-hub weights`` list, download, verify, clean, export and publish, through ``register``."""
import argparse
import json

import pytest
import timm
import torch
import torchvision
from safetensors import safe_open

from vader_hub.cli.weights import register
from vader_hub.weights import export_weights
from vader_hub.weights.cache import cached_path
from vader_hub.weights.manifest import read_manifest_file, read_manifests
from vader_hub.weights.resolve import cached_copies

from .helpers import COMMIT, entry_with_sources, small_module, use_manifest


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vader-hub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["weights", *argv])
    return args.func(args)


@pytest.fixture
def served(server, exported, tmp_path, monkeypatch):
    """Two files in a user manifest: ``.test`` behind a URL mirror, ``.hub`` behind a Hub endpoint."""
    other = export_weights(small_module(seed=8).state_dict(), "vader_r18_fpn", tmp_path / "other", tag="hub")
    server.add_hf("org/vader", COMMIT, "model.safetensors", other.weights.read_bytes())
    hub = {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
           "endpoint": server.base_url}
    url = {"type": "url", "url": server.add("/w", exported.data)}
    entries = [entry_with_sources(exported, [url]), {**other.entry.to_dict(), "sources": [hub]}]
    use_manifest(monkeypatch, tmp_path, entries)
    return exported


def test_list_without_entries_says_how_to_get_weights(capsys):
    assert run("list") == 0
    assert "No published weights" in capsys.readouterr().out


def test_download_then_list_verify_clean(served, capsys, tmp_path):
    assert run("download", "vader_r18_fpn.test", "vader_r18_fpn.hub") == 0
    assert capsys.readouterr().out.count("(sha256 verified)") == 2
    assert run("list", "--json") == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["vader_r18_fpn.test"]["cached"] == [str(cached_path(read_manifests().entries[0]))]
    assert rows["vader_r18_fpn.hub"]["cached"][0].startswith(str(tmp_path / "hf_cache"))
    assert run("list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:3] == ["vader_r18_fpn.test", f"{len(served.data) / 1e3:.1f}", "kB"]
    assert table[1].endswith(rows["vader_r18_fpn.test"]["cached"][0])
    assert run("verify") == 0
    assert capsys.readouterr().out.count(": OK ") == 2
    assert run("clean", "--dry-run") == 0 and "would remove" in capsys.readouterr().out
    assert run("clean") == 0
    assert run("verify") == 0
    assert capsys.readouterr().out.count("not cached") == 2


def test_verify_reports_a_corrupt_copy(served, capsys):
    run("download", "vader_r18_fpn.test")
    path = cached_path(read_manifests().entries[0])
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert run("verify", "vader_r18_fpn.test") == 1
    assert "CORRUPT" in capsys.readouterr().out


def test_clean_one_name_keeps_the_others(served):
    run("download", "--all")
    run("clean", "vader_r18_fpn.test")
    manifest = read_manifests()
    assert not cached_path(manifest.entries[0]).exists()
    assert cached_copies(manifest.entries[1])


def test_unknown_name_fails_readably(capsys):
    assert run("download", "vader_r18_fpn.nope") == 2
    assert "no manifest entry named 'vader_r18_fpn.nope'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(2)
    return timm.create_model("vader_r18_fpn")


def test_export_a_trainer_checkpoint_into_a_manifest(r18, tmp_path, capsys):
    checkpoint = {"encoder": r18.state_dict(), "config": {"model": "vader_r18_fpn", "data": "coco", "lr": 0.03},
                  "step": 123, "optimizer": {"state": {}}}
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"miou": 0.25}')
    code = run("export", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path / "out"), "--tag", "smoke",
               "--metrics", str(metrics), "--manifest", str(tmp_path / "mine.json"))
    assert code == 0, capsys.readouterr().err
    (entry,) = read_manifest_file(tmp_path / "mine.json")
    assert entry.name == "vader_r18_fpn.smoke" and entry.metrics == {"miou": 0.25}
    assert entry.provenance["steps"] == 123 and entry.provenance["config"]["lr"] == 0.03
    assert entry.provenance["data"] == "coco"
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as handle:
        assert torch.equal(handle.get_tensor("trunk.conv1.weight"), r18.trunk.conv1.weight)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["pretrained_cfg"]["crop_pct"] == 1.0 and config["model_args"]["num_classes"] == 0


def test_export_refuses_a_state_dict_of_another_network_with_the_loaders_report(tmp_path, capsys):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "tv_r18.pth")
    out = tmp_path / "out"
    assert run("export", str(tmp_path / "tv_r18.pth"), "--out", str(out), "--model", "vader_r18_fpn") == 2
    error = capsys.readouterr().err
    assert "does not match VaderFPN" in error and "missing from the file (151)" in error
    assert "unexpected in the file" in error and not out.exists()


def test_export_a_state_dict_needs_an_architecture(r18, tmp_path, capsys):
    torch.save(r18.state_dict(), tmp_path / "sd.pt")
    assert run("export", str(tmp_path / "sd.pt"), "--out", str(tmp_path / "out")) == 2
    assert "pass --model" in capsys.readouterr().err
    out = str(tmp_path / "out")
    assert run("export", str(tmp_path / "sd.pt"), "--out", out, "--model", "vader_r18_fpn") == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_export_refuses_a_conflicting_architecture(exported, tmp_path, capsys):
    out = str(tmp_path / "o")
    code = run("export", str(exported.result.weights), "--out", out, "--model", "vader_r50_fpn")
    assert code == 2 and "is for vader_r18_fpn, not --model vader_r50_fpn" in capsys.readouterr().err


def test_export_refuses_arbitrary_pickles(tmp_path, capsys):
    torch.save({"fn": print}, tmp_path / "evil.pt")  # a callable needs full unpickling: weights_only refuses it
    out = str(tmp_path / "o")
    assert run("export", str(tmp_path / "evil.pt"), "--out", out, "--model", "vader_r18_fpn") == 2
    assert "weights_only=True" in capsys.readouterr().err


def test_publish_dry_run_uploads_nothing(server, r18_exported, capsys):
    assert run("publish", str(r18_exported.result.weights.parent), "--repo-id", "org/v", "--dry-run",
               "--endpoint", server.base_url) == 0
    assert capsys.readouterr().out.count("would upload") == 3
    assert server.state.log == []


def test_publish_to_a_loopback_hub(server, r18_exported, tmp_path, capsys):
    manifest = tmp_path / "published.json"
    assert run("publish", str(r18_exported.result.weights.parent), "--repo-id", "org/v", "--endpoint", server.base_url,
               "--manifest", str(manifest)) == 0
    (entry,) = read_manifest_file(manifest)
    assert entry.sources[0].repo_id == "org/v" and entry.sources[0].revision in capsys.readouterr().out
