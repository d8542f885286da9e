"""Manifest schema v1: validation with clear errors, bundled + user files, merging, writing."""
import json
import os

import pytest

from vader_hub.weights import manifest as manifest_module
from vader_hub.weights.errors import ManifestError
from vader_hub.weights.manifest import (
    FileSource,
    HfSource,
    UrlSource,
    bundled_manifest_path,
    read_manifest_file,
    read_manifests,
    write_entry,
)
from vader_hub.weights.schema import parse_entry

from .helpers import COMMIT, write_manifest

SHA = "ab" * 32


def entry(**changes) -> dict:
    base = {
        "architecture": "vader_r50_fpn", "tag": "in1k", "filename": "vader_r50_fpn.in1k.safetensors",
        "sha256": SHA, "size": 1234,
        "sources": [{"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors"},
                    {"type": "url", "url": "https://mirror.example/v.safetensors"},
                    {"type": "file", "path": "weights/v.safetensors"}],
        "provenance": {"config": {"epochs": 200}, "data": "ImageNet-1k", "steps": 10, "code_version": "0.1.0"},
        "license": "cc-by-nc-4.0", "metrics": {"miou": 0.5},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_valid_entry_round_trips(tmp_path):
    path = write_manifest(tmp_path / "m.json", [entry()])
    (parsed,) = read_manifest_file(path)
    assert parsed.name == "vader_r50_fpn.in1k"
    assert parsed.sources == (HfSource("org/vader", COMMIT, "model.safetensors"),
                              UrlSource("https://mirror.example/v.safetensors"),
                              FileSource(tmp_path.resolve() / "weights" / "v.safetensors"))
    assert parse_entry(parsed.to_dict(), "again", tmp_path) == parsed


@pytest.mark.parametrize("changes, field", [
    ({"sha256": "AB" * 32}, "sha256"),
    ({"sha256": "ab" * 31}, "sha256"),
    ({"size": 0}, "size"),
    ({"size": True}, "size"),
    ({"size": "12"}, "size"),
    ({"architecture": "Vader R50"}, "architecture"),
    ({"tag": "a/b"}, "tag"),
    ({"filename": "../evil.safetensors"}, "filename"),
    ({"filename": "dir/w.safetensors"}, "filename"),
    ({"filename": "dir\\w.safetensors"}, "filename"),
    ({"filename": ".hidden.safetensors"}, "filename"),
    ({"filename": "a..b.safetensors"}, "filename"),
    ({"filename": "weights.pth"}, "filename"),
    ({"license": ""}, "license"),
    ({"license": None}, "license"),
    ({"sources": []}, "sources"),
    ({"provenance": {"data": "x"}}, "provenance"),
    ({"metrics": [1]}, "metrics"),
    ({"sha265": SHA}, "unknown field"),
])
def test_bad_fields_name_the_file_entry_and_field(tmp_path, changes, field):
    path = write_manifest(tmp_path / "m.json", [entry(), entry(**{"tag": "other", **changes})])
    with pytest.raises(ManifestError) as error:
        read_manifest_file(path)
    assert str(path) in str(error.value) and "entries[1]" in str(error.value)
    assert field in str(error.value)


@pytest.mark.parametrize("source, message", [
    ({"type": "hf", "repo_id": "org/vader", "revision": "main", "filename": "m.safetensors"}, "40-hex commit"),
    ({"type": "hf", "repo_id": "vader", "revision": COMMIT, "filename": "m.safetensors"}, "repo_id"),
    ({"type": "hf", "repo_id": "o/v", "revision": COMMIT, "filename": "../m.safetensors"}, "'..'"),
    ({"type": "url", "url": "ftp://mirror/x"}, "http(s) URL"),
    ({"type": "url"}, "field 'url' must be a string"),
    ({"type": "s3", "url": "s3://x"}, "field 'type'"),
    ({"type": "url", "url": "https://x", "sha256": SHA}, "unknown field"),
])
def test_bad_sources_are_refused(tmp_path, source, message):
    path = write_manifest(tmp_path / "m.json", [entry(sources=[source])])
    with pytest.raises(ManifestError, match="sources\\[0\\]") as error:
        read_manifest_file(path)
    assert message in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[]", "top level must be an object"),
    ('{"schema_version": 2, "entries": []}', "this vader-hub reads version 1"),
    ('{"schema_version": 1}', "'entries' must be a list"),
    ('{"schema_version": 1, "entries": [], "extra": 1}', "unknown top-level"),
])
def test_bad_files_are_refused(tmp_path, text, message):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest_file(path)


def test_a_name_twice_in_one_file_is_refused(tmp_path):
    path = write_manifest(tmp_path / "m.json", [entry(), entry()])
    with pytest.raises(ManifestError, match=r"entries\[0\] and entries\[1\] both name vader_r50_fpn.in1k"):
        read_manifest_file(path)


def test_bundled_manifest_is_valid_and_has_no_placeholders():
    path = bundled_manifest_path()
    assert path.is_file()
    for item in read_manifest_file(path):  # every listed file must be real: a full sha256 and a size
        assert item.size > 0 and len(item.sha256) == 64


def test_user_manifests_come_after_the_bundled_one(tmp_path, monkeypatch):
    first = write_manifest(tmp_path / "a.json", [entry(tag="a")])
    second = write_manifest(tmp_path / "b.json",
                            [entry(tag="b", sha256="cd" * 32), entry(architecture="vader_r18_fpn")])
    monkeypatch.setenv("VADER_HUB_MANIFEST", f"{first}{os.pathsep}{second}{os.pathsep}")
    manifest = read_manifests()
    assert manifest.paths == [manifest_module.bundled_manifest_path(), first, second]
    bundled = len(read_manifest_file(manifest_module.bundled_manifest_path()))
    assert [e.name for e in manifest.entries[bundled:]] == ["vader_r50_fpn.a", "vader_r50_fpn.b", "vader_r18_fpn.in1k"]
    assert manifest.tags_for("vader_r50_fpn")[-2:] == ["a", "b"]
    assert manifest.find("vader_r18_fpn", "").tag == "in1k"  # an empty tag means the first one
    assert manifest.find_name("vader_r50_fpn.b").sha256 == "cd" * 32
    assert manifest.find("vader_r101_fpn") is None


def test_a_missing_user_manifest_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("VADER_HUB_MANIFEST", str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="VADER_HUB_MANIFEST names .*nope.json"):
        read_manifests()


def test_a_later_mirror_of_the_same_file_is_tried_first(tmp_path):
    mirror = {"type": "url", "url": "https://private.example/v.safetensors"}
    first = write_manifest(tmp_path / "a.json", [entry()])
    second = write_manifest(tmp_path / "b.json", [entry(sources=[mirror])])
    (merged,) = read_manifests([first, second]).entries
    assert merged.sources[0] == UrlSource(mirror["url"])
    assert len(merged.sources) == 4


def test_another_file_under_the_same_name_is_refused(tmp_path):
    first = write_manifest(tmp_path / "a.json", [entry()])
    second = write_manifest(tmp_path / "b.json", [entry(sha256="cd" * 32)])
    with pytest.raises(ManifestError, match="b.json gives vader_r50_fpn.in1k another file"):
        read_manifests([first, second])


def test_write_entry_creates_updates_in_place_and_appends(tmp_path):
    path = tmp_path / "sub" / "mine.json"
    base = tmp_path
    write_entry(path, parse_entry(entry(tag="a"), "t", base))
    write_entry(path, parse_entry(entry(tag="b"), "t", base))
    write_entry(path, parse_entry(entry(tag="a", size=99), "t", base))
    names = [(e.tag, e.size) for e in read_manifest_file(path)]
    assert names == [("a", 99), ("b", 1234)]
    assert json.loads(path.read_text())["schema_version"] == 1


def test_write_entry_leaves_a_malformed_file_alone(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('{"schema_version": 1, "entries": [{"tag": 1}]}')
    with pytest.raises(ManifestError):
        write_entry(path, parse_entry(entry(), "t", tmp_path))
    assert path.read_text() == '{"schema_version": 1, "entries": [{"tag": 1}]}'


def test_timm_source_never_sets_file(tmp_path):
    hub, url, local = (parse_entry(entry(sources=[s]), "t", tmp_path) for s in entry()["sources"])
    assert hub.timm_source() == {"hf_hub_id": f"org/vader@{COMMIT}", "hf_hub_filename": "model.safetensors"}
    assert url.timm_source() == {"url": "https://mirror.example/v.safetensors"}
    assert local.timm_source()["url"].startswith("file://") and "file" not in local.timm_source()

