"""Hugging Face Hub sources, through huggingface_hub's own client and cache.

huggingface_hub brings the user's token, its cache (shared with every other library), its lock
and ``HF_HUB_OFFLINE``; the manifest pins the revision to a commit, so a cached file is found
without the network. huggingface_hub checks only sizes: the caller verifies the sha256, and on a
mismatch :func:`evict` removes both the snapshot pointer and the blob, so no later run sees them.
A pointer that links anywhere but a blob of its repo (a user's own file) is unlinked alone. A file
the Hub announces as larger than the manifest's size is refused before its body is fetched.

Its download and metadata timeouts are its own (``HF_HUB_DOWNLOAD_TIMEOUT``,
``HF_HUB_ETAG_TIMEOUT``, read by huggingface_hub at import).
"""
import os
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

from .errors import DownloadError, SizeLimitError
from .safefs import Removal, plan_removal, remove
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


def fetch_hf(source: HfSource, offline: bool, max_size: Optional[int] = None) -> Path:
    """Fetch ``source`` with huggingface_hub (from its cache when there) and return the local path.

    Args:
        source: repo, pinned commit, file and optional endpoint.
        offline: look only in the cache.
        max_size: the most bytes the file may have (the manifest's size): a larger file, as the Hub
            announces it, is refused before it is downloaded.

    Returns:
        The snapshot path (a symlink to the blob on most systems), not yet sha256-verified.

    Raises:
        DownloadError: with huggingface_hub's reason (not found, offline and not cached, HTTP error).
        SizeLimitError: the Hub announces more than ``max_size`` bytes.
    """
    try:
        announced = None if offline or max_size is None else _announced_size(source)
        if announced is None or announced <= max_size:
            return Path(hf_hub_download(
                source.repo_id, source.filename, revision=source.revision, cache_dir=hf_cache_dir(),
                endpoint=source.endpoint, local_files_only=offline,
            ))
    except Exception as error:  # any failure of one source means: try the next one, with this reason
        raise DownloadError(f"{source.describe()}: {type(error).__name__}: {error}") from error
    raise SizeLimitError(f"{source.describe()}: the Hub announces {announced} bytes, the manifest says {max_size}; "
                         "not downloaded")


def _announced_size(source: HfSource) -> Optional[int]:
    """The file's size as the Hub's metadata (one HEAD request) gives it."""
    url = hf_hub_url(source.repo_id, source.filename, revision=source.revision, endpoint=source.endpoint)
    return get_hf_file_metadata(url, timeout=hf_constants.HF_HUB_ETAG_TIMEOUT).size


def evict(path: Path, dry_run: bool = False) -> List[Removal]:
    """Remove a Hugging Face cached file: its snapshot pointer and the blob it points to.

    Only a blob in the repo's ``blobs/`` folder is deleted; a pointer that links elsewhere (a user's
    own file) is unlinked and what it points to kept. Nothing is followed through a link
    (:mod:`.safefs`).

    Args:
        path: the snapshot path, as :func:`cached_hf_file` or :func:`fetch_hf` return it.
        dry_run: only say what would be removed.

    Returns:
        What was (or would be) removed.
    """
    root = hf_cache_dir()
    blob = _blob_of(root, path)
    act = plan_removal if dry_run else remove
    pointer, freed = act(root, path), act(root, blob) if blob is not None else None
    if pointer is not None and freed is not None:
        pointer = replace(pointer, target_kept=freed.target_kept)  # its target is the blob, removed with it
    return [removal for removal in (pointer, freed) if removal is not None]


def _blob_of(root: Path, pointer: Path) -> Optional[Path]:
    """The blob a snapshot pointer links to, if it is one of its repo's: ``<repo>/snapshots/<commit>/<file>``
    -> ``<repo>/blobs/<name>``; None for a pointer that is a plain file or links anywhere else."""
    parts = pointer.relative_to(root).parts
    if not os.path.islink(pointer) or len(parts) < 4 or parts[1] != "snapshots":
        return None
    target = Path(os.path.normpath(pointer.parent / os.readlink(pointer)))
    blobs = root / parts[0] / "blobs"
    return target if target.parent == blobs and os.path.realpath(target) == os.path.realpath(pointer) else None
