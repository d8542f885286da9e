"""Reading checkpoints without running their code, and writing converted weights atomically.

Pickled checkpoints are read with ``torch.load(weights_only=True)`` only. The few harmless classes
that training scripts pickle next to their tensors are allow-listed: ``argparse.Namespace``
(PixPro's ``opt``, timm's ``args``). Anything else is refused with the list of classes that blocked
it. Every write goes to a temporary file in the destination folder and is renamed over the target
only once complete, so an interrupted conversion never leaves a truncated file behind.
"""
import argparse
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..fileio import write_through_temporary
from ..weights.verify import starts_like_safetensors

PathLike = Union[str, os.PathLike]

# Classes some training scripts pickle beside their tensors; they hold plain values only.
SAFE_PICKLE_CLASSES = (argparse.Namespace,)
UNPICKLER_MARKER = "WeightsUnpickler error:"


@dataclass
class Checkpoint:
    """The top-level object of a checkpoint file.

    Attributes:
        path: The file read.
        content: Its top-level mapping (a state dict, or a dict wrapping one).
        file_format: ``"safetensors"`` or ``"torch"`` (a ``torch.save`` pickle).
        metadata: The safetensors header metadata (empty for pickles).
    """

    path: Path
    content: Mapping[str, Any]
    file_format: str
    metadata: Dict[str, str] = field(default_factory=dict)


def _is_safetensors(path: Path) -> bool:
    """True if the file starts with a safetensors header (an 8-byte length, then a JSON object)."""
    with path.open("rb") as handle:
        return starts_like_safetensors(handle.read(9))


def _read_safetensors(path: Path) -> Checkpoint:
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            metadata = dict(handle.metadata() or {})
    except SafetensorError as error:
        raise ValueError(f"{path} is a damaged safetensors file ({_one_line(error)}); "
                         "export or download it again") from error
    return Checkpoint(path=path, content=tensors, file_format="safetensors", metadata=metadata)


def read_torch_file(path: PathLike) -> Any:
    """The object a ``torch.save`` file holds, unpickled with ``weights_only=True`` and the allow-list only.

    Args:
        path: The file; a safetensors name is read as a pickle all the same.

    Returns:
        What the file holds (for checkpoints, a dict of tensors and plain values).

    Raises:
        OSError: If the file cannot be opened.
        ValueError: In one line, whatever torch.load raised: if the file needs unsafe unpickling (naming
            the classes that blocked it) or is not a complete ``torch.save`` file (empty, truncated,
            another format).
    """
    path = Path(path)
    # A file object, not the path: torch.load would hand a '.safetensors' name to safetensors.
    with torch.serialization.safe_globals(list(SAFE_PICKLE_CLASSES)), path.open("rb") as handle:
        try:
            with warnings.catch_warnings():
                # torch warns about the pickle protocol of files it is about to refuse, or read all the same
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                return torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"{path} cannot be read with torch.load(weights_only=True): {_refusal_reason(path, error)}. "
                "vader-hub never unpickles arbitrary objects. If you trust this file, re-save just its tensors "
                "(torch.save({'state_dict': model_state_dict}, 'clean.pth')) and use that."
            ) from error
        # A damaged file raises any of RuntimeError, EOFError, OSError (a seek past the end), struct.error, ...
        except Exception as error:
            raise ValueError(
                f"{path} is neither a safetensors file nor a complete torch.save checkpoint "
                f"({type(error).__name__}: {_one_line(error) or 'no more data'}): it is empty, truncated (copy "
                "it again) or of another format (detectron2 .pkl files and other plain pickles are not read)"
            ) from error


def _read_pickle(path: Path) -> Checkpoint:
    content = read_torch_file(path)
    if not isinstance(content, Mapping):
        raise ValueError(
            f"{path} holds a {type(content).__name__}, not a dict of tensors; save the model's state_dict() instead"
        )
    return Checkpoint(path=path, content=content, file_format="torch")


def _one_line(error: BaseException, limit: int = 300) -> str:
    """An error's message on one line, cut to ``limit`` characters (torch's run to whole paragraphs)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _refusal_reason(path: Path, error: Exception) -> str:
    """The classes that stopped the safe unpickler, or its own one-line reason."""
    try:
        classes = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError):
        classes = []  # not a zip checkpoint: only the unpickler's message is available
    allowed = {f"{cls.__module__}.{cls.__qualname__}" for cls in SAFE_PICKLE_CLASSES}
    blocking = [name for name in classes if name not in allowed]
    if blocking:
        return f"it pickles objects of classes outside the allow-list: {', '.join(blocking)}"
    text = " ".join(str(error).split())
    reason = text.split(UNPICKLER_MARKER, 1)[-1].split(" Check the documentation")[0].split(" Please use")[0].strip()
    if reason.startswith("Unsupported operand"):
        return "it is not a torch.save checkpoint (a plain pickle such as a detectron2 .pkl, or another format)"
    return reason.rstrip(".")


def read_checkpoint(path: PathLike) -> Checkpoint:
    """Read a safetensors file or a ``torch.save`` checkpoint without executing pickled code.

    Args:
        path: The checkpoint file.

    Returns:
        The file's top-level mapping and, for safetensors, its metadata.

    Raises:
        FileNotFoundError: If ``path`` is not an existing file.
        ValueError: If the file is unreadable as either format, needs unsafe unpickling, or does not
            hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist or is not a file")
    if _is_safetensors(path):
        return _read_safetensors(path)
    return _read_pickle(path)


def write_atomically(path: PathLike, write: Callable[[Path], None], overwrite: bool) -> Path:
    """Check the destination, then write it through a temporary sibling (:func:`write_through_temporary`)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting (--overwrite)")
    return write_through_temporary(path, write)


def write_safetensors(
    tensors: Mapping[str, torch.Tensor], path: PathLike, metadata: Mapping[str, str], overwrite: bool = False
) -> Path:
    """Write tensors (made contiguous, on CPU) and string metadata to a safetensors file, atomically.

    Raises:
        FileNotFoundError: If the output folder does not exist.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    return write_atomically(path, lambda target: save_file(contiguous, str(target), dict(metadata)), overwrite)


def write_torch(obj: Any, path: PathLike, overwrite: bool = False) -> Path:
    """``torch.save`` an object of tensors and plain values, atomically (same errors as above)."""
    return write_atomically(path, lambda target: torch.save(obj, target), overwrite)


def write_pickle(obj: Any, path: PathLike, overwrite: bool = False) -> Path:
    """``pickle.dump`` an object, atomically: the format detectron2 reads for ``.pkl`` weights."""

    def dump(target: Path) -> None:
        with target.open("wb") as handle:
            pickle.dump(obj, handle)

    return write_atomically(path, dump, overwrite)
