"""Verification of weights bytes: sha256 and size against the manifest, then the safetensors header.

A file is read once; those very bytes are hashed and then deserialised, so a file changed on disk
after it was downloaded is caught whatever its size and modification time say.
"""
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Dict, Tuple

import torch
from safetensors.torch import load as load_safetensors_bytes

from .errors import ArchitectureMismatchError, ChecksumMismatchError, NotAWeightsFileError
from .names import check_architecture

WEIGHTS_FORMAT = "vader-hub/1"
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def starts_like_safetensors(head: bytes) -> bool:
    """Whether a file's first 9 bytes announce a safetensors header: a plausible length, then a JSON object."""
    if len(head) < HEADER_LENGTH_BYTES + 1:
        return False
    (header_length,) = struct.unpack("<Q", head[:HEADER_LENGTH_BYTES])
    return 0 < header_length <= MAX_HEADER_BYTES and head[HEADER_LENGTH_BYTES:HEADER_LENGTH_BYTES + 1] == b"{"


def read_verified(path: Path, sha256: str, size: int) -> bytes:
    """Read a file and return its bytes if their size and sha256 match.

    Args:
        path: the file.
        sha256: the expected hex digest.
        size: the expected size in bytes (checked first: a wrong size is caught without hashing).

    Returns:
        The file's bytes, which are exactly the bytes that were hashed.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ChecksumMismatchError: if the size or sha256 differ.
    """
    actual_size = Path(path).stat().st_size
    if actual_size != size:
        raise ChecksumMismatchError(f"{path} has {actual_size} bytes, the manifest says {size}")
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ChecksumMismatchError(f"{path} has sha256 {digest}, the manifest says {sha256}")
    return data


def read_metadata(data: bytes, origin: str) -> Dict[str, str]:
    """The ``__metadata__`` of safetensors bytes, read from the header without deserialising tensors.

    Raises:
        NotAWeightsFileError: if ``data`` is not a safetensors file (e.g. a pickle).
    """
    metadata = _read_header(data, origin).get("__metadata__") or {}
    return metadata if isinstance(metadata, dict) else {}


def read_tensor_shapes(data: bytes, origin: str) -> Dict[str, Tuple[int, ...]]:
    """The name and shape of every tensor in safetensors bytes, read from the header alone.

    Raises:
        NotAWeightsFileError: if ``data`` is not a safetensors file, or its header lists a tensor badly.
    """
    header = _read_header(data, origin)
    try:
        return {name: tuple(int(n) for n in info["shape"]) for name, info in header.items() if name != "__metadata__"}
    except (TypeError, KeyError, ValueError) as error:
        raise NotAWeightsFileError(f"{origin} has a malformed safetensors header ({error!r})") from None


def _read_header(data: bytes, origin: str) -> dict:
    not_safetensors = NotAWeightsFileError(
        f"{origin} is not a safetensors file; vader-hub loads only safetensors (never pickles): convert "
        "a torch.save'd state dict with `vader-hub weights export`"
    )
    if len(data) < HEADER_LENGTH_BYTES:
        raise not_safetensors
    (header_length,) = struct.unpack("<Q", data[:HEADER_LENGTH_BYTES])
    if header_length > min(MAX_HEADER_BYTES, len(data) - HEADER_LENGTH_BYTES):
        raise not_safetensors
    try:
        header = json.loads(data[HEADER_LENGTH_BYTES:HEADER_LENGTH_BYTES + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise not_safetensors from None
    if not isinstance(header, dict):
        raise not_safetensors
    return header


def read_header_bytes(path: Path) -> bytes:
    """A file's 8-byte header length and, if it fits the file and safetensors' limit, the header it announces."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_LENGTH_BYTES)
        length = int.from_bytes(head, "little") if len(head) == HEADER_LENGTH_BYTES else 0
        room = min(MAX_HEADER_BYTES, os.fstat(handle.fileno()).st_size - HEADER_LENGTH_BYTES)
        return head + handle.read(length) if 0 < length <= room else head


def recorded_architecture(path: Path) -> str:
    """The architecture a vader-hub weights file records in its metadata, read from the header only.

    Args:
        path: A safetensors file written by vader-hub's exporter.

    Returns:
        The timm name, e.g. ``"vader_r18_fpn"``.

    Raises:
        FileNotFoundError: If ``path`` is not an existing file.
        NotAWeightsFileError: If it is not a safetensors file.
        ArchitectureMismatchError: If it records no architecture, one that is not a VADeR model, or one
            this version does not register.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist or is not a file")
    architecture = read_metadata(read_header_bytes(path), str(path)).get("architecture")
    if not isinstance(architecture, str) or not architecture:
        raise ArchitectureMismatchError(
            f"{path} records no architecture in its metadata; name it (architecture=..., --model vader_r18_fpn)"
        )
    return check_architecture(architecture, where=f"{path} records architecture {architecture!r}")


def check_metadata(metadata: Dict[str, str], architecture: str, origin: str) -> None:
    """Check that a file's metadata says it holds vader-hub weights of ``architecture``.

    Raises:
        NotAWeightsFileError: if the format or architecture is not recorded.
        ArchitectureMismatchError: if the recorded architecture is another one.
    """
    recorded = metadata.get("architecture")
    if metadata.get("format") != WEIGHTS_FORMAT or not recorded:
        raise NotAWeightsFileError(
            f"{origin} has no vader-hub metadata (format {metadata.get('format')!r}, architecture "
            f"{recorded!r}); write weights files with `vader-hub weights export` or "
            "vader_hub.weights.export_weights so they record their architecture"
        )
    if recorded != architecture:
        raise ArchitectureMismatchError(
            f"{origin} holds weights for {recorded}, not {architecture}; build {recorded} "
            f"(timm.create_model({recorded!r}, ...)) or pick the file of {architecture}"
        )


def deserialize(data: bytes, architecture: str, origin: str) -> Dict[str, torch.Tensor]:
    """Check the metadata of safetensors bytes, then turn them into a state dict.

    A vader-hub file must record ``architecture``; a file without vader-hub metadata (timm's
    ``save_for_hf``, ``safetensors.torch.save_file``) is accepted here, and the strict load that
    follows checks that its keys and shapes are exactly the architecture's.

    Args:
        data: the whole file's bytes (already verified, if a hash is known).
        architecture: the model being built, e.g. ``"vader_r18_fpn"``.
        origin: where the bytes came from, for messages.

    Returns:
        The state dict (CPU tensors).

    Raises:
        NotAWeightsFileError: if the bytes are not safetensors.
        ArchitectureMismatchError: if a vader-hub file is for another architecture.
    """
    metadata = read_metadata(data, origin)
    if metadata.get("format") == WEIGHTS_FORMAT:
        check_metadata(metadata, architecture, origin)
    try:
        return load_safetensors_bytes(data)
    except Exception as error:  # safetensors raises its own SafetensorError for corrupt payloads
        raise NotAWeightsFileError(f"{origin} is a damaged safetensors file: {error}") from error
