"""Verified HTTP(S) downloads with requests: resume, retries, timeouts, a deadline and a size cap.

The bytes go to ``<final>.part``; an interrupted transfer (dropped connection, killed process) is
resumed from where it stopped with an HTTP ``Range`` request. The part file is renamed to its
final name only after its sha256 matches, so the final name only ever holds verified bytes. The
part file is opened without following a link (:func:`.safefs.open_partial`): a link planted at its
name is dropped, never resumed from or written through. A part file that cannot be written (a
full disk) is removed rather than kept for a resume. The caller holds the file's lock (see
:mod:`vader_hub.weights.resolve`, which also makes the cache's folders without following links).

Settings (a :class:`DownloadPolicy`, by default read from the environment):
``VADER_HUB_CONNECT_TIMEOUT`` and ``VADER_HUB_READ_TIMEOUT`` (seconds per connect / per read),
``VADER_HUB_DOWNLOAD_DEADLINE`` (seconds for the whole download, retries included),
``VADER_HUB_RETRIES`` and ``VADER_HUB_RETRY_BACKOFF`` (seconds before the first retry, doubling),
``VADER_HUB_ALLOW_HTTP=1`` (allow plain http beyond loopback).
"""
import hashlib
import ipaddress
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional
from urllib.parse import urlparse

import requests
import urllib3
from tqdm.auto import tqdm

from ..checks import env_flag
from ..fileio import sha256_of_file
from .cache import PARTIAL_SUFFIX, partial_path
from .errors import ChecksumMismatchError, DownloadError, SizeLimitError
from .safefs import open_partial

CHUNK_BYTES = 1 << 20
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class DownloadPolicy:
    """Timeouts, retries and safety settings of URL downloads."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 3600.0
    retries: int = 4
    backoff: float = 1.0
    allow_http: bool = False

    @classmethod
    def from_env(cls) -> "DownloadPolicy":
        """The defaults, overridden by the ``VADER_HUB_*`` variables listed in the module docstring."""
        def number(name: str, default: float) -> float:
            value = os.environ.get(name)
            try:
                return float(value) if value else default
            except ValueError:
                raise ValueError(f"{name}={value!r} is not a number of seconds") from None
        return cls(
            connect_timeout=number("VADER_HUB_CONNECT_TIMEOUT", cls.connect_timeout),
            read_timeout=number("VADER_HUB_READ_TIMEOUT", cls.read_timeout),
            deadline=number("VADER_HUB_DOWNLOAD_DEADLINE", cls.deadline),
            retries=int(number("VADER_HUB_RETRIES", cls.retries)),
            backoff=number("VADER_HUB_RETRY_BACKOFF", cls.backoff),
            allow_http=env_flag("VADER_HUB_ALLOW_HTTP"),
        )


class _TransientError(Exception):
    """A failure worth retrying: the next attempt resumes from the bytes already on disk."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8 or ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_allowed(url: str, allow_http: bool) -> None:
    """Refuse anything but https, except plain http on loopback or when explicitly allowed.

    Raises:
        DownloadError: naming the URL and how to allow it.
    """
    parsed = urlparse(url)
    if parsed.scheme == "https":
        return
    if parsed.scheme == "http" and (allow_http or is_loopback(parsed.hostname or "")):
        return
    raise DownloadError(
        f"refusing {url}: only https URLs are downloaded (plain http only from loopback); set "
        "VADER_HUB_ALLOW_HTTP=1 to allow plain http, whose bytes are still checked against the sha256"
    )


def _start_offset(response: requests.Response, handle: BinaryIO, offset: int, url: str) -> int:
    """Where the response body starts in the file, or raise on an unusable status.

    A resume the server cannot serve empties the partial file, so the next attempt starts over.
    """
    status = response.status_code
    if status == 206:
        content_range = response.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            handle.truncate(0)
            raise _TransientError(f"asked for bytes from {offset}, got Content-Range {content_range!r}")
        return offset
    if status == 200:
        return 0
    if status == 416:
        handle.truncate(0)
        raise _TransientError("server refused the resume range (416)")
    if status in RETRY_STATUS:
        raise _TransientError(f"HTTP {status} {response.reason}")
    raise DownloadError(f"{url}: HTTP {status} {response.reason}")


@dataclass(frozen=True)
class _Deadline:
    """The moment a whole download, retries included, must be finished by."""

    seconds: float
    at: float

    def check(self, url: str, received: int, size: int) -> None:
        if time.monotonic() > self.at:
            raise DownloadError(
                f"{url}: not finished within the {self.seconds:g} s deadline ({received} of {size} bytes); "
                "the partial file is kept and resumed next time (VADER_HUB_DOWNLOAD_DEADLINE sets the limit)"
            )


def _stream_into(response: requests.Response, handle: BinaryIO, part: Path, offset: int, size: int, url: str,
                 deadline: _Deadline, progress: Optional[bool]) -> str:
    """Write the response body into ``handle`` (``part``, open) from ``offset``; returns the whole part's sha256."""
    handle.truncate(offset)  # a fresh start (a 200 answer to a resume) drops what was there
    digest = sha256_of_file(part) if offset else hashlib.sha256()
    handle.seek(offset)
    received = offset
    bar = tqdm(total=size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
               desc=part.name[: -len(PARTIAL_SUFFIX)], disable=None if progress is None else not progress)
    with bar:
        while True:
            deadline.check(url, received, size)
            # read1 returns as soon as some bytes arrive, so a trickling server still meets the deadline
            try:
                chunk = response.raw.read1(CHUNK_BYTES)
            except urllib3.exceptions.ReadTimeoutError:
                raise _TransientError(f"read timed out after {received} of {size} bytes") from None
            except urllib3.exceptions.ProtocolError:
                raise _TransientError(f"connection closed after {received} of {size} bytes") from None
            if not chunk:
                break
            if received + len(chunk) > size:
                raise SizeLimitError(f"{url} sent more than the manifest's {size} bytes; cut off")
            handle.write(chunk)
            handle.flush()  # what arrived survives a killed process, for the next run to resume from
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if received < size:
        raise _TransientError(f"connection closed after {received} of {size} bytes")
    return digest.hexdigest()


def _fetch(url: str, part: Path, sha256: str, size: int, policy: DownloadPolicy, deadline: _Deadline,
           progress: Optional[bool]) -> None:
    """Extend ``part`` to the whole file with one request and check its sha256.

    Raises:
        _TransientError: a transfer fault, or a resumed file that does not match (then emptied: the
            next attempt starts over).
        ChecksumMismatchError: a file fetched from its first byte does not match (then emptied).
    """
    with open_partial(part) as handle:
        offset = handle.seek(0, os.SEEK_END)
        if offset > size:  # not a start of this file: start over
            offset = handle.truncate(0)
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
        timeout = (policy.connect_timeout, policy.read_timeout)
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            check_url_allowed(response.url, policy.allow_http)  # a redirect must not downgrade to plain http
            offset = _start_offset(response, handle, offset, url)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and offset + int(declared) > size:
                raise SizeLimitError(f"{url} announces {offset + int(declared)} bytes, the manifest says {size}")
            digest = _stream_into(response, handle, part, offset, size, url, deadline, progress)
        if digest == sha256:
            return
        handle.truncate(0)
    if offset:
        raise _TransientError("sha256 mismatch after resuming a partial file; starting over")
    raise ChecksumMismatchError(f"{url}: served bytes with sha256 {digest}, the manifest says {sha256}; "
                                "nothing was kept")


def _discard(part: Path) -> None:
    with suppress(OSError):  # a folder at its name, or a read-only folder: nothing of ours to remove
        part.unlink(missing_ok=True)


def download_file(url: str, final: Path, sha256: str, size: int, policy: Optional[DownloadPolicy] = None,
                  progress: Optional[bool] = None) -> Path:
    """Download ``url`` to ``final``, resuming a partial file, and rename it only if its sha256 matches.

    Args:
        url: an https URL (plain http only on loopback or with ``policy.allow_http``).
        final: where the verified file goes; ``final`` + ``.part`` holds the unfinished bytes.
        sha256: the expected hex digest.
        size: the expected size; a server sending more is cut off.
        policy: timeouts, retries and deadline; default :meth:`DownloadPolicy.from_env`.
        progress: show a progress bar (None: only on a terminal).

    Returns:
        ``final``.

    Raises:
        DownloadError: refused URL, HTTP error, deadline passed or retries exhausted.
        ChecksumMismatchError: the complete file has another sha256 (nothing is kept).
        SizeLimitError: the server sent more than ``size`` bytes (nothing is kept).
        OSError: the part file could not be opened or written (a folder at its name, a read-only
            folder, a full disk, a name too long); a part file of ours is removed.
    """
    policy = policy or DownloadPolicy.from_env()
    check_url_allowed(url, policy.allow_http)
    final.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(final)
    deadline = _Deadline(policy.deadline, time.monotonic() + policy.deadline)
    failures = []
    while True:
        try:
            _fetch(url, part, sha256, size, policy, deadline, progress)
            os.replace(part, final)
            return final
        except _TransientError as error:
            failures.append(str(error))
        except (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError) as error:
            failures.append(f"{type(error).__name__}: {error}")
        except requests.RequestException as error:  # a request that cannot succeed (a bad redirect, a bad URL)
            raise DownloadError(f"{url}: {type(error).__name__}: {error}") from error
        except (SizeLimitError, ChecksumMismatchError):
            _discard(part)
            raise
        except DownloadError:
            raise  # an HTTP error or the deadline: a partial file is kept for the next run to resume
        except OSError:
            _discard(part)  # the disk is full or will not take the file: a partial would only fill it more
            raise
        if len(failures) > policy.retries:
            raise DownloadError(f"{url}: gave up after {len(failures)} attempts: " + "; ".join(failures))
        wait = min(policy.backoff * 2 ** (len(failures) - 1), MAX_BACKOFF_SECONDS)
        if time.monotonic() + wait > deadline.at:
            raise DownloadError(f"{url}: the {policy.deadline:g} s deadline leaves no time to retry after: "
                                + "; ".join(failures))
        time.sleep(wait)
