"""Faults of the cache's own filesystem fall through to the next source, and costly inputs are refused early.

Each fault is real: a cache folder without write permission and an unreadable cached copy (in a
forked process whose permission bits bind, root included), a full disk (a small tmpfs in a private
mount namespace), a file or a folder where the cache needs the other, a name too long for the
filesystem. The load must end with the verified bytes, from a later source or a temporary folder
outside the cache, or with a ``WeightsNotFoundError`` that lists the fault.
"""
import hashlib
import os
import tracemalloc

import pytest

from vader_hub.weights import NotAWeightsFileError, WeightsNotFoundError, read_manifests, resolve_entry
from vader_hub.weights.cache import cached_path, partial_path
from vader_hub.weights.load import read_user_file

from .helpers import COMMIT, entry_with_sources, use_manifest
from .isolation import private_tmpfs, run_in_child, without_permission_override

LONG_NAME = "w" * 288 + ".safetensors"  # 300 characters: over the 255 bytes a file name may have
FULL_DISK = 4096  # one page of tmpfs: less than half the exported file


def the_entry():
    return read_manifests().find("vader_r18_fpn", "test")


def with_sources(monkeypatch, tmp_path, exported, sources, **fields):
    use_manifest(monkeypatch, tmp_path, [{**entry_with_sources(exported, sources), **fields}])
    return the_entry()


def url(server, exported, path="/w", **kwargs) -> dict:
    return {"type": "url", "url": server.add(path, exported.data, **kwargs)}


def report_load() -> dict:
    """In a child: resolve the entry and say what came back (the bytes' sha256, the origin) or what failed."""
    try:
        weights = resolve_entry(the_entry())
    except WeightsNotFoundError as error:
        return {"not_found": str(error)}
    return {"sha256": hashlib.sha256(weights.data).hexdigest(), "origin": weights.origin, "path": str(weights.path)}


def in_child(work, setup) -> dict:
    outcome = run_in_child(work, setup)
    if "unavailable" in outcome:
        pytest.skip(f"this machine cannot make the fault: {outcome['unavailable']}")
    assert "error" not in outcome, outcome.get("traceback")
    return outcome["result"]


def test_a_read_only_cache_still_loads_from_a_url_source_outside_it(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [url(server, exported)])
    cache = tmp_path / "vader_cache"
    cache.mkdir()
    cache.chmod(0o555)
    report = in_child(report_load, without_permission_override)
    assert report.get("sha256") == entry.sha256, report
    assert "temporary folder" in report["origin"] and not report["path"].startswith(str(cache))
    assert list(cache.iterdir()) == []


def test_a_read_only_cache_with_a_corrupt_copy_loads_a_file_source(exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [{"type": "file", "path": str(exported.result.weights)}])
    cached = cached_path(entry)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(exported.data[::-1])
    for folder in (tmp_path / "vader_cache", tmp_path / "vader_cache" / "weights", cached.parent):
        folder.chmod(0o555)
    report = in_child(report_load, without_permission_override)
    assert report.get("sha256") == entry.sha256, report
    assert cached.read_bytes() == exported.data[::-1]  # could not be removed, and nothing else was tried on it


def test_an_unreadable_cached_copy_is_replaced_from_the_url_source(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [url(server, exported)])
    cached = cached_path(entry)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(exported.data)
    cached.chmod(0)
    report = in_child(report_load, without_permission_override)
    assert report.get("sha256") == entry.sha256, report
    assert cached.read_bytes() == exported.data and len(server.requests_for("/w")) == 1


def test_a_full_disk_removes_the_partial_and_loads_through_a_temporary_folder(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [url(server, exported)])
    cache = tmp_path / "vader_cache"

    def load_and_look() -> dict:
        return {**report_load(), "left": sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())}

    assert len(exported.data) > 2 * FULL_DISK
    report = in_child(load_and_look, private_tmpfs(cache, FULL_DISK))
    assert report.get("sha256") == entry.sha256, report
    assert "temporary folder" in report["origin"]
    assert not any(name.endswith(".part") for name in report["left"]), report["left"]  # the partial is removed


def test_a_full_disk_with_no_other_source_is_listed(server, exported, tmp_path, monkeypatch):
    with_sources(monkeypatch, tmp_path, exported, [url(server, exported, mode="truncate")])
    report = in_child(report_load, private_tmpfs(tmp_path / "vader_cache", FULL_DISK))  # each attempt sends half
    assert "No space left on device" in report.get("not_found", ""), report


def test_a_file_where_the_weights_folder_should_be_is_left_alone(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [url(server, exported)])
    (tmp_path / "vader_cache").mkdir()
    (tmp_path / "vader_cache" / "weights").write_text("not a folder")
    assert hashlib.sha256(resolve_entry(entry).data).hexdigest() == entry.sha256
    assert (tmp_path / "vader_cache" / "weights").read_text() == "not a folder"


def test_a_folder_where_the_cached_file_should_be_is_left_alone(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [url(server, exported)])
    cached_path(entry).mkdir(parents=True)
    (cached_path(entry) / "kept.txt").write_text("mine")
    assert hashlib.sha256(resolve_entry(entry).data).hexdigest() == entry.sha256
    assert (cached_path(entry) / "kept.txt").read_text() == "mine"
    assert not os.path.lexists(partial_path(cached_path(entry)))


def test_a_file_where_the_hub_cache_has_a_folder_falls_through(server, exported, tmp_path, monkeypatch):
    hub = {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
           "endpoint": server.base_url}
    entry = with_sources(monkeypatch, tmp_path, exported, [hub, url(server, exported)])
    repo = tmp_path / "hf_cache" / "models--org--vader"
    repo.mkdir(parents=True)
    (repo / "snapshots").write_text("not a folder")
    assert hashlib.sha256(resolve_entry(entry).data).hexdigest() == entry.sha256
    assert (repo / "snapshots").read_text() == "not a folder"


def test_a_name_too_long_for_the_filesystem_loads_through_a_temporary_folder(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [url(server, exported)], filename=LONG_NAME)
    weights = resolve_entry(entry)
    assert hashlib.sha256(weights.data).hexdigest() == entry.sha256 and "temporary folder" in weights.origin


def test_every_cache_fault_is_listed_when_no_source_works(server, exported, tmp_path, monkeypatch):
    entry = with_sources(monkeypatch, tmp_path, exported, [{"type": "url", "url": server.base_url + "/missing"}])
    cached_path(entry).mkdir(parents=True)
    with pytest.raises(WeightsNotFoundError) as error:
        resolve_entry(entry)
    message = str(error.value)
    assert "is a folder, not a file; left alone" in message and "/missing: HTTP 404" in message


def test_a_hub_file_larger_than_the_entry_is_refused_before_its_body(server, exported, tmp_path, monkeypatch):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data * 3)
    hub = {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
           "endpoint": server.base_url}
    entry = with_sources(monkeypatch, tmp_path, exported, [hub, url(server, exported)])
    assert hashlib.sha256(resolve_entry(entry).data).hexdigest() == entry.sha256
    resolve = f"/org/vader/resolve/{COMMIT}/model.safetensors"
    assert server.requests_for(resolve, "GET") == [] and server.requests_for(resolve, "HEAD")
    assert list((tmp_path / "hf_cache").rglob("blobs/*")) == []


def test_a_hub_file_larger_than_the_entry_is_named_in_the_error(server, exported, tmp_path, monkeypatch):
    server.add_hf("org/vader", COMMIT, "model.safetensors", exported.data * 3)
    hub = {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
           "endpoint": server.base_url}
    entry = with_sources(monkeypatch, tmp_path, exported, [hub])
    with pytest.raises(WeightsNotFoundError, match=f"announces {3 * len(exported.data)} bytes, the manifest says "
                                                   f"{len(exported.data)}"):
        resolve_entry(entry)


@pytest.mark.parametrize("head", [b"\xff" * 8, (1 << 40).to_bytes(8, "little"), (20).to_bytes(8, "little") + b"[1,2]"],
                         ids=["garbage", "length-beyond-the-file", "not-an-object"])
def test_an_explicit_file_is_refused_from_its_header_without_reading_it_whole(tmp_path, head):
    path = tmp_path / "big.safetensors"
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(1 << 30)  # 1 GiB, sparse: costs no disk, and would cost 1 GiB of memory to read whole
    tracemalloc.start()
    try:
        with pytest.raises(NotAWeightsFileError, match="is not a safetensors file"):
            read_user_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated to refuse the file"
