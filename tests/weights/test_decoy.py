"""Under every download fault of docs/weights.md and every fault of the cache, the user's files stay as they were.

A decoy folder of the user's files sits next to the cache. Links from inside the vader-hub and
Hugging Face caches point into it (a partial file, a lock, a Hub pointer, a hash folder, the
weights folder), and one of its files, with other bytes, is a ``file`` source of the entry. Each
case runs real loads against a loopback server (in this process, in a forked one that has the
fault, or in four at once), then ``vader-hub weights clean``. The decoy's snapshot must not change,
and every load must return bytes with the manifest's sha256 or end in a ``WeightsNotFoundError``.
"""
import hashlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from vader_hub.weights import WeightsNotFoundError, read_manifests, resolve_entry
from vader_hub.weights.cache import cached_path, lock_path, partial_path

from .helpers import COMMIT, entry_with_sources, use_manifest
from .isolation import (
    FORK,
    make_decoy,
    private_tmpfs,
    run_in_child,
    snapshot,
    start_together,
    without_permission_override,
)
from .test_cache_links import run_weights
from .test_processes import wait_for

PROCESSES = 4


@dataclass
class Case:
    """One fault's world: the server, the exported file, the decoy and the cache paths of the entry."""

    server: object
    exported: object
    tmp_path: Path
    decoy: Path

    def url(self, data: Optional[bytes] = None, mode: str = "ok", **kwargs) -> dict:
        path = f"/fault{len(self.server.state.files)}"
        return {"type": "url", "url": self.server.add(path, self.exported.data if data is None else data, mode,
                                                      **kwargs)}

    def hub(self, data: Optional[bytes] = None) -> dict:
        self.server.add_hf("org/vader", COMMIT, "model.safetensors", self.exported.data if data is None else data)
        return {"type": "hf", "repo_id": "org/vader", "revision": COMMIT, "filename": "model.safetensors",
                "endpoint": self.server.base_url}

    @property
    def entry(self):
        return read_manifests().find("vader_r18_fpn", "test")

    @property
    def cache(self) -> Path:
        return self.tmp_path / "vader_cache"


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=target.is_dir())


def plant_lock(case: Case) -> None:
    link(lock_path(case.entry), case.decoy / "notes.txt")


def plant_partial_and_lock(case: Case) -> None:
    """The links every case meets unless it says otherwise: the partial file and the lock."""
    (case.decoy / "start.bin").write_bytes(case.exported.data[:3000])  # looks like the start of the download
    link(partial_path(cached_path(case.entry)), case.decoy / "start.bin")
    plant_lock(case)


def plant_hub_pointer(case: Case) -> None:
    plant_partial_and_lock(case)
    link(case.tmp_path.joinpath("hf_cache", "models--org--vader", "snapshots", COMMIT, "model.safetensors"),
         case.decoy / "notes.txt")


def corrupt_cached_copy(case: Case, mode: int = 0o644) -> None:
    plant_partial_and_lock(case)
    cached = cached_path(case.entry)
    cached.write_bytes(case.exported.data[:-1] + b"\0")
    cached.chmod(mode)


def link_hash_folder(case: Case) -> None:
    link(cached_path(case.entry).parent, case.decoy)  # the decoy holds a file of the cached name


def link_cache_folders(case: Case) -> None:
    link(case.cache / "weights", case.decoy)
    link(case.cache / "locks", case.decoy / "sub")


def file_for_weights_folder(case: Case) -> None:
    case.cache.mkdir()
    (case.cache / "weights").write_text("not a folder")


def file_for_hub_snapshots(case: Case) -> None:
    plant_partial_and_lock(case)
    repo = case.tmp_path / "hf_cache" / "models--org--vader"
    repo.mkdir(parents=True)
    (repo / "snapshots").write_text("not a folder")


def folder_for_cached_file(case: Case) -> None:
    cached_path(case.entry).mkdir(parents=True)


def read_only_cache(case: Case) -> None:
    corrupt_cached_copy(case)
    for folder in [case.cache, *case.cache.rglob("*")]:
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o555)


@dataclass
class Fault:
    """The faulty sources tried first, the cache's state before the load, and how the load runs."""

    sources: Callable[[Case], List[dict]] = lambda case: []
    prepare: Callable[[Case], None] = plant_partial_and_lock
    runner: str = "here"  # "here", "child" (with ``setup``), "processes" or "killed"
    setup: Optional[Callable[[Case], Callable[[], None]]] = None
    env: Dict[str, str] = field(default_factory=dict)
    loads: bool = True  # whether a verified load is expected (else a WeightsNotFoundError)
    fields: Dict[str, object] = field(default_factory=dict)


FAULTS = {
    # the download faults of docs/weights.md, in its order
    "truncated body": Fault(lambda case: [case.url(mode="truncate")]),
    "connection dropped": Fault(lambda case: [case.url(mode="drop_once")]),
    "wrong bytes": Fault(lambda case: [case.url(case.exported.data[::-1]), case.hub(case.exported.data[::-1])]),
    "404": Fault(lambda case: [{"type": "url", "url": case.server.base_url + "/missing"}]),
    "500": Fault(lambda case: [case.url(mode="status500")]),
    "stalled server": Fault(lambda case: [case.url(mode="stall")]),
    "trickling server": Fault(lambda case: [case.url(mode="trickle")], env={"VADER_HUB_DOWNLOAD_DEADLINE": "1"}),
    "larger than announced": Fault(lambda case: [case.url(case.exported.data + b"x")]),
    "larger, no length": Fault(lambda case: [case.url(case.exported.data + b"x" * 4096, mode="no_length")]),
    "plain http off loopback": Fault(lambda case: [{"type": "url", "url": "http://mirror.invalid/w.safetensors"}]),
    "processes at once": Fault(lambda case: [case.url(mode="slow", seconds=0.5)], runner="processes"),
    "process killed mid-download": Fault(lambda case: [case.url(mode="slow", seconds=10.0)], runner="killed"),
    "offline, nothing cached": Fault(env={"VADER_HUB_OFFLINE": "1"}, loads=False),
    "cached file changed": Fault(prepare=corrupt_cached_copy),
    # the cache's own faults
    "hub pointer to a user file": Fault(lambda case: [case.hub()], prepare=plant_hub_pointer),
    "hash folder linked to a user folder": Fault(prepare=link_hash_folder),
    "cache folders linked to user folders": Fault(prepare=link_cache_folders),
    "read-only cache": Fault(prepare=read_only_cache, runner="child", setup=lambda case: without_permission_override),
    "unreadable cached copy": Fault(prepare=lambda case: corrupt_cached_copy(case, 0), runner="child",
                                    setup=lambda case: without_permission_override),
    "full disk": Fault(prepare=lambda case: None, runner="child", setup=lambda case: private_tmpfs(case.cache, 4096)),
    "file where the weights folder goes": Fault(prepare=file_for_weights_folder),
    "folder where the cached file goes": Fault(prepare=folder_for_cached_file),
    "file where the Hub's snapshots folder goes": Fault(lambda case: [case.hub()], prepare=file_for_hub_snapshots),
    "300-character file name": Fault(prepare=plant_lock, fields={"filename": "w" * 288 + ".safetensors"}),
    "hub file larger than the entry": Fault(lambda case: [case.hub(case.exported.data * 3)]),
}


def report_load() -> dict:
    """Resolve the entry; the sha256 of the bytes returned, or the error's text."""
    try:
        weights = resolve_entry(read_manifests().find("vader_r18_fpn", "test"))
        return {"sha256": hashlib.sha256(weights.data).hexdigest()}
    except WeightsNotFoundError as error:
        return {"not_found": str(error)}


def load_when_told(go, results) -> None:
    go.wait(60)
    results.put(report_load())


def run_processes(case: Case) -> List[dict]:
    return start_together(load_when_told, PROCESSES)


def run_killed(case: Case) -> List[dict]:
    """One process is killed mid-download; the server recovers; the next load completes the file."""
    go, results = FORK.Event(), FORK.Queue()
    go.set()
    child = FORK.Process(target=load_when_told, args=(go, results))
    child.start()
    part = partial_path(cached_path(case.entry))
    try:
        wait_for(lambda: part.is_file() and not part.is_symlink() and part.stat().st_size > 1000, 60, "a partial file")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    for served in case.server.state.files.values():
        served.mode = "ok"
    return [report_load()]


def run_case(case: Case, fault: Fault) -> List[dict]:
    if fault.runner == "processes":
        return run_processes(case)
    if fault.runner == "killed":
        return run_killed(case)
    if fault.runner == "child":
        outcome = run_in_child(report_load, fault.setup(case))
        if "unavailable" in outcome:
            pytest.skip(f"this machine cannot make the fault: {outcome['unavailable']}")
        assert "error" not in outcome, outcome.get("traceback")
        return [outcome["result"]]
    return [report_load()]


@pytest.mark.parametrize("name", list(FAULTS))
def test_no_fault_changes_a_user_file_or_loads_unverified_bytes(server, exported, tmp_path, monkeypatch, name):
    fault = FAULTS[name]
    case = Case(server, exported, tmp_path, make_decoy(tmp_path / "my_files", exported.result.entry.filename))
    for variable, value in fault.env.items():
        monkeypatch.setenv(variable, value)
    users_file = {"type": "file", "path": str(case.decoy / exported.result.entry.filename)}  # other bytes
    sources = [*fault.sources(case), users_file, case.url()]
    use_manifest(monkeypatch, tmp_path, [{**entry_with_sources(exported, sources), **fault.fields}])
    fault.prepare(case)
    before = snapshot(case.decoy)

    reports = run_case(case, fault)
    assert snapshot(case.decoy) == before
    for report in reports:
        assert report.get("sha256", case.entry.sha256) == case.entry.sha256  # never other bytes
        assert ("sha256" in report) == fault.loads, report.get("not_found")

    assert run_weights("clean") in (0, 1)
    assert snapshot(case.decoy) == before
