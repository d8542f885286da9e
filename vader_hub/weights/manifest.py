"""Weights manifests: the bundled one and the user's, read, validated and merged.

The bundled manifest is ``vader_hub/weights_manifest.json``, inside the package in a wheel and in a
checkout alike (the repository root's ``weights_manifest.json`` is a link to it), so its ``file``
sources, relative to its folder, reach the weights bundled in the package either way.
``VADER_HUB_MANIFEST`` adds the user's files (an ``os.pathsep`` separated list), read after it.
Reading never touches the network: the models' registry calls :func:`read_manifests` at import to
generate timm's pretrained cfgs.

A manifest file::

    {"schema_version": 1, "description": "optional", "entries": [<entry>, ...]}

with entries as described in :mod:`vader_hub.weights.schema` and ``docs/weights.md``.
"""
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..fileio import atomic_write
from .errors import ManifestError
from .schema import FileSource, HfSource, Source, UrlSource, WeightsEntry, parse_entry

SCHEMA_VERSION = 1
MANIFEST_ENV = "VADER_HUB_MANIFEST"
MANIFEST_KEYS = {"schema_version", "description", "entries"}

__all__ = [
    "FileSource", "HfSource", "MANIFEST_ENV", "Manifest", "SCHEMA_VERSION", "Source", "UrlSource",
    "WeightsEntry", "bundled_manifest_path", "read_manifest_file", "read_manifests", "user_manifest_paths",
    "write_entry",
]


@dataclass
class Manifest:
    """The merged entries of every manifest read, bundled first, in file order."""

    entries: List[WeightsEntry] = field(default_factory=list)
    paths: List[Path] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)  # manifests left out by read_readable_manifests

    def tags_for(self, architecture: str) -> List[str]:
        """The tags of ``architecture``, in manifest order (the first is timm's default)."""
        return [entry.tag for entry in self.entries if entry.architecture == architecture]

    def find(self, architecture: str, tag: Optional[str] = None) -> Optional[WeightsEntry]:
        """The entry for ``architecture.tag``; an empty or None tag means the architecture's first."""
        for entry in self.entries:
            if entry.architecture == architecture and (not tag or entry.tag == tag):
                return entry
        return None

    def find_name(self, name: str) -> Optional[WeightsEntry]:
        """The entry for a timm name, ``"architecture"`` or ``"architecture.tag"``."""
        architecture, _, tag = name.partition(".")
        return self.find(architecture, tag)


def bundled_manifest_path() -> Path:
    """The manifest shipped inside the package (``vader_hub/weights_manifest.json``, in a wheel and a checkout)."""
    return Path(__file__).resolve().parents[1] / "weights_manifest.json"


def user_manifest_paths() -> List[Path]:
    """The files named by ``VADER_HUB_MANIFEST``; each must exist.

    Raises:
        FileNotFoundError: if a named file does not exist.
    """
    paths = _named_paths()
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"{MANIFEST_ENV} names {path}, which is not a file; create it (e.g. with "
                f"`vader-hub weights export ... --manifest {path}`) or remove it from {MANIFEST_ENV}"
            )
    return paths


def _named_paths() -> List[Path]:
    return [Path(p).expanduser() for p in os.environ.get(MANIFEST_ENV, "").split(os.pathsep) if p.strip()]


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{path}: not valid JSON in UTF-8 ({error}); fix the file or remove it") from error
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: the top level must be an object with 'schema_version' and 'entries'")
    unknown = sorted(set(data) - MANIFEST_KEYS)
    if unknown:
        raise ManifestError(f"{path}: unknown top-level field(s) {unknown}; allowed: {sorted(MANIFEST_KEYS)}")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(
            f"{path}: field 'schema_version' is {data.get('schema_version')!r}; this vader-hub reads "
            f"version {SCHEMA_VERSION} (upgrade vader-hub for newer manifests)"
        )
    if not isinstance(data.get("entries"), list):
        raise ManifestError(f"{path}: field 'entries' must be a list (it may be empty)")
    return data


def read_manifest_file(path: Path) -> List[WeightsEntry]:
    """Read and validate one manifest file.

    Args:
        path: the manifest file.

    Returns:
        Its entries in file order.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ManifestError: naming the file, the entry and the field that is wrong, or a duplicated name.
    """
    path = Path(path)
    data = _load_json(path)
    entries = [parse_entry(item, f"{path}: entries[{i}]", path.resolve().parent, path)
               for i, item in enumerate(data["entries"])]
    seen: Dict[Tuple[str, str], int] = {}
    for i, entry in enumerate(entries):
        first = seen.setdefault((entry.architecture, entry.tag), i)
        if first != i:
            raise ManifestError(f"{path}: entries[{first}] and entries[{i}] both name {entry.name}; keep one")
    return entries


def _merge(earlier: WeightsEntry, later: WeightsEntry) -> WeightsEntry:
    """A later manifest may add mirrors for the same file (same sha256): its sources are tried first."""
    if earlier.sha256 != later.sha256 or earlier.size != later.size:
        raise ManifestError(
            f"{later.manifest_path} gives {later.name} another file (sha256 {later.sha256[:12]}...) than "
            f"{earlier.manifest_path} ({earlier.sha256[:12]}...); use a new tag for different weights"
        )
    sources = later.sources + tuple(s for s in earlier.sources if s not in later.sources)
    return replace(earlier, sources=sources)


def read_manifests(paths: Optional[Sequence[Path]] = None) -> Manifest:
    """Read the bundled manifest and the user's, validated and merged; never touches the network.

    Args:
        paths: the manifest files to read; default: the bundled one (if present) then
            ``VADER_HUB_MANIFEST``'s files.

    Returns:
        The :class:`Manifest`. An entry repeated in a later file with the same sha256 keeps its
        place and gains the later file's sources in front of its own.

    Raises:
        FileNotFoundError: if a user manifest does not exist.
        ManifestError: if a file is malformed (naming the file and field) or two files give
            different files for one name.
    """
    if paths is None:
        bundled = bundled_manifest_path()
        paths = ([bundled] if bundled.is_file() else []) + user_manifest_paths()
    merged: Dict[Tuple[str, str], WeightsEntry] = {}
    for path in paths:
        _add_file(merged, read_manifest_file(Path(path)))
    return Manifest(entries=list(merged.values()), paths=[Path(p) for p in paths])


def _add_file(merged: Dict[Tuple[str, str], WeightsEntry], entries: List[WeightsEntry]) -> None:
    """Merge one file's entries into ``merged``, all or none: a conflict leaves ``merged`` as it was."""
    added = dict(merged)
    for entry in entries:
        key = (entry.architecture, entry.tag)
        added[key] = _merge(added[key], entry) if key in added else entry
    merged.update(added)


def read_readable_manifests() -> Manifest:
    """The bundled and user manifests that can be read, and a line for each that cannot.

    For what must never fail on a user's broken file (``import vader_hub``, the tag list, `vader-hub
    weights list`): a missing or malformed manifest is left out and described in ``problems``, and
    loading the weights it would have named fails with its own error (:func:`read_manifests`).

    Returns:
        The :class:`Manifest` of the readable files, with ``problems``.
    """
    bundled = bundled_manifest_path()
    merged: Dict[Tuple[str, str], WeightsEntry] = {}
    read, problems = [], []
    for path in ([bundled] if bundled.is_file() else []) + _named_paths():
        try:
            _add_file(merged, read_manifest_file(path))
        except (OSError, ManifestError) as error:
            problems.append(str(error))
        else:
            read.append(path)
    return Manifest(entries=list(merged.values()), paths=read, problems=problems)


def manifests_signature() -> Tuple:
    """What the manifests read now depend on: ``VADER_HUB_MANIFEST`` and each file's size and time."""
    files = [bundled_manifest_path(), *_named_paths()]
    return (os.environ.get(MANIFEST_ENV, ""),
            tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else (str(p),) for p in files))


def write_entry(manifest_path: Path, entry: WeightsEntry) -> None:
    """Add ``entry`` to a manifest file (created if missing), replacing one of the same name.

    An existing file is validated first and keeps its order; the file is replaced atomically, so
    a failure leaves it as it was. A ``file`` source below the manifest's folder is written relative
    to it (the way relative paths in a manifest are read).

    Raises:
        ManifestError: if the existing file is malformed.
    """
    manifest_path = Path(manifest_path)
    if manifest_path.exists():
        data = _load_json(manifest_path)
        read_manifest_file(manifest_path)
    else:
        data = {"schema_version": SCHEMA_VERSION, "entries": []}
    key = (entry.architecture, entry.tag)
    names = [(item.get("architecture"), item.get("tag")) for item in data["entries"]]
    written = _with_relative_files(entry.to_dict(), manifest_path.resolve().parent)
    if key in names:
        data["entries"][names.index(key)] = written
    else:
        data["entries"].append(written)
    text = json.dumps(data, indent=2) + "\n"
    parse_entry(written, f"{manifest_path}: new entry", manifest_path.resolve().parent)
    atomic_write(manifest_path, text)


def _with_relative_files(entry: dict, folder: Path) -> dict:
    """``entry`` with each ``file`` source below ``folder`` written relative to it, so the manifest and
    its files can move together (a checkout, a wheel); other paths stay absolute."""
    def portable(source: dict) -> dict:
        path = Path(source["path"]) if source.get("type") == "file" else None
        if path is None or not path.is_absolute() or not path.resolve().is_relative_to(folder):
            return source
        return {**source, "path": path.resolve().relative_to(folder).as_posix()}

    return {**entry, "sources": [portable(source) for source in entry["sources"]]}
