"""The weights layer: manifest, verified download and cache, offline use, loading, export, publishing.

The bottom layer of vader-hub: it imports no other vader_hub package and knows architectures only
by name. The models' create function calls :func:`load_pretrained`; the trainer calls
:func:`export_weights`. See ``docs/weights.md`` for the manifest schema, the resolution order, the
cache layout and what each failure looks like.
"""
from .errors import (
    ArchitectureMismatchError,
    ChecksumMismatchError,
    DownloadError,
    ManifestError,
    NotAWeightsFileError,
    SizeLimitError,
    StateDictMismatchError,
    WeightsError,
    WeightsNotFoundError,
)
from .export import ExportResult, export_weights
from .load import find_weights, load_pretrained, load_state_dict_strict
from .manifest import Manifest, WeightsEntry, read_manifests
from .resolve import ResolveOptions, VerifiedWeights, resolve_entry

__all__ = [
    "ArchitectureMismatchError", "ChecksumMismatchError", "DownloadError", "ExportResult", "Manifest",
    "ManifestError", "NotAWeightsFileError", "ResolveOptions", "SizeLimitError", "StateDictMismatchError",
    "VerifiedWeights", "WeightsEntry", "WeightsError", "WeightsNotFoundError", "export_weights", "find_weights",
    "load_pretrained", "load_state_dict_strict", "read_manifests", "resolve_entry",
]
