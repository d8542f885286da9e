"""Several processes at once, and a process killed mid-download, against a loopback mirror.

The processes are forked from the test process: real, separate processes (own file descriptors,
own ``flock`` locks, killable), without paying a fresh interpreter's torch import eight times.
"""
import hashlib
import multiprocessing
import os
import signal
import time

import torch

from vader_hub.weights import load_pretrained, read_manifests
from vader_hub.weights.cache import cached_path, partial_path

from .helpers import entry_with_sources, small_module, use_manifest

PROCESSES = 8
CFG = {"architecture": "vader_r18_fpn", "tag": "test"}
FORK = multiprocessing.get_context("fork")


def tensors_digest(module: torch.nn.Module) -> str:
    return hashlib.sha256(b"".join(v.numpy().tobytes() for v in module.state_dict().values())).hexdigest()


def load_and_report(go, results) -> None:
    """In a child: wait for the go signal, load, and report the file and the tensors loaded."""
    go.wait(60)
    try:
        model = small_module(seed=os.getpid() % 1000, channels=64)
        path = load_pretrained(model, CFG)
        results.put({"path": str(path), "tensors": tensors_digest(model)})
    except Exception as error:  # report it to the parent, which asserts on it
        results.put({"error": f"{type(error).__name__}: {error}"})


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_concurrent_processes_download_once_and_load_the_same_file(server, exported, tmp_path, monkeypatch):
    url = server.add("/w", exported.data, mode="slow", seconds=1.0)
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [{"type": "url", "url": url}])])
    go, results = FORK.Event(), FORK.Queue()
    children = [FORK.Process(target=load_and_report, args=(go, results)) for _ in range(PROCESSES)]
    for child in children:
        child.start()
    go.set()  # all start loading at once; the download takes 1 s, so they overlap
    reports = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
    assert [r.get("error") for r in reports] == [None] * PROCESSES
    assert len(server.requests_for("/w")) == 1
    assert {r["path"] for r in reports} == {str(cached_path(read_manifests().entries[0]))}
    assert {r["tensors"] for r in reports} == {tensors_digest(exported.module)}


def test_a_killed_download_is_completed_by_the_next_run(server, exported, tmp_path, monkeypatch):
    url = server.add("/w", exported.data, mode="slow", seconds=10.0)  # pieces 0.2 s apart: within the read timeout
    use_manifest(monkeypatch, tmp_path, [entry_with_sources(exported, [{"type": "url", "url": url}])])
    part = partial_path(cached_path(read_manifests().entries[0]))
    go, results = FORK.Event(), FORK.Queue()
    go.set()
    child = FORK.Process(target=load_and_report, args=(go, results))
    child.start()
    try:
        wait_for(lambda: part.exists() and part.stat().st_size >= len(exported.data) // 10, 60, "a partial file")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    kept = part.stat().st_size
    assert 0 < kept < len(exported.data) and not cached_path(read_manifests().entries[0]).exists()

    server.add("/w", exported.data)  # the server recovers; the lock died with the process
    model = small_module(seed=6, channels=64)
    load_pretrained(model, CFG)
    assert tensors_digest(model) == tensors_digest(exported.module)
    assert server.requests_for("/w")[-1].range == f"bytes={kept}-"
    assert not part.exists()
