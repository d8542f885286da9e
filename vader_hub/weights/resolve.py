"""Finding the verified bytes of a manifest entry: the cache first, then each source in order.

Every candidate file is read once and its bytes are checked against the entry's size and sha256;
those same bytes are what the loader deserialises. A cached file that fails the check is removed
(with a warning) and fetched again; a source that fails is recorded and the next one is tried.
With ``VADER_HUB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` only local and cached files are used. When
nothing works, the error lists every place looked in, what happened there, and how to provide
the file.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ..checks import env_flag
from .cache import cache_dir, cached_path, lock_path, remove_cached, weights_dir
from .download import DownloadPolicy, check_url_allowed, download_file
from .errors import ChecksumMismatchError, DownloadError, SizeLimitError, WeightsNotFoundError
from .hf import cached_hf_file, evict, fetch_hf
from .schema import FileSource, HfSource, UrlSource, WeightsEntry
from .verify import read_verified

logger = logging.getLogger(__name__)
OFFLINE_ENVS = ("VADER_HUB_OFFLINE", "HF_HUB_OFFLINE")


def offline_from_env() -> bool:
    """Whether ``VADER_HUB_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value."""
    return any(env_flag(name) for name in OFFLINE_ENVS)


@dataclass(frozen=True)
class ResolveOptions:
    """Where to look and how to download; :meth:`from_env` reads the environment."""

    cache_dir: Path
    weights_dir: Optional[Path] = None
    offline: bool = False
    policy: DownloadPolicy = field(default_factory=DownloadPolicy)
    progress: Optional[bool] = None

    @classmethod
    def from_env(cls) -> "ResolveOptions":
        return cls(cache_dir(), weights_dir(), offline_from_env(), DownloadPolicy.from_env())


@dataclass(frozen=True)
class VerifiedWeights:
    """The bytes of a weights file, where they came from, and whether a manifest hash checked them."""

    path: Path
    data: bytes
    origin: str
    verified: bool


@dataclass
class _Search:
    """The places looked in so far and what happened at each, for the final error."""

    entry: WeightsEntry
    options: ResolveOptions
    looked: List[str] = field(default_factory=list)

    def note(self, place: str, outcome: str) -> None:
        self.looked.append(f"{place}: {outcome}")

    def note_error(self, place: str, error: Exception, prefix: str) -> None:
        """Note a failure on one line, without the place the message repeats."""
        reason = " ".join(str(error).split())
        self.note(place, reason[len(prefix) + 2:] if reason.startswith(prefix + ": ") else reason)

    def try_file(self, path: Path, place: str, on_mismatch) -> Optional[VerifiedWeights]:
        """Verify one candidate file; on a mismatch call ``on_mismatch(path)`` and note it."""
        if not path.is_file():
            self.note(place, "not there")
            return None
        try:
            data = read_verified(path, self.entry.sha256, self.entry.size)
        except ChecksumMismatchError as error:
            on_mismatch(path)
            self.note(place, f"{error}")
            return None
        return VerifiedWeights(path, data, place, verified=True)


def _discard_cached(path: Path) -> None:
    logger.warning("cached weights %s failed verification (changed after download); removed, fetching again", path)
    remove_cached(path)


def _discard_hf(path: Path) -> None:
    logger.warning("Hugging Face cached file %s failed verification; removed its blob and pointer", path)
    evict(path)


def _keep(path: Path) -> None:
    """A user's local file that fails verification is reported, never deleted."""


def _from_cache(search: _Search) -> Optional[VerifiedWeights]:
    entry = search.entry
    path = cached_path(entry, search.options.cache_dir)
    found = search.try_file(path, f"vader-hub cache {path}", _discard_cached)
    for source in entry.sources:
        if found is not None:
            break
        if isinstance(source, HfSource):
            hf_path = cached_hf_file(source)
            if hf_path is None:
                search.note(f"Hugging Face cache ({source.repo_id}@{source.revision[:12]} {source.filename})",
                            "not there")
            else:
                found = search.try_file(hf_path, f"Hugging Face cache {hf_path}", _discard_hf)
    return found


def _from_url(search: _Search, source: UrlSource) -> Optional[VerifiedWeights]:
    entry, options = search.entry, search.options
    final = cached_path(entry, options.cache_dir)
    lock = lock_path(entry, options.cache_dir)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock), timeout=options.policy.deadline):
            if final.is_file():  # another process finished it while this one waited for the lock
                found = search.try_file(final, f"vader-hub cache {final}", _discard_cached)
                if found is not None:
                    return found
            download_file(source.url, final, entry.sha256, entry.size, options.policy, options.progress)
            return search.try_file(final, source.describe(), _discard_cached)
    except LockTimeout:
        search.note(source.describe(), f"another process held {lock} for over {options.policy.deadline:g} s")
    except (DownloadError, ChecksumMismatchError, SizeLimitError) as error:
        search.note_error(source.describe(), error, source.url)
    return None


def _from_source(search: _Search, source) -> Optional[VerifiedWeights]:
    if isinstance(source, FileSource):
        return search.try_file(source.path, source.describe(), _keep)
    if search.options.offline:
        search.note(source.describe(), "skipped: offline mode")
        return None
    if isinstance(source, UrlSource):
        return _from_url(search, source)
    try:
        if source.endpoint:
            check_url_allowed(source.endpoint, search.options.policy.allow_http)
        path = fetch_hf(source, offline=False)
    except DownloadError as error:
        search.note_error(source.describe(), error, source.describe())
        return None
    return search.try_file(path, source.describe(), _discard_hf)


def how_to_provide(entry: WeightsEntry, options: ResolveOptions) -> str:
    """The ways a user can supply the file of ``entry`` by hand."""
    folder = options.weights_dir or "$VADER_HUB_WEIGHTS_DIR"
    return (
        f"To provide the file: on a machine with network access run `vader-hub weights download {entry.name}` "
        f"and copy {cached_path(entry, options.cache_dir)} to the same path here (VADER_HUB_CACHE sets the "
        f"cache folder); or put your own file at {folder}/{entry.name}.safetensors; or pass "
        "timm.create_model(..., pretrained_cfg_overlay=dict(file='/path/to/file.safetensors'))."
    )


def resolve_entry(entry: WeightsEntry, options: Optional[ResolveOptions] = None) -> VerifiedWeights:
    """The verified bytes of ``entry``: from the cache, else from its sources in manifest order.

    Args:
        entry: the manifest entry.
        options: where to look and how to download; default :meth:`ResolveOptions.from_env`.

    Returns:
        The verified file's path and bytes (hashed once; deserialise these, not the path).

    Raises:
        WeightsNotFoundError: listing every place looked in, what happened there, and how to
            provide the file.
    """
    options = options or ResolveOptions.from_env()
    search = _Search(entry, options)
    found = _from_cache(search)
    for source in entry.sources:
        if found is None:
            found = _from_source(search, source)
    if found is not None:
        return found
    mode = " (offline mode: VADER_HUB_OFFLINE or HF_HUB_OFFLINE is set)" if options.offline else ""
    places = "\n".join(f"  {i}. {line}" for i, line in enumerate(search.looked, 1))
    raise WeightsNotFoundError(
        f"no verified file for {entry.name} (sha256 {entry.sha256}){mode}. Looked in:\n{places}\n"
        + how_to_provide(entry, options)
    )


def cached_copies(entry: WeightsEntry, options: Optional[ResolveOptions] = None) -> List[Path]:
    """The copies of ``entry``'s file in the vader-hub and Hugging Face caches (not verified)."""
    options = options or ResolveOptions.from_env()
    own = cached_path(entry, options.cache_dir)
    hub = [cached_hf_file(source) for source in entry.sources if isinstance(source, HfSource)]
    return [path for path in [own if own.is_file() else None, *hub] if path is not None]
