"""Weights shared the timm way: a Hub repo (``hf-hub:org/name@revision``) or a folder (``local-dir:/path``).

Such a repo or folder holds ``model.safetensors`` and timm's ``config.json``, written by
``vader-hub weights export``/``publish``, by timm's ``save_for_hf`` or by ``push_to_hf_hub``. The
bytes loaded are checked against the strongest record there is, never a weaker one:

1. a manifest entry that lists the same file (its sha256 and size);
2. for a Hub repo, the Hub's own record of the file at the commit loaded: the sha256 it keeps for
   an LFS file, else the git blob id of a plain one (huggingface_hub itself checks sizes only);
3. for a folder, the ``manifest_entry.json`` that ``vader-hub weights export`` wrote beside the file.

A load that is not pinned (a branch, which can move) or has no record (a folder written by
``save_for_hf``) goes ahead with a warning that names what to pin or record.
"""
import hashlib
import json
import warnings
from pathlib import Path
from typing import Optional, Tuple

from huggingface_hub import HfApi

from .errors import ChecksumMismatchError, DownloadError, ManifestError, WeightsNotFoundError
from .export import ENTRY_FILENAME, WEIGHTS_FILENAME
from .hf import evict, fetch_hf
from .manifest import read_manifests
from .resolve import ResolveOptions, VerifiedWeights, resolve_entry
from .schema import COMMIT_PATTERN, FileSource, HfSource, WeightsEntry, parse_entry
from .verify import read_verified


class UnverifiedWeightsWarning(UserWarning):
    """Weights were loaded without a pinned record of their hash; the message says what to pin."""


def split_hub_id(hf_hub_id: str) -> Tuple[str, Optional[str]]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; no ``@`` -> ``("org/name", None)``."""
    repo_id, _, revision = hf_hub_id.partition("@")
    return repo_id, revision or None


def _manifest_entry(predicate) -> Optional[WeightsEntry]:
    return next((entry for entry in read_manifests().entries if any(predicate(s) for s in entry.sources)), None)


def find_hub_weights(hf_hub_id: str, options: Optional[ResolveOptions] = None) -> VerifiedWeights:
    """The verified ``model.safetensors`` of a Hub repo, as ``timm.create_model("hf-hub:...")`` names it.

    Args:
        hf_hub_id: ``"org/name"`` or ``"org/name@revision"`` (a commit, a branch or a tag).
        options: where to look and how to download; default :meth:`ResolveOptions.from_env`.

    Returns:
        The file's bytes, checked against a manifest entry's sha256 or else the Hub's record at the
        commit; an unpinned revision warns (:class:`UnverifiedWeightsWarning`) with the commit to pin.

    Raises:
        WeightsNotFoundError: If the repo, revision or file cannot be reached (offline without a
            manifest entry, unknown repo, no ``model.safetensors``).
        ChecksumMismatchError: If the downloaded bytes differ from the record (the copy is removed
            from the Hugging Face cache).
    """
    options = options or ResolveOptions.from_env()
    repo_id, revision = split_hub_id(hf_hub_id)
    entry = _manifest_entry(lambda s: isinstance(s, HfSource) and s.repo_id == repo_id
                            and s.filename == WEIGHTS_FILENAME and revision in (None, s.revision))
    if entry is not None:
        return resolve_entry(entry, options)
    if options.offline:
        raise WeightsNotFoundError(
            f"hf-hub:{hf_hub_id}: offline mode (VADER_HUB_OFFLINE or HF_HUB_OFFLINE) and no manifest entry lists "
            "this repo's file, so there is no record to verify a cached copy against; add its entry to a "
            "VADER_HUB_MANIFEST file (`vader-hub weights publish` writes one) or load it once online"
        )
    commit, record = _hub_record(repo_id, revision)
    source = HfSource(repo_id, commit, WEIGHTS_FILENAME)
    try:
        path = fetch_hf(source, offline=False)
    except DownloadError as error:
        raise WeightsNotFoundError(f"hf-hub:{hf_hub_id}: {error}") from error
    data = _checked_against_hub(path, record, f"hf-hub:{repo_id}@{commit} {WEIGHTS_FILENAME}")
    if revision != commit:
        warnings.warn(f"hf-hub:{hf_hub_id} names a revision that can move ({revision or 'main'}); loaded commit "
                      f"{commit}, checked against the Hub's record of it. Pin it: hf-hub:{repo_id}@{commit}",
                      UnverifiedWeightsWarning, stacklevel=2)
    return VerifiedWeights(path, data, source.describe(), verified=revision == commit)


def _hub_record(repo_id: str, revision: Optional[str]) -> Tuple[str, dict]:
    """The commit a revision points at, and the Hub's size and hash of the weights file there."""
    try:
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as error:  # any failure means: this repo cannot be verified, with huggingface_hub's reason
        raise WeightsNotFoundError(f"hf-hub:{repo_id}@{revision or 'main'}: the Hub's record of the repo could "
                                   f"not be read ({type(error).__name__}: {error})") from error
    sibling = next((s for s in info.siblings or [] if s.rfilename == WEIGHTS_FILENAME), None)
    if sibling is None or not COMMIT_PATTERN.fullmatch(info.sha or ""):
        raise WeightsNotFoundError(f"hf-hub:{repo_id}@{revision or 'main'} has no {WEIGHTS_FILENAME}; vader-hub "
                                   "loads only safetensors weights (timm's save_for_hf and push_to_hf_hub write it)")
    lfs = sibling.lfs
    record = {"size": lfs.size if lfs else sibling.size, "sha256": lfs.sha256 if lfs else None,
              "blob_id": None if lfs else sibling.blob_id}
    return info.sha, record


def _git_blob_id(data: bytes) -> str:
    """The git object id of a file's bytes, as the Hub records a file kept outside LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _checked_against_hub(path: Path, record: dict, origin: str) -> bytes:
    data = path.read_bytes()
    problem = None
    if record["size"] is not None and len(data) != record["size"]:
        problem = f"has {len(data)} bytes, the Hub records {record['size']}"
    elif record["sha256"] is not None and hashlib.sha256(data).hexdigest() != record["sha256"]:
        problem = f"has sha256 {hashlib.sha256(data).hexdigest()}, the Hub records {record['sha256']}"
    elif record["sha256"] is None and (record["blob_id"] is None or _git_blob_id(data) != record["blob_id"]):
        problem = f"has git blob id {_git_blob_id(data)}, the Hub records {record['blob_id']}"
    if problem is not None:
        evict(path)
        raise ChecksumMismatchError(f"{origin} {problem}; the downloaded copy was removed from the cache")
    return data


def find_folder_weights(folder: Path, options: Optional[ResolveOptions] = None) -> VerifiedWeights:
    """The ``model.safetensors`` of a folder, as ``timm.create_model("local-dir:...")`` names it.

    Args:
        folder: A folder written by ``vader-hub weights export`` or timm's ``save_for_hf``.
        options: where to look and how to download; default :meth:`ResolveOptions.from_env`.

    Returns:
        The file's bytes, checked against a manifest entry that lists the file or the folder's own
        ``manifest_entry.json``; without either, loaded with an :class:`UnverifiedWeightsWarning`.

    Raises:
        WeightsNotFoundError: If the folder holds no ``model.safetensors``.
        ChecksumMismatchError: If the file differs from its recorded sha256 or size.
        ManifestError: If the folder's ``manifest_entry.json`` is malformed.
    """
    folder = Path(folder).expanduser()
    path = folder / WEIGHTS_FILENAME
    if not path.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else "nothing: no such folder"
        raise WeightsNotFoundError(f"local-dir:{folder} has no {WEIGHTS_FILENAME} (it holds {found}); vader-hub "
                                   "loads only safetensors weights, as `vader-hub weights export` writes them")
    resolved = path.resolve()
    entry = _manifest_entry(lambda s: isinstance(s, FileSource) and s.path.resolve() == resolved)
    if entry is not None:
        return resolve_entry(entry, options)
    recorded = _folder_entry(folder)
    if recorded is not None:
        return VerifiedWeights(path, read_verified(path, recorded.sha256, recorded.size),
                               f"{path} (sha256 from {folder / ENTRY_FILENAME})", verified=True)
    warnings.warn(f"{path} has no recorded sha256 (no manifest entry lists it, no {ENTRY_FILENAME} beside it): "
                  "loaded unverified. Record it with `vader-hub weights export`, or add its entry to a "
                  "VADER_HUB_MANIFEST file", UnverifiedWeightsWarning, stacklevel=2)
    return VerifiedWeights(path, path.read_bytes(), f"your file {path}", verified=False)


def _folder_entry(folder: Path) -> Optional[WeightsEntry]:
    entry_path = folder / ENTRY_FILENAME
    if not entry_path.is_file():
        return None
    try:
        raw = json.loads(entry_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{entry_path} is not valid JSON: {error}") from error
    return parse_entry(raw, str(entry_path), folder.resolve())
