"""Finding the verified bytes of a manifest entry: the cache first, then each source in order.

Every candidate file is read once and its bytes are checked against the entry's size and sha256;
those same bytes are what the loader deserialises. A cached file that fails the check is removed
(with a warning, under the download lock, so no other process's download loses its folder) and
fetched again; a source that fails is recorded and the next one is tried. A fault of the cache
itself (read-only, full, unreadable, a file or folder where the other belongs, a name too long)
is recorded the same way: a URL source is then downloaded into a temporary folder outside the
cache, verified alike, and removed once read. The cache never follows a link out of itself
(:mod:`.safefs`).
With ``VADER_HUB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` only local and cached files are used. When
nothing works, the error lists every place looked in, what happened there, and how to provide
the file.
"""
import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ..checks import env_flag
from .cache import cache_dir, cached_path, lock_path, remove_cached, weights_dir
from .download import DownloadPolicy, check_url_allowed, download_file
from .errors import ChecksumMismatchError, DownloadError, SizeLimitError, WeightsNotFoundError
from .hf import cached_hf_file, evict, fetch_hf
from .safefs import describe_os_error, prepare_file
from .schema import FileSource, HfSource, UrlSource, WeightsEntry
from .verify import read_verified

logger = logging.getLogger(__name__)
OFFLINE_ENVS = ("VADER_HUB_OFFLINE", "HF_HUB_OFFLINE")
TRANSFER_FAULTS = (DownloadError, ChecksumMismatchError, SizeLimitError)  # the source's fault, not the cache's


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
    """The bytes of a weights file, where they came from, and whether a manifest hash checked them.

    ``path`` is the file the bytes were read from: a temporary file, removed after reading, when
    the cache could not be written (``origin`` then says so).
    """

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
        line = f"{place}: {outcome}"
        if line not in self.looked:  # a place looked at again under the lock, with the same outcome
            self.looked.append(line)

    def note_error(self, place: str, error: Exception, prefix: str) -> None:
        """Note a failure on one line, without the place the message repeats."""
        reason = " ".join(str(error).split())
        self.note(place, reason[len(prefix) + 2:] if reason.startswith(prefix + ": ") else reason)

    def try_file(self, path: Path, place: str, on_mismatch: Callable[[Path], None]) -> Optional[VerifiedWeights]:
        """Verify one candidate file; on a mismatch call ``on_mismatch(path)``. Whatever goes wrong,
        a file that is not there, cannot be read or cannot be removed, is noted, never raised."""
        try:
            if not path.is_file():
                self.note(place, "is a folder, not a file; left alone" if path.is_dir() else "not there")
                return None
            data = read_verified(path, self.entry.sha256, self.entry.size)
        except ChecksumMismatchError as error:
            self.note(place, f"{error}{_discarded(on_mismatch, path)}")
            return None
        except FileNotFoundError:  # removed by another process since the check: the sources look again
            self.note(place, "not there")
            return None
        except OSError as error:
            self.note(place, f"could not be read ({describe_os_error(error)})")
            return None
        return VerifiedWeights(path, data, place, verified=True)


def _discarded(on_mismatch: Callable[[Path], None], path: Path) -> str:
    """Run ``on_mismatch(path)``; what to add to the note if it failed."""
    try:
        on_mismatch(path)
    except OSError as error:  # a read-only cache, or the lock held elsewhere: the next load tries again
        return f"; could not be removed ({describe_os_error(error)})"
    return ""


@contextmanager
def _cache_lock(search: _Search) -> Iterator[None]:
    """Hold the entry's download lock: every write to and removal from its cache folder happens under it."""
    root = search.options.cache_dir
    lock = prepare_file(root, lock_path(search.entry, root))
    with FileLock(str(lock), timeout=search.options.policy.deadline):
        yield


def _remove_corrupt(search: _Search, path: Path) -> None:
    """Remove a cached copy that failed verification; the caller holds the lock."""
    logger.warning("cached weights %s failed verification (changed after download); removed, fetching again", path)
    remove_cached(path, search.options.cache_dir)


def _evict_corrupt(search: _Search, path: Path) -> None:
    """Take the lock, then remove a cached copy only if it still fails: another process may have
    evicted it and downloaded the verified file meanwhile."""
    with _cache_lock(search):
        try:
            read_verified(path, search.entry.sha256, search.entry.size)
        except ChecksumMismatchError:
            _remove_corrupt(search, path)
        except FileNotFoundError:
            pass  # another process removed it


def _discard_hf(path: Path) -> None:
    removed = ", ".join(removal.describe() for removal in evict(path))
    logger.warning("Hugging Face cached file %s failed verification; removed %s", path, removed or "nothing")


def _keep(path: Path) -> None:
    """A user's local file that fails verification is reported, never deleted."""


def _from_hf_cache(search: _Search, source: HfSource) -> Optional[VerifiedWeights]:
    place = f"Hugging Face cache ({source.repo_id}@{source.revision[:12]} {source.filename})"
    try:
        hf_path = cached_hf_file(source)
    except OSError as error:  # an unreadable cache, a file where its folder belongs
        search.note(place, f"could not be read ({describe_os_error(error)})")
        return None
    if hf_path is None:
        search.note(place, "not there")
        return None
    return search.try_file(hf_path, f"Hugging Face cache {hf_path}", _discard_hf)


def _from_cache(search: _Search) -> Optional[VerifiedWeights]:
    entry = search.entry
    path = cached_path(entry, search.options.cache_dir)
    found = search.try_file(path, f"vader-hub cache {path}", partial(_evict_corrupt, search))
    for source in entry.sources:
        if found is None and isinstance(source, HfSource):
            found = _from_hf_cache(search, source)
    return found


def _into_cache(search: _Search, source: UrlSource) -> Optional[VerifiedWeights]:
    """Download ``source`` into the cache; the caller holds the lock."""
    entry, options = search.entry, search.options
    final = cached_path(entry, options.cache_dir)
    if final.is_file():  # another process finished it while this one waited for the lock
        found = search.try_file(final, f"vader-hub cache {final}", partial(_remove_corrupt, search))
        if found is not None:
            return found
    prepare_file(options.cache_dir, final)  # under the lock, right before the partial file is opened
    download_file(source.url, final, entry.sha256, entry.size, options.policy, options.progress)
    return search.try_file(final, source.describe(), partial(_remove_corrupt, search))


def _from_url(search: _Search, source: UrlSource) -> Optional[VerifiedWeights]:
    """Download into the cache, or, when the cache cannot take the file, into a temporary folder."""
    try:
        with _cache_lock(search):
            return _into_cache(search, source)
    except LockTimeout as error:
        search.note(source.describe(), f"another process held {error.lock_file} for over "
                                       f"{search.options.policy.deadline:g} s")
        return None
    except TRANSFER_FAULTS as error:
        search.note_error(source.describe(), error, source.url)
        return None
    except OSError as error:  # the cache cannot take the file: read-only, full, something in the way, a long name
        search.note(f"vader-hub cache {search.options.cache_dir}",
                    f"could not be written ({describe_os_error(error)}); downloading outside it")
    return _outside_cache(search, source)


def _outside_cache(search: _Search, source: UrlSource) -> Optional[VerifiedWeights]:
    """Download ``source`` into a temporary folder, verified the same way, removed once read."""
    entry, options = search.entry, search.options
    try:
        with tempfile.TemporaryDirectory(prefix="vader-hub-") as folder:
            path = download_file(source.url, Path(folder) / "weights.safetensors", entry.sha256, entry.size,
                                 options.policy, options.progress)
            found = search.try_file(path, source.describe(), _keep)
    except TRANSFER_FAULTS as error:
        search.note_error(source.describe(), error, source.url)
        return None
    except OSError as error:
        search.note(source.describe(), f"not written to a temporary folder either ({describe_os_error(error)})")
        return None
    origin = f"{source.describe()} (through a temporary folder: the vader-hub cache could not be written)"
    return None if found is None else replace(found, origin=origin)


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
        path = fetch_hf(source, offline=False, max_size=search.entry.size)
    except (DownloadError, SizeLimitError) as error:
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
    hub = [_hub_copy(source) for source in entry.sources if isinstance(source, HfSource)]
    return [path for path in [own if os.path.isfile(own) else None, *hub] if path is not None]


def _hub_copy(source: HfSource) -> Optional[Path]:
    try:
        return cached_hf_file(source)
    except OSError:  # a Hub cache that cannot be read (a file where its folder belongs) holds no copy to list
        return None
