"""Small file helpers: atomic writes and hashing (used by every layer that writes files)."""
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Callable, List, Union

HASH_CHUNK_BYTES = 1 << 22


def write_through_temporary(path: Union[str, os.PathLike], write: Callable[[Path], None]) -> Path:
    """Let ``write`` create a temporary sibling of ``path``, make it durable, then rename it over ``path``.

    A reader sees the old file or the whole new one, never a partial one; on failure the temporary
    file is removed and ``path`` is unchanged. The temporary name keeps ``path``'s suffix (PIL and
    safetensors choose formats by it) and is created by ``write`` itself, so the result gets the
    usual permissions of a new file rather than a private temporary file's.

    Args:
        path: The file to write; its folder must exist.
        write: Writes the complete contents to the path it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    temporary = path.with_name(_temporary_name(path, os.getpid(), secrets.token_hex(4)))
    try:
        write(temporary)
        _fsync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def _temporary_name(path: Path, pid: int, token: str) -> str:
    """The name of a write's temporary sibling: hidden, naming the writing process, keeping the suffix."""
    return f".{path.stem}.{pid}-{token}.tmp{path.suffix}"


def _temporary_pattern(path: Path) -> "re.Pattern[str]":
    """Matches the names :func:`_temporary_name` gives for ``path`` (8-hex tokens), capturing the pid."""
    return re.compile(rf"\.{re.escape(path.stem)}\.(\d+)-[0-9a-f]{{8}}\.tmp{re.escape(path.suffix)}")


def atomic_write(path: Path, data: Union[bytes, str]) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, creating its folder; see :func:`write_through_temporary`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    write_through_temporary(path, lambda temporary: temporary.write_bytes(payload))


def _fsync_file(path: Path) -> None:
    # POSIX syncs through a read-only descriptor (the writer may have made the file read-only);
    # Windows commits a file only through a writable one.
    descriptor = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable, where the platform and filesystem allow it.

    The file is already in place when this runs, so a filesystem that cannot sync a directory
    (Windows, some FUSE and network mounts) must not turn a complete write into an error.
    """
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def sha256_of_file(path: Path) -> "hashlib._Hash":
    """A sha256 object fed with a file's bytes, read in chunks; ``.hexdigest()`` is the file's hash,
    and a caller may go on feeding it (a download resumes after the bytes already on disk)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest


def remove_stale_temporaries(path: Union[str, os.PathLike]) -> List[Path]:
    """Remove the temporary files that killed writes of ``path`` left beside it.

    A write killed with SIGKILL cannot remove its temporary file (:func:`_temporary_name`), which may
    be as large as the file (a checkpoint). Only files of exactly that name pattern are removed, and
    only those whose process is gone: a live process may be writing one.

    Returns:
        The files removed.
    """
    path = Path(path)
    pattern = _temporary_pattern(path)
    removed = []
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match and not candidate.is_dir() and not _is_running(int(match.group(1))):
            candidate.unlink(missing_ok=True)  # a link is removed itself, never what it points to
            removed.append(candidate)
    return removed


def _is_running(pid: int) -> bool:
    """Whether a process with this id exists (on this machine); a process of another user counts too."""
    if os.name != "posix":
        return True  # on Windows os.kill(pid, 0) would terminate the process: keep its files
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    return True
