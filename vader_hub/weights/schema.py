"""Schema v1 of a weights manifest entry: the dataclasses and their validation.

One entry says everything about one published weights file (see ``docs/weights.md``)::

    {"architecture": "vader_r50_fpn", "tag": "in1k_ep200",
     "filename": "vader_r50_fpn.in1k_ep200.safetensors", "sha256": "<64 hex>", "size": 112345678,
     "sources": [{"type": "hf", "repo_id": "org/vader", "revision": "<40 hex commit>",
                  "filename": "model.safetensors"},
                 {"type": "url", "url": "https://mirror.example/vader_r50_fpn.in1k_ep200.safetensors"},
                 {"type": "file", "path": "relative/to/the/manifest.safetensors"}],
     "provenance": {"config": {...}, "data": "ImageNet-1k train", "steps": 200000, "code_version": "0.1.0"},
     "license": "cc-by-nc-4.0", "metrics": {"voc_seg_miou": 0.0}, "description": "optional"}
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union
from urllib.parse import urlparse

from .errors import ManifestError

ARCHITECTURE_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
TAG_PATTERN = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]*)?")
FILENAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.safetensors")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}")
REPO_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
PROVENANCE_KEYS = ("config", "data", "steps", "code_version")
ENTRY_KEYS = {"architecture", "tag", "filename", "sha256", "size", "sources", "provenance", "license",
              "metrics", "description"}


@dataclass(frozen=True)
class HfSource:
    """A file in a Hugging Face Hub model repo at a pinned commit, fetched with huggingface_hub."""

    repo_id: str
    revision: str
    filename: str
    endpoint: Optional[str] = None

    def describe(self) -> str:
        where = f" on {self.endpoint}" if self.endpoint else ""
        return f"Hugging Face Hub {self.repo_id}@{self.revision[:12]} file {self.filename}{where}"

    def to_dict(self) -> Dict[str, Any]:
        data = {"type": "hf", "repo_id": self.repo_id, "revision": self.revision, "filename": self.filename}
        return {**data, "endpoint": self.endpoint} if self.endpoint else data


@dataclass(frozen=True)
class UrlSource:
    """An https mirror (plain http only on loopback or when explicitly allowed), fetched with requests."""

    url: str

    def describe(self) -> str:
        return f"URL {self.url}"

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "url", "url": self.url}


@dataclass(frozen=True)
class FileSource:
    """A local file; a relative path in a manifest is relative to that manifest's folder."""

    path: Path

    def describe(self) -> str:
        return f"local file {self.path}"

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "file", "path": str(self.path)}


Source = Union[HfSource, UrlSource, FileSource]


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file of one ``architecture.tag``, with its hash, size, sources and facts."""

    architecture: str
    tag: str
    filename: str
    sha256: str
    size: int
    sources: Tuple[Source, ...]
    provenance: Dict[str, Any]
    license: str
    metrics: Dict[str, Any] = field(default_factory=dict)
    description: str = ""
    manifest_path: Optional[Path] = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """timm's model name for these weights: ``architecture.tag`` (``architecture`` if untagged)."""
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture

    def timm_source(self) -> Dict[str, Any]:
        """Descriptive source fields for a timm pretrained cfg (``hf_hub_id`` or ``url``).

        They make timm see the tag as having weights; timm never loads them (the create function
        calls :func:`vader_hub.weights.load_pretrained`). ``file`` is never set: in a cfg it means a
        user's explicit, unverified file.
        """
        first = self.sources[0]
        if isinstance(first, HfSource):
            return {"hf_hub_id": f"{first.repo_id}@{first.revision}", "hf_hub_filename": first.filename}
        if isinstance(first, UrlSource):
            return {"url": first.url}
        return {"url": first.path.resolve().as_uri()}

    def to_dict(self) -> Dict[str, Any]:
        data = {
            "architecture": self.architecture, "tag": self.tag, "filename": self.filename,
            "sha256": self.sha256, "size": self.size, "sources": [s.to_dict() for s in self.sources],
            "provenance": self.provenance, "license": self.license, "metrics": self.metrics,
        }
        return {**data, "description": self.description} if self.description else data


def _fail(where: str, message: str) -> ManifestError:
    return ManifestError(f"{where}: {message}")


def _string(data: dict, key: str, where: str, pattern: Optional[re.Pattern] = None, hint: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _fail(where, f"field '{key}' must be a string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise _fail(where, f"field '{key}' is {value!r}, which is not valid: {hint}")
    return value


def _check_http_url(url: str, where: str, key: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise _fail(where, f"field '{key}' must be an http(s) URL, got {url!r}")


def parse_source(data: Any, where: str, base_dir: Path) -> Source:
    """Validate one ``sources`` item and build its dataclass; relative file paths join ``base_dir``."""
    if not isinstance(data, dict):
        raise _fail(where, f"must be an object with a 'type', got {data!r}")
    kind = data.get("type")
    allowed = {"hf": {"type", "repo_id", "revision", "filename", "endpoint"}, "url": {"type", "url"},
               "file": {"type", "path"}}
    if not isinstance(kind, str) or kind not in allowed:
        raise _fail(where, f"field 'type' must be one of 'hf', 'url', 'file', got {kind!r}")
    unknown = sorted(set(data) - allowed[kind])
    if unknown:
        raise _fail(where, f"unknown field(s) {unknown} for a '{kind}' source; allowed: {sorted(allowed[kind])}")
    if kind == "url":
        url = _string(data, "url", where)
        _check_http_url(url, where, "url")
        return UrlSource(url)
    if kind == "file":
        written = _string(data, "path", where)
        try:
            path = Path(written).expanduser()
        except RuntimeError:  # '~user/...' of a user this machine does not have
            raise _fail(where, f"field 'path' is {written!r}, whose '~' names no home folder here") from None
        return FileSource(path if path.is_absolute() else (base_dir / path).resolve())
    repo_id = _string(data, "repo_id", where, REPO_ID_PATTERN, "use 'namespace/name'")
    revision = _string(data, "revision", where, COMMIT_PATTERN,
                       "pin a full 40-hex commit hash, not a branch or tag, so the file cannot change")
    filename = _string(data, "filename", where)
    if filename.startswith("/") or "\\" in filename or ".." in filename.split("/"):
        raise _fail(where, f"field 'filename' is {filename!r}: no absolute paths, backslashes or '..'")
    endpoint = data.get("endpoint")
    if endpoint is not None:
        _check_http_url(_string(data, "endpoint", where), where, "endpoint")
    return HfSource(repo_id, revision, filename, endpoint)


def _check_provenance(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"field 'provenance' must be an object, got {value!r}")
    missing = [key for key in PROVENANCE_KEYS if key not in value]
    if missing:
        raise _fail(where, f"field 'provenance' lacks {missing}; give each (null if unknown)")
    return value


def parse_entry(data: Any, where: str, base_dir: Path, manifest_path: Optional[Path] = None) -> WeightsEntry:
    """Validate one manifest entry and build a :class:`WeightsEntry`.

    Args:
        data: the entry as parsed from JSON.
        where: where it came from, for error messages (``"file.json: entries[3]"``).
        base_dir: the folder that relative ``file`` source paths are relative to.
        manifest_path: the manifest file, kept on the entry for messages.

    Returns:
        The validated entry.

    Raises:
        ManifestError: naming ``where`` and the bad field.
    """
    if not isinstance(data, dict):
        raise _fail(where, f"must be an object, got {type(data).__name__}")
    unknown = sorted(set(data) - ENTRY_KEYS)
    if unknown:
        raise _fail(where, f"unknown field(s) {unknown}; allowed: {sorted(ENTRY_KEYS)}")
    architecture = _string(data, "architecture", where, ARCHITECTURE_PATTERN, "use a timm model name")
    tag = _string(data, "tag", where, TAG_PATTERN, "letters, digits, '_' and '-' (may be empty)")
    where = f"{where} ({architecture}.{tag})" if tag else f"{where} ({architecture})"
    filename = _string(data, "filename", where, FILENAME_PATTERN,
                       "a plain file name ending in .safetensors: no folders, no '..', not hidden")
    if ".." in filename:
        raise _fail(where, f"field 'filename' is {filename!r}: '..' is not allowed")
    sha256 = _string(data, "sha256", where, SHA256_PATTERN, "64 lowercase hex characters")
    size = data.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise _fail(where, f"field 'size' must be a positive integer (bytes), got {size!r}")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise _fail(where, "field 'sources' must be a non-empty list (hf, url or file sources, tried in order)")
    parsed = tuple(parse_source(s, f"{where}: sources[{i}]", base_dir) for i, s in enumerate(sources))
    license_ = _string(data, "license", where)
    if not license_.strip():
        raise _fail(where, "field 'license' is empty: give the weights' licence (mind the training data's terms)")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise _fail(where, f"field 'metrics' must be an object, got {metrics!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, f"field 'description' must be a string, got {description!r}")
    return WeightsEntry(architecture, tag, filename, sha256, size, parsed,
                        _check_provenance(data.get("provenance"), where), license_, metrics,
                        description, manifest_path)
