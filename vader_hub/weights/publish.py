"""Publishing an exported weights folder to the Hugging Face Hub and recording it in a manifest.

:func:`prepare_publish` checks what would be uploaded (the three files exist; the safetensors
bytes match ``manifest_entry.json``'s sha256 and size and record the same architecture);
:func:`publish` uploads them in one commit with huggingface_hub and records the resolved commit
as the entry's pinned revision, in the export folder's ``manifest_entry.json`` and, if given, in a
manifest file.
"""
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Tuple

from huggingface_hub import CommitOperationAdd, HfApi

from ..fileio import atomic_write
from .export import CARD_FILENAME, CONFIG_FILENAME, ENTRY_FILENAME, WEIGHTS_FILENAME
from .load import check_fits_architecture
from .manifest import write_entry
from .schema import REPO_ID_PATTERN, FileSource, HfSource, WeightsEntry, parse_entry
from .verify import check_metadata, read_metadata, read_tensor_shapes, read_verified

PUBLISHED_FILES = (WEIGHTS_FILENAME, CONFIG_FILENAME, CARD_FILENAME)


@dataclass(frozen=True)
class PublishPlan:
    """What :func:`publish` would upload, after checking it."""

    export_dir: Path
    repo_id: str
    files: Tuple[Path, ...]
    entry: WeightsEntry


@dataclass(frozen=True)
class PublishResult:
    """The commit made and the manifest entry that now points at it."""

    plan: PublishPlan
    commit: str
    entry: WeightsEntry
    manifest_path: Optional[Path]


def prepare_publish(export_dir: Path, repo_id: str) -> PublishPlan:
    """Check an export folder and say what would be uploaded; touches no network.

    Raises:
        ValueError: if ``repo_id`` is not ``namespace/name``.
        FileNotFoundError: if a file of the export is missing.
        ManifestError: if ``manifest_entry.json`` is malformed.
        ChecksumMismatchError: if ``model.safetensors`` is not the file the entry describes.
        NotAWeightsFileError / ArchitectureMismatchError: if its metadata disagrees with the entry.
        StateDictMismatchError: if its tensors are not the architecture's (the loader's key report).
    """
    export_dir = Path(export_dir)
    if not REPO_ID_PATTERN.fullmatch(repo_id or ""):
        raise ValueError(f"repo id {repo_id!r} must be 'namespace/name', e.g. 'my-org/vader-r50-fpn'")
    missing = [name for name in PUBLISHED_FILES + (ENTRY_FILENAME,) if not (export_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{export_dir} lacks {missing}; create it with `vader-hub weights export`")
    entry_path = export_dir / ENTRY_FILENAME
    entry = parse_entry(json.loads(entry_path.read_text(encoding="utf-8")), str(entry_path), export_dir.resolve())
    weights = export_dir / WEIGHTS_FILENAME
    data = read_verified(weights, entry.sha256, entry.size)
    check_metadata(read_metadata(data, str(weights)), entry.architecture, str(weights))
    config = json.loads((export_dir / CONFIG_FILENAME).read_text(encoding="utf-8"))
    check_fits_architecture(entry.architecture, read_tensor_shapes(data, str(weights)),
                            int(config.get("num_classes", 0)), str(weights))
    return PublishPlan(export_dir, repo_id, tuple(export_dir / name for name in PUBLISHED_FILES), entry)


def published_entry(entry: WeightsEntry, repo_id: str, commit: str, endpoint: Optional[str] = None) -> WeightsEntry:
    """``entry`` with the Hub file (pinned to ``commit``) as first source; local file sources dropped."""
    hub = HfSource(repo_id, commit, WEIGHTS_FILENAME, endpoint)
    others = tuple(s for s in entry.sources if not isinstance(s, FileSource) and s != hub)
    return replace(entry, sources=(hub,) + others)


def publish(export_dir: Path, repo_id: str, *, manifest: Optional[Path] = None, endpoint: Optional[str] = None,
            token: Optional[str] = None, private: bool = False, commit_message: Optional[str] = None) -> PublishResult:
    """Upload an export folder to a Hub model repo in one commit and pin the entry to that commit.

    Args:
        export_dir: a folder written by :func:`vader_hub.weights.export_weights`.
        repo_id: the model repo, created if missing.
        manifest: a manifest file to add (or update) the published entry in.
        endpoint: the Hub endpoint (default: huggingface_hub's, ``HF_ENDPOINT``).
        token: the Hub token (default: huggingface_hub's login / ``HF_TOKEN``).
        private: create the repo as private.
        commit_message: the commit's message.

    Returns:
        A :class:`PublishResult` with the commit hash and the updated entry.

    Raises:
        The errors of :func:`prepare_publish`; huggingface_hub's errors for refused uploads.
    """
    plan = prepare_publish(export_dir, repo_id)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in plan.files]
    info = api.create_commit(repo_id, operations, commit_message=commit_message or f"Add {plan.entry.name} weights")
    entry = published_entry(plan.entry, repo_id, info.oid, endpoint)
    atomic_write(plan.export_dir / ENTRY_FILENAME, json.dumps(entry.to_dict(), indent=2) + "\n")
    if manifest is not None:
        write_entry(Path(manifest), entry)
    return PublishResult(plan, info.oid, entry, Path(manifest) if manifest is not None else None)
