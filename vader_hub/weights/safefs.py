"""The one rule of every file the cache layer creates, writes or deletes: no link below a cache root is followed.

The vader-hub cache, and the part of huggingface_hub's cache that vader-hub deletes from, hold what
was downloaded there; a user, a tool or an attacker may still leave a link in them that points at
other files. Every folder the cache layer makes, every partial file it opens and every entry it
removes goes through this module, which looks at each name below the root with ``lstat`` and
opens with ``O_NOFOLLOW``:

- a link is an entry of the cache like any other. Removing it (or a path through it) unlinks the
  link; a link standing where the cache must make a folder or a file is unlinked first. What it
  points at is never written or deleted through it;
- anything else in the way (a file where a folder belongs, a folder where a file belongs) may hold
  someone's data: it is left alone, and the operation fails with an ``OSError`` that says so.

The root itself is the user's choice (``VADER_HUB_CACHE`` may well be a link) and is followed.
Reading a verified file through a link is harmless and is not restricted here.
"""
import errno
import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, List, Optional

NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
PARTIAL_FLAGS = os.O_RDWR | os.O_CREAT | NO_FOLLOW | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Removal:
    """One entry taken out of a cache: the name unlinked, the bytes that freed, and whether it was a
    link whose target was kept (not deleted through it)."""

    path: Path
    size: int
    target_kept: bool

    def describe(self) -> str:
        return f"{self.path} (a link; what it points to was left alone)" if self.target_kept else str(self.path)


def describe_os_error(error: OSError) -> str:
    """An ``OSError`` on one line, place first: ``/cache/locks: Permission denied``."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{error.filename}: {reason}" if error.filename else reason


def _names_below(root: Path, path: Path) -> List[Path]:
    """``root/a``, ``root/a/b``, ... ``path``: each name below ``root`` on the way to ``path``."""
    names, current = [], root
    for part in path.relative_to(root).parts:
        current = current / part
        names.append(current)
    return names


def _drop_link(path: Path) -> None:
    if os.path.islink(path):
        with suppress(FileNotFoundError):  # another process dropped it first
            os.unlink(path)


def make_folders(root: Path, folder: Path) -> Path:
    """Make ``folder`` (below ``root``) and the folders above it real folders, unlinking links on the way.

    Returns:
        ``folder``.

    Raises:
        NotADirectoryError: a file stands where a folder belongs; it is left alone.
        OSError: the filesystem refused (read-only, full, a name too long).
    """
    root.mkdir(parents=True, exist_ok=True)
    for current in _names_below(root, folder):
        _drop_link(current)
        with suppress(FileExistsError):  # there already, or made by another process meanwhile
            os.mkdir(current)
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder; left alone", str(current))
    return folder


def prepare_file(root: Path, path: Path) -> Path:
    """Make room for the cache to create ``path``: real folders above it, no link at its name.

    Returns:
        ``path``, whose name is free or holds a regular file.

    Raises:
        NotADirectoryError / IsADirectoryError: a file stands where a folder belongs, or a folder at
            ``path``; it is left alone.
        OSError: the filesystem refused (read-only, full, a name too long).
    """
    make_folders(root, path.parent)
    _drop_link(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file; left alone", str(path))
    return path


def open_partial(path: Path) -> BinaryIO:
    """Open a partial download for reading and writing, creating it, never through a link.

    A link at its name is unlinked first, so the bytes go to the cache's own file and a user's file
    it pointed at is neither resumed from nor written.

    Raises:
        OSError: the file cannot be opened (a folder at its name, a read-only folder, a name too long).
    """
    _drop_link(path)
    return os.fdopen(os.open(path, PARTIAL_FLAGS, 0o666), "r+b")


def plan_removal(root: Path, path: Path) -> Optional[Removal]:
    """What removing ``path`` (below ``root``) takes out, without following links.

    Returns:
        ``path`` itself, or the first link on the way to it (the cache's entry that stands for it);
        None if nothing is there.

    Raises:
        IsADirectoryError: a folder stands at ``path``; folders are left alone.
    """
    for current in _names_below(root, path):
        try:
            info = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(info.st_mode):
            return Removal(current, 0, target_kept=True)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file; left alone", str(path))
    return Removal(path, info.st_size, target_kept=False)


def remove(root: Path, path: Path) -> Optional[Removal]:
    """Remove ``path`` (below ``root``) as :func:`plan_removal` describes; returns what was removed."""
    removal = plan_removal(root, path)
    if removal is not None:
        with suppress(FileNotFoundError):  # removed by another process meanwhile
            os.unlink(removal.path)
    return removal


def list_entries(folder: Path, depth: int) -> List[Path]:
    """The regular files ``depth`` levels below ``folder`` reached through real folders, and every link
    met on the way (never followed), sorted by path."""
    try:
        info = os.lstat(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if stat.S_ISLNK(info.st_mode):
        return [folder]
    if depth == 0:
        return [folder] if stat.S_ISREG(info.st_mode) else []
    if not stat.S_ISDIR(info.st_mode):
        return []
    return [entry for name in sorted(os.listdir(folder)) for entry in list_entries(folder / name, depth - 1)]
