"""Where vader-hub keeps downloaded weights, partial downloads and locks.

Layout under the cache folder (``VADER_HUB_CACHE``, else ``$XDG_CACHE_HOME/vader_hub``, else
``~/.cache/vader_hub``)::

    weights/<sha256>/<filename>         verified files, renamed into place only after their hash matched
    weights/<sha256>/<filename>.part    an unfinished download, resumed with HTTP Range
    locks/<sha256>.lock                 one downloader per file across processes

Files are addressed by their sha256, so two manifests naming one file share it and a different
file can never take its place. Hugging Face sources live in huggingface_hub's own cache.
"""
import os
from pathlib import Path
from typing import List, Optional

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
    """Every file under ``weights/`` in the cache, finished or partial, sorted by path."""
    base = (root or cache_dir()) / "weights"
    if not base.is_dir():
        return []
    return [path for path in sorted(base.glob("*/*")) if path.is_file()]


def remove_cached(path: Path) -> int:
    """Delete one cached file (and its folder if it becomes empty); returns the bytes freed."""
    size = path.stat().st_size if path.exists() else 0
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # the folder still holds another file of the same hash (a partial or a second name)
    return size
