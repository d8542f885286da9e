"""Real faults for the cache tests, made in forked processes: no permission override, a full private tmpfs.

A test that runs as root cannot make a file unreadable or a folder read-only with ``chmod`` alone:
root's ``CAP_DAC_OVERRIDE`` bypasses permission bits. :func:`without_permission_override` drops
that capability (and ``CAP_DAC_READ_SEARCH``) in a forked child, so the bits bind as they do for
any user; for a user who is not root it changes nothing. :func:`private_tmpfs` mounts a small
tmpfs in the child's own mount namespace, so a full disk is real and disappears with the child.
:func:`snapshot` records a folder's files, links and folders, to prove that nothing in it changed.
"""
import ctypes
import hashlib
import multiprocessing
import os
import subprocess
import traceback
from pathlib import Path
from typing import Callable, Dict

FORK = multiprocessing.get_context("fork")
CLONE_NEWNS = 0x00020000
CAPABILITY_VERSION_3 = 0x20080522
PERMISSION_OVERRIDES = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


class SetupUnavailable(Exception):
    """The machine does not allow the fault (no capabilities, no mount namespaces): the test is skipped."""


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc_function(name: str):
    function = getattr(ctypes.CDLL(None, use_errno=True), name, None)
    if function is None:
        raise SetupUnavailable(f"the C library has no {name}() (not Linux)")
    return function


def without_permission_override() -> None:
    """Make permission bits bind for this process, root included (drops the two DAC capabilities)."""
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if _libc_function("capget")(ctypes.byref(header), data) != 0:
        raise SetupUnavailable(f"capget failed: {os.strerror(ctypes.get_errno())}")
    data[0].effective &= ~PERMISSION_OVERRIDES
    if _libc_function("capset")(ctypes.byref(header), data) != 0:
        raise SetupUnavailable(f"capset failed: {os.strerror(ctypes.get_errno())}")


def private_tmpfs(folder: Path, size: int) -> Callable[[], None]:
    """A child setup that mounts a tmpfs of ``size`` bytes on ``folder`` in a private mount namespace."""
    def setup() -> None:
        if _libc_function("unshare")(CLONE_NEWNS) != 0:
            raise SetupUnavailable(f"unshare(CLONE_NEWNS) failed: {os.strerror(ctypes.get_errno())}")
        folder.mkdir(parents=True, exist_ok=True)
        for command in (["mount", "--make-rprivate", "/"], ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                                              str(folder)]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SetupUnavailable(f"{' '.join(command)}: {done.stderr.strip()}")
    return setup


def _child(setup: Callable[[], None], work: Callable[[], dict], results) -> None:
    try:
        setup()
    except (SetupUnavailable, OSError) as error:
        results.put({"unavailable": str(error)})
        return
    try:
        results.put({"result": work()})
    except BaseException as error:  # reported to the parent, which asserts on it
        results.put({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})


def run_in_child(work: Callable[[], dict], setup: Callable[[], None] = lambda: None, timeout: float = 120) -> dict:
    """Run ``setup`` then ``work`` in a forked process; returns ``{"result": ...}``, ``{"error": ...}`` or
    ``{"unavailable": reason}`` when ``setup`` could not make the fault."""
    results = FORK.Queue()
    child = FORK.Process(target=_child, args=(setup, work, results))
    child.start()
    try:
        return results.get(timeout=timeout)
    finally:
        child.join(timeout=30)


def start_together(target: Callable, processes: int) -> list:
    """Fork ``processes`` children running ``target(go, results)``, release them at once, collect one report each."""
    go, results = FORK.Event(), FORK.Queue()
    children = [FORK.Process(target=target, args=(go, results)) for _ in range(processes)]
    for child in children:
        child.start()
    go.set()
    reports = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    return reports


def snapshot(folder: Path) -> Dict[str, str]:
    """Every entry below ``folder``: a file's sha256 and mode, a link's target, a folder's mode."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            entries[str(path.relative_to(folder))] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            entries[str(path.relative_to(folder))] = f"folder {info.st_mode:o}"
        else:
            entries[str(path.relative_to(folder))] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {info.st_mode:o}"
    return entries


def make_decoy(folder: Path, weights_name: str) -> Path:
    """A folder of a user's files, one of them a weights file named like the cache's (other bytes)."""
    (folder / "sub").mkdir(parents=True)
    (folder / "photo.jpg").write_bytes(hashlib.sha256(b"photo").digest() * 512)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / weights_name).write_bytes(b"my own weights, not the manifest's" * 300)
    (folder / "sub" / "data.bin").write_bytes(bytes(range(256)) * 40)
    return folder
