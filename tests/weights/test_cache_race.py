"""Four real processes find the same corrupt cached copy at once: each loads the verified file.

Before eviction took the download lock, one process's eviction could remove the entry's folder
between another's creating it and opening its partial file there (``FileNotFoundError`` on the
``.part``). The processes are forked and released together, several times over.
"""
import hashlib
import multiprocessing

import pytest

from vader_hub.weights import read_manifests, resolve_entry
from vader_hub.weights.cache import cached_path

from .helpers import entry_with_sources, use_manifest
from .isolation import start_together

PROCESSES = 4
TRIALS = 5
FORK = multiprocessing.get_context("fork")


def load_and_report(go, results) -> None:
    """In a child: wait for the go signal, resolve the entry, report the bytes' sha256 or the error."""
    go.wait(60)
    try:
        weights = resolve_entry(read_manifests().find("vader_r18_fpn", "test"))
        results.put({"sha256": hashlib.sha256(weights.data).hexdigest()})
    except Exception as error:  # reported to the parent, which asserts on it
        results.put({"error": f"{type(error).__name__}: {error}"})


@pytest.mark.parametrize("trial", range(TRIALS))
def test_four_processes_evicting_a_corrupt_copy_all_load_the_verified_file(server, exported, tmp_path, monkeypatch,
                                                                            trial):
    url = server.add("/w", exported.data)
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [{"type": "url", "url": url}])])
    entry = read_manifests().find("vader_r18_fpn", "test")
    cached = cached_path(entry)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(exported.data[:-1] + b"\0")  # same size, other bytes: only the hash tells
    reports = start_together(load_and_report, PROCESSES)
    assert [r.get("error") for r in reports] == [None] * PROCESSES
    assert {r["sha256"] for r in reports} == {entry.sha256}
    assert cached.read_bytes() == exported.data and len(server.requests_for("/w")) == 1
