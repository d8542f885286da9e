"""Links planted in the caches never lead a load, an eviction or `weights clean` to the user's files.

Each test puts real symlinks from inside the vader-hub or Hugging Face cache to a decoy folder of
the user's files, runs a real load against a loopback server (or the real command), and compares
the decoy with a snapshot taken before.
"""
import argparse
import hashlib
import os

import pytest

from vader_hub.cli.weights import register
from vader_hub.weights import WeightsNotFoundError, read_manifests, resolve_entry
from vader_hub.weights.cache import cached_path, list_cached_files, lock_path, partial_path

from .helpers import COMMIT, entry_with_sources, use_manifest
from .isolation import make_decoy, snapshot

HUB_POINTER = ("models--org--vader", "snapshots", COMMIT, "model.safetensors")


def run_weights(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vader-hub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["weights", *argv])
    return args.func(args)


def the_entry():
    return read_manifests().find("vader_r18_fpn", "test")


@pytest.fixture
def decoy(tmp_path, exported):
    return make_decoy(tmp_path / "my_files", exported.result.entry.filename)


def url_entry(monkeypatch, tmp_path, exported, url):
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [{"type": "url", "url": url}])])
    return the_entry()


def hub_entry(monkeypatch, tmp_path, exported, server):
    source = {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
              "endpoint": server.base_url}
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [source])])
    return the_entry()


def assert_verified(weights, entry) -> None:
    assert hashlib.sha256(weights.data).hexdigest() == entry.sha256


def test_a_hub_pointer_to_a_user_file_failing_verification_unlinks_only_the_pointer(
        server, exported, decoy, tmp_path, monkeypatch):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data)
    entry = hub_entry(monkeypatch, tmp_path, exported, server)
    pointer = tmp_path.joinpath("hf_cache", *HUB_POINTER)
    pointer.parent.mkdir(parents=True)
    pointer.symlink_to(decoy / "notes.txt")
    before = snapshot(decoy)
    assert_verified(resolve_entry(entry), entry)  # the pointer fails, is unlinked, and the Hub serves the file
    assert snapshot(decoy) == before
    assert os.path.realpath(pointer).startswith(str(tmp_path / "hf_cache" / "models--org--vader" / "blobs"))


def test_clean_unlinks_a_hub_pointer_to_a_user_file_and_keeps_the_file(server, exported, decoy, tmp_path, monkeypatch,
                                                                       capsys):
    hub_entry(monkeypatch, tmp_path, exported, server)
    pointer = tmp_path.joinpath("hf_cache", *HUB_POINTER)
    pointer.parent.mkdir(parents=True)
    pointer.symlink_to(decoy / exported.result.entry.filename)
    before = snapshot(decoy)
    assert run_weights("clean") == 0
    assert snapshot(decoy) == before and not os.path.lexists(pointer)
    assert "a link; what it points to was left alone" in capsys.readouterr().out


def test_clean_removes_a_real_hub_pointer_with_its_blob(server, exported, tmp_path, monkeypatch, capsys):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data)
    resolve_entry(hub_entry(monkeypatch, tmp_path, exported, server))
    capsys.readouterr()
    assert run_weights("clean") == 0
    out = capsys.readouterr().out
    assert "left alone" not in out and "/blobs/" in out and f"freed {len(exported.data) / 1e3:.1f} kB" in out
    assert list((tmp_path / "hf_cache").rglob("blobs/*")) == []


@pytest.mark.parametrize("names", [[], ["vader_r18_fpn.test"]], ids=["whole-cache", "one-name"])
def test_clean_removes_a_linked_hash_folder_not_the_files_behind_it(exported, decoy, tmp_path, monkeypatch, capsys,
                                                                    names):
    entry = url_entry(monkeypatch, tmp_path, exported, "http://127.0.0.1:9/w")
    folder = cached_path(entry).parent
    folder.parent.mkdir(parents=True)
    folder.symlink_to(decoy, target_is_directory=True)
    before = snapshot(decoy)
    assert [p.name for p in list_cached_files()] == [folder.name]  # the link itself, not the files behind it
    assert run_weights("clean", *names) == 0
    assert snapshot(decoy) == before and not os.path.lexists(folder)
    assert "freed 0 B" in capsys.readouterr().out


def test_a_corrupt_copy_behind_a_linked_hash_folder_is_replaced_without_touching_the_folder(
        server, exported, decoy, tmp_path, monkeypatch):
    entry = url_entry(monkeypatch, tmp_path, exported, server.add("/w", exported.data))
    folder = cached_path(entry).parent
    folder.parent.mkdir(parents=True)
    folder.symlink_to(decoy, target_is_directory=True)  # decoy holds a file of the cached name, other bytes
    before = snapshot(decoy)
    assert_verified(resolve_entry(entry), entry)
    assert snapshot(decoy) == before
    assert not folder.is_symlink() and cached_path(entry).read_bytes() == exported.data


@pytest.mark.parametrize("served", ["good", "wrong"])
def test_a_partial_file_link_is_dropped_never_written_through(server, exported, decoy, tmp_path, monkeypatch, served):
    data = exported.data if served == "good" else exported.data[::-1]
    entry = url_entry(monkeypatch, tmp_path, exported, server.add("/w", data))
    part = partial_path(cached_path(entry))
    part.parent.mkdir(parents=True)
    (decoy / "start.bin").write_bytes(exported.data[:5000])  # looks like a resumable start of the file
    part.symlink_to(decoy / "start.bin")
    before = snapshot(decoy)
    if served == "good":
        assert_verified(resolve_entry(entry), entry)
        assert [r.range for r in server.requests_for("/w")] == [None]  # the user's file was not resumed from
    else:
        with pytest.raises(WeightsNotFoundError, match="served bytes with sha256"):
            resolve_entry(entry)
    assert snapshot(decoy) == before and not part.is_symlink()


def test_a_lock_file_link_is_not_truncated(server, exported, decoy, tmp_path, monkeypatch):
    entry = url_entry(monkeypatch, tmp_path, exported, server.add("/w", exported.data))
    lock = lock_path(entry)
    lock.parent.mkdir(parents=True)
    lock.symlink_to(decoy / "notes.txt")
    before = snapshot(decoy)
    assert_verified(resolve_entry(entry), entry)
    assert snapshot(decoy) == before


def test_linked_cache_folders_are_replaced_by_real_ones(server, exported, decoy, tmp_path, monkeypatch):
    entry = url_entry(monkeypatch, tmp_path, exported, server.add("/w", exported.data))
    cache = tmp_path / "vader_cache"
    cache.mkdir()
    (cache / "weights").symlink_to(decoy, target_is_directory=True)
    (cache / "locks").symlink_to(decoy / "sub", target_is_directory=True)
    before = snapshot(decoy)
    assert_verified(resolve_entry(entry), entry)
    assert snapshot(decoy) == before
    assert cached_path(entry).read_bytes() == exported.data and not (cache / "weights").is_symlink()
