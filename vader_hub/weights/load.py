"""Loading pretrained weights into a model: resolve, verify, check the architecture, load strictly.

The order (``docs/weights.md``): an explicit file of the user's (``pretrained_cfg["file"]``, from
``pretrained_cfg_overlay=dict(file=...)``), then ``$VADER_HUB_WEIGHTS_DIR/<architecture>.<tag>.safetensors``;
both are the user's own files, with no manifest hash, so they are only checked to be safetensors
of the right architecture. Otherwise the manifest entry is resolved (cache, then sources) and its
bytes are sha256-verified before they are deserialised.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import timm
import torch
from timm.models import adapt_input_conv

from .errors import StateDictMismatchError, WeightsNotFoundError
from .manifest import read_manifests
from .repos import find_folder_weights, find_hub_weights
from .resolve import ResolveOptions, VerifiedWeights, resolve_entry
from .verify import deserialize, read_header_bytes, read_metadata

MAX_KEYS_LISTED = 20


def _listed(keys: List[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_LISTED])
    return shown + (f", ... ({len(keys) - MAX_KEYS_LISTED} more)" if len(keys) > MAX_KEYS_LISTED else "")


def _fit_classifier(model_state: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor],
                    classifier: Optional[str]) -> Dict[str, torch.Tensor]:
    """The file's tensors, with the classifier treated as timm does for another ``num_classes``.

    A classifier the file lacks, or has with other shapes, keeps the model's fresh initialisation;
    one the model lacks is dropped. Every other key must match exactly.
    """
    if not classifier:
        return dict(state_dict)
    prefix = f"{classifier}."
    fitted = {key: value for key, value in state_dict.items()
              if not key.startswith(prefix) or (key in model_state and model_state[key].shape == value.shape)}
    head = [key for key in model_state if key.startswith(prefix)]
    if any(key not in fitted for key in head):
        fitted.update({key: model_state[key] for key in head})
    return fitted


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], origin: str,
                           classifier: Optional[str] = None) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with a readable error first.

    Args:
        model: the network to load into.
        state_dict: the file's tensors.
        origin: where they came from, for the message.
        classifier: the module name of the model's classifier (timm's cfg ``classifier``): it may
            be absent or differently shaped (another ``num_classes``) and is then left as initialised.

    Raises:
        StateDictMismatchError: listing the missing keys, unexpected keys and shape mismatches, or
            naming a floating-point tensor stored as an integer or bool or holding NaN or inf; the
            model is left unchanged.
    """
    expected = model.state_dict()
    state_dict = _fit_classifier(expected, state_dict, classifier)
    _check_keys_and_shapes(_shapes(expected), _shapes(state_dict), origin, type(model).__name__)
    _check_values(expected, state_dict, origin)
    model.load_state_dict(state_dict, strict=True)


def _shapes(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def _check_keys_and_shapes(expected: Mapping[str, Tuple[int, ...]], given: Mapping[str, Tuple[int, ...]], origin: str,
                           network: str) -> None:
    """The one report of a state dict that does not fit a network: missing, unexpected and reshaped keys."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(f"{key} {given[key]} vs model {expected[key]}"
                    for key in set(expected) & set(given) if given[key] != expected[key])
    if missing or unexpected or shapes:
        lines = [f"{origin} does not match {network}:"]
        lines += [f"  missing from the file ({len(missing)}): {_listed(missing)}"] if missing else []
        lines += [f"  unexpected in the file ({len(unexpected)}): {_listed(unexpected)}"] if unexpected else []
        lines += [f"  different shapes ({len(shapes)}): {_listed(shapes)}"] if shapes else []
        lines.append("  (weights of another architecture or configuration, or a truncated export?)")
        raise StateDictMismatchError("\n".join(lines))


def check_fits_architecture(architecture: str, shapes: Mapping[str, Tuple[int, ...]], num_classes: int,
                            origin: str) -> None:
    """Check that tensors of these names and shapes are exactly the weights of ``architecture``.

    Args:
        architecture: The timm name, e.g. ``"vader_r18_fpn"``.
        shapes: Tensor name -> shape, e.g. from a safetensors header.
        num_classes: The network's head width (0: none), as its ``config.json`` records it.
        origin: Where the tensors are, for the message.

    Raises:
        StateDictMismatchError: With the same missing/unexpected/reshaped report a load gives.
    """
    with torch.device("meta"):  # the network's names and shapes without allocating it
        model = timm.create_model(architecture, num_classes=num_classes)
    _check_keys_and_shapes(_shapes(model.state_dict()), shapes, origin, type(model).__name__)


def _check_values(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor], origin: str) -> None:
    """Refuse what ``load_state_dict`` would cast silently: a floating-point parameter stored as an
    integer or bool, or holding NaN or inf. Another floating dtype (half-precision storage) is cast."""
    for key, value in state_dict.items():
        if not expected[key].is_floating_point():
            continue
        if not value.is_floating_point():
            raise StateDictMismatchError(f"{origin}: tensor {key} is stored as {value.dtype}, but the model's is "
                                         f"{expected[key].dtype}: not weights this model can load")
        if not bool(torch.isfinite(value).all()):
            raise StateDictMismatchError(f"{origin}: tensor {key} holds NaN or inf values; the weights are broken "
                                         "(a diverged run?) and were not loaded")


def _adapt_first_conv(model_state: Mapping[str, torch.Tensor], state_dict: Dict[str, torch.Tensor],
                      first_conv: Optional[str]) -> Dict[str, torch.Tensor]:
    """The file's tensors with the first convolution fitted to the model's input channels, as timm does.

    A model built with ``in_chans`` other than the file's (greyscale, RGB-D) gets the pretrained
    filters summed (1 channel) or repeated and rescaled (timm's ``adapt_input_conv``).
    """
    key = f"{first_conv}.weight" if first_conv else None
    if key is None or key not in state_dict or key not in model_state:
        return state_dict
    in_chans, stored = model_state[key].shape[1], state_dict[key]
    if stored.ndim != 4 or stored.shape[1] == in_chans:
        return state_dict
    adapted = adapt_input_conv(in_chans, stored.float()).to(stored.dtype)  # (O, in_chans, kh, kw)
    return {**state_dict, key: adapted}


def read_user_file(path: Path) -> VerifiedWeights:
    """The bytes of a user's explicit weights file (no manifest hash to check them against).

    The file is read whole only once its first bytes (the 8-byte header length and the header it
    announces) are a safetensors header, so a large file of anything else costs a few bytes.

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        NotAWeightsFileError: if it does not start with a safetensors header (a pickle, an image).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {path} does not exist (pretrained_cfg_overlay file=)")
    origin = f"your file {path}"
    read_metadata(read_header_bytes(path), origin)
    return VerifiedWeights(path, path.read_bytes(), origin, verified=False)


def _cfg_dict(pretrained_cfg: Any) -> Dict[str, Any]:
    if hasattr(pretrained_cfg, "to_dict"):
        pretrained_cfg = pretrained_cfg.to_dict()
    if not isinstance(pretrained_cfg, Mapping) or not pretrained_cfg.get("architecture"):
        raise ValueError(f"pretrained_cfg must be a dict with an 'architecture', got {pretrained_cfg!r}")
    return dict(pretrained_cfg)


def _no_weights_error(architecture: str, tag: str, options: ResolveOptions) -> WeightsNotFoundError:
    tags = read_manifests().tags_for(architecture)
    folder = options.weights_dir or "$VADER_HUB_WEIGHTS_DIR"
    name = f"{architecture}.{tag}" if tag else architecture
    known = f"its manifest tags are {tags}" if tags else "no weights are published for it yet"
    return WeightsNotFoundError(
        f"no pretrained weights for {name}: {known}. To get weights: train them "
        f"(`python -m vader_hub.train --preset smoke` for a quick run, `--preset paper` for the paper's "
        f"recipe) and export them (`vader-hub weights export`); then pass "
        f"timm.create_model({architecture!r}, pretrained=True, pretrained_cfg_overlay=dict(file='model.safetensors')), "
        f"put the file at {folder}/{name}.safetensors, or add it to a VADER_HUB_MANIFEST file."
    )


def find_weights(architecture: str, tag: Optional[str] = None, file: Optional[str] = None,
                 options: Optional[ResolveOptions] = None, hf_hub_id: Optional[str] = None) -> VerifiedWeights:
    """The bytes to load for ``architecture.tag``, in the documented resolution order.

    Args:
        architecture: the timm name, e.g. ``"vader_r18_fpn"``.
        tag: the pretrained tag; None or empty for the default.
        file: a user's explicit weights file, or a folder holding ``model.safetensors`` (timm's
            ``local-dir:``); when given, it is used and nothing else is looked at.
        options: where to look and how to download; default :meth:`ResolveOptions.from_env`.
        hf_hub_id: a Hub repo ``org/name[@revision]`` (timm's ``hf-hub:``); when given (and no
            ``file``), its ``model.safetensors`` is loaded, verified (:mod:`.repos`).

    Returns:
        The file's path, bytes and origin; ``verified`` is False for a user's own file (explicit or in
        ``$VADER_HUB_WEIGHTS_DIR``) or a folder's or repo's file without a pinned record.

    Raises:
        FileNotFoundError: if an explicit ``file`` does not exist.
        NotAWeightsFileError: if a user's own file does not start with a safetensors header.
        WeightsNotFoundError: if no weights exist for the name, or none could be fetched and
            verified (listing every place looked in).
        ChecksumMismatchError: if a repo's or folder's file differs from its record.
    """
    options = options or ResolveOptions.from_env()
    tag = tag or ""
    if file:
        path = Path(file).expanduser()
        return find_folder_weights(path, options) if path.is_dir() else read_user_file(path)
    if hf_hub_id:
        return find_hub_weights(hf_hub_id, options)
    name = f"{architecture}.{tag}" if tag else architecture
    if options.weights_dir is not None and (options.weights_dir / f"{name}.safetensors").is_file():
        return read_user_file(options.weights_dir / f"{name}.safetensors")
    entry = read_manifests().find(architecture, tag)
    if entry is None:
        raise _no_weights_error(architecture, tag, options)
    return resolve_entry(entry, options)


def load_pretrained(model: torch.nn.Module, pretrained_cfg: Any) -> Path:
    """Resolve, verify and strictly load pretrained weights into ``model``.

    Called by the vader models' create function when ``pretrained=True``; timm never downloads.

    Args:
        model: the freshly built network.
        pretrained_cfg: timm's resolved cfg (dict or ``PretrainedCfg``): ``architecture``, ``tag``
            (empty for the default), ``file`` (a user's explicit file or ``local-dir:`` folder, if
            any), ``hf_hub_id`` with ``source="hf-hub"`` (timm's ``hf-hub:`` names) and
            ``classifier`` (left as initialised when the file's ``num_classes`` differs, as timm does).

    Returns:
        The path of the file that was loaded.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if ``pretrained_cfg`` has no architecture.
        WeightsNotFoundError: no weights, or none that could be fetched and verified.
        NotAWeightsFileError / ArchitectureMismatchError: a file that is not vader-hub safetensors
            of this architecture.
        StateDictMismatchError: keys or shapes, other than the classifier's, that do not match.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    cfg = _cfg_dict(pretrained_cfg)
    hub_repo = cfg.get("hf_hub_id") if cfg.get("source") == "hf-hub" else None
    weights = find_weights(cfg["architecture"], cfg.get("tag"), cfg.get("file"), hf_hub_id=hub_repo)
    state_dict = deserialize(weights.data, cfg["architecture"], weights.origin)
    state_dict = _adapt_first_conv(model.state_dict(), state_dict, cfg.get("first_conv"))
    load_state_dict_strict(model, state_dict, weights.origin, cfg.get("classifier"))
    return weights.path
