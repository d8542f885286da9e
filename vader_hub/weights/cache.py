"""Where vader-hub keeps downloaded weights, partial downloads and locks.

Layout under the cache folder (``VADER_HUB_CACHE``, else ``$XDG_CACHE_HOME/vader_hub``, else
``~/.cache/vader_hub``)::

    weights/<sha256>/<filename>         verified files, renamed into place only after their hash matched
    weights/<sha256>/<filename>.part    an unfinished download, resumed with HTTP Range
    locks/<sha256>.lock                 one downloader per file across processes

Files are addressed by their sha256, so two manifests naming one file share it and a different
file can never take its place. Hugging Face sources live in huggingface_hub's own cache. Nothing
below the cache folder is followed through a link when it is written or deleted (:mod:`.safefs`).
"""
import os
from contextlib import suppress
from pathlib import Path
from typing import List, Optional

from .safefs import Removal, list_entries, plan_removal, remove
from .schema import WeightsEntry

CACHE_ENV = "VADER_HUB_CACHE"
WEIGHTS_DIR_ENV = "VADER_HUB_WEIGHTS_DIR"
PARTIAL_SUFFIX = ".part"


def cache_dir() -> Path:
    """The vader-hub cache folder, read from the environment at each call."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vader_hub"


def weights_dir() -> Optional[Path]:
    """The user's weights folder (``VADER_HUB_WEIGHTS_DIR``), or None if unset."""
    explicit = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(explicit).expanduser() if explicit else None


def cached_path(entry: WeightsEntry, root: Optional[Path] = None) -> Path:
    """Where the verified file of ``entry`` lives in the cache (it may not exist)."""
    return (root or cache_dir()) / "weights" / entry.sha256 / entry.filename


def partial_path(final: Path) -> Path:
    """The unfinished-download file for ``final``."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


def lock_path(entry: WeightsEntry, root: Optional[Path] = None) -> Path:
    """The lock file that serialises downloads of ``entry``'s file across processes."""
    return (root or cache_dir()) / "locks" / f"{entry.sha256}.lock"


def list_cached_files(root: Optional[Path] = None) -> List[Path]:
    """Every entry under ``weights/`` in the cache, sorted by path: finished and partial files, and any
    link in their place (listed itself, never followed)."""
    return list_entries((root or cache_dir()) / "weights", depth=2)


def list_locks(root: Optional[Path] = None) -> List[Path]:
    """Every lock file under ``locks/`` in the cache (a link in its place listed itself), sorted by path."""
    return list_entries((root or cache_dir()) / "locks", depth=1)


def remove_cached(path: Path, root: Optional[Path] = None, dry_run: bool = False) -> Optional[Removal]:
    """Delete one entry of the cache, never through a link, and its folder if that becomes empty.

    Args:
        path: a file below the cache folder (finished, partial or a lock).
        root: the cache folder; default :func:`cache_dir`.
        dry_run: only say what would be removed.

    Returns:
        What was (or would be) removed: ``path``, or the link on the way that stood for it (a link
        to a user's folder is unlinked, the folder kept); None if nothing was there.

    Raises:
        IsADirectoryError: a folder stands at ``path``; it is left alone.
    """
    root = root or cache_dir()
    if dry_run:
        return plan_removal(root, path)
    removal = remove(root, path)
    if removal is not None and removal.path == path:  # not a link on the way, which stood for the folder
        with suppress(OSError):  # the folder still holds another file of the same hash (a partial or a second name)
            path.parent.rmdir()
    return removal
