"""URL downloads against real servers on 127.0.0.1: every transfer fault, resume, caps and refusals."""
import hashlib
import time
from pathlib import Path

import pytest

from vader_hub.weights.download import DownloadPolicy, check_url_allowed, download_file
from vader_hub.weights.errors import ChecksumMismatchError, DownloadError, SizeLimitError

FAST = DownloadPolicy(connect_timeout=2, read_timeout=0.5, deadline=20, retries=2, backoff=0.05)
PAYLOAD = bytes(range(256)) * 64  # 16 KiB whose every prefix is distinct
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def fetch(url: str, tmp_path: Path, policy: DownloadPolicy = FAST) -> Path:
    return download_file(url, tmp_path / "w" / "file.safetensors", SHA, len(PAYLOAD), policy, progress=False)


def leftovers(tmp_path: Path) -> list:
    folder = tmp_path / "w"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_plain_download_matches_bytes(server, tmp_path):
    path = fetch(server.add("/f", PAYLOAD), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["file.safetensors"]


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    path = fetch(server.add("/f", PAYLOAD, mode="drop_once"), tmp_path)
    assert path.read_bytes() == PAYLOAD
    ranges = [r.range for r in server.requests_for("/f")]
    assert ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_truncated_body_fails_after_retries_and_keeps_only_the_partial(server, tmp_path):
    with pytest.raises(DownloadError, match="gave up after 3 attempts.*connection closed after"):
        fetch(server.add("/f", PAYLOAD, mode="truncate"), tmp_path)
    assert leftovers(tmp_path) == ["file.safetensors.part"]  # never the final name
    assert len(server.requests_for("/f")) == 3


def test_existing_partial_file_is_resumed(server, tmp_path):
    part = tmp_path / "w" / "file.safetensors.part"
    part.parent.mkdir()
    part.write_bytes(PAYLOAD[:5000])
    assert fetch(server.add("/f", PAYLOAD), tmp_path).read_bytes() == PAYLOAD
    assert [r.range for r in server.requests_for("/f")] == ["bytes=5000-"]


def test_corrupt_partial_file_is_detected_and_restarted(server, tmp_path):
    part = tmp_path / "w" / "file.safetensors.part"
    part.parent.mkdir()
    part.write_bytes(b"\0" * 5000)
    assert fetch(server.add("/f", PAYLOAD), tmp_path).read_bytes() == PAYLOAD
    assert [r.range for r in server.requests_for("/f")] == ["bytes=5000-", None]


def test_wrong_bytes_raise_and_leave_nothing(server, tmp_path):
    wrong = PAYLOAD[::-1]
    with pytest.raises(ChecksumMismatchError, match=f"sha256 {hashlib.sha256(wrong).hexdigest()}.*nothing was kept"):
        fetch(server.add("/f", wrong), tmp_path)
    assert leftovers(tmp_path) == []


def test_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.base_url + "/missing", tmp_path)
    assert len(server.requests_for("/missing")) == 1


def test_500_is_retried_then_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="gave up after 3 attempts: HTTP 500"):
        fetch(server.add("/f", PAYLOAD, mode="status500"), tmp_path)
    assert len(server.requests_for("/f")) == 3


def test_stalled_server_hits_the_read_timeout(server, tmp_path):
    started = time.monotonic()
    with pytest.raises(DownloadError, match="(?i)timed out"):
        fetch(server.add("/f", PAYLOAD, mode="stall"), tmp_path)
    assert time.monotonic() - started < 10  # 3 attempts of a 0.5 s read timeout, not the server's 30 s stall


def test_trickling_server_hits_the_total_deadline(server, tmp_path):
    policy = DownloadPolicy(connect_timeout=2, read_timeout=0.5, deadline=1.0, retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="not finished within the 1 s deadline"):
        fetch(server.add("/f", PAYLOAD, mode="trickle"), tmp_path, policy)
    assert time.monotonic() - started < 3  # each read succeeds within the read timeout: only the deadline stops it
    assert (tmp_path / "w" / "file.safetensors.part").stat().st_size > 0  # kept for a later resume


def test_oversized_body_without_length_is_cut_off(server, tmp_path):
    with pytest.raises(SizeLimitError, match=f"more than the manifest's {len(PAYLOAD)} bytes"):
        fetch(server.add("/f", PAYLOAD + b"x" * 4096, mode="no_length"), tmp_path)
    assert leftovers(tmp_path) == []


def test_oversized_announced_length_is_refused_before_the_body(server, tmp_path):
    with pytest.raises(SizeLimitError, match=f"announces {len(PAYLOAD) + 1} bytes"):
        fetch(server.add("/f", PAYLOAD + b"x"), tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("url", ["http://example.com/w.safetensors", "http://10.0.0.1/w", "ftp://127.0.0.1/w"])
def test_plain_http_is_refused_off_loopback(url):
    with pytest.raises(DownloadError, match="refusing"):
        check_url_allowed(url, allow_http=False)


@pytest.mark.parametrize("url", ["https://example.com/w", "http://127.0.0.1:8/w", "http://[::1]/w",
                                 "http://localhost/w"])
def test_https_and_loopback_are_allowed(url):
    check_url_allowed(url, allow_http=False)


def test_plain_http_can_be_allowed_explicitly():
    check_url_allowed("http://example.com/w", allow_http=True)


def test_policy_reads_the_environment(monkeypatch):
    monkeypatch.setenv("VADER_HUB_READ_TIMEOUT", "7")
    monkeypatch.setenv("VADER_HUB_ALLOW_HTTP", "1")
    policy = DownloadPolicy.from_env()
    assert (policy.read_timeout, policy.allow_http) == (7.0, True)
    monkeypatch.setenv("VADER_HUB_READ_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="VADER_HUB_READ_TIMEOUT='soon'"):
        DownloadPolicy.from_env()
