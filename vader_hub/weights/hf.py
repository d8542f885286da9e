"""Hugging Face Hub sources, through huggingface_hub's own client and cache.

huggingface_hub brings the user's token, its cache (shared with every other library), its lock
and ``HF_HUB_OFFLINE``; the manifest pins the revision to a commit, so a cached file is found
without the network. huggingface_hub checks only sizes: the caller verifies the sha256, and on a
mismatch :func:`evict` removes both the snapshot pointer and the blob, so no later run sees them.

Its download and metadata timeouts are its own (``HF_HUB_DOWNLOAD_TIMEOUT``,
``HF_HUB_ETAG_TIMEOUT``, read by huggingface_hub at import).
"""
import os
from pathlib import Path
from typing import Optional

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download, try_to_load_from_cache

from .errors import DownloadError
from .schema import HfSource


def hf_cache_dir() -> Path:
    """huggingface_hub's cache folder, read from the environment at each call."""
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    return Path(home).expanduser() / "hub" if home else Path(hf_constants.HF_HUB_CACHE)


def cached_hf_file(source: HfSource) -> Optional[Path]:
    """The file of ``source`` in the Hugging Face cache, or None; never touches the network."""
    found = try_to_load_from_cache(source.repo_id, source.filename, cache_dir=hf_cache_dir(),
                                   revision=source.revision)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def fetch_hf(source: HfSource, offline: bool) -> Path:
    """Fetch ``source`` with huggingface_hub (from its cache when there) and return the local path.

    Args:
        source: repo, pinned commit, file and optional endpoint.
        offline: look only in the cache.

    Returns:
        The snapshot path (a symlink to the blob on most systems), not yet sha256-verified.

    Raises:
        DownloadError: with huggingface_hub's reason (not found, offline and not cached, HTTP error).
    """
    try:
        return Path(hf_hub_download(
            source.repo_id, source.filename, revision=source.revision, cache_dir=hf_cache_dir(),
            endpoint=source.endpoint, local_files_only=offline,
        ))
    except Exception as error:  # any failure of one source means: try the next one, with this reason
        raise DownloadError(f"{source.describe()}: {type(error).__name__}: {error}") from error


def evict(path: Path) -> None:
    """Remove a Hugging Face cached file: its snapshot pointer and the blob it points to."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)
