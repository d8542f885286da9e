"""The held-out split of a photo set, by group, from file names alone.

Photos that show the same scene must fall on one side of the split, or the evaluation measures
memory instead of features. Groups come from the file names (see :func:`group_key`):

- frames of one video: a trailing ``_<digits>`` or ``-<digits>`` is a frame index
  (``vid_Megamind_0040`` -> ``vid_megamind``);
- a stereo pair: the words ``left`` / ``right`` (``cv_left``, ``cv_right`` -> ``cv_{side}``);
- a pair or sequence: trailing digits (``cv_rubberwhale1`` / ``2``, ``cv_aero1`` / ``3``, ``cv_pic1`` .. ``6``)
  or a trailing capital after a lower-case letter (``cv_leuvenA`` / ``B``, ``aloeL`` / ``R``);
- companions that a photo set's :class:`SplitRules` name: pairs that no name rule can see.

The source of a photo is the prefix before the first ``_`` when the rules list it, else ``other``.
What a photo set's names mean beyond these rules (its sources and companions) is data, not code: a
JSON rules file (:func:`load_split_rules`); the default rules name none, so every photo is of source
``other``. Within each source, groups are ranked by the sha256 of ``SALT:key`` and held out in that
order while the source's evaluated files stay within ``eval_fraction`` of its files (to the nearest
file), always holding out at least one group and keeping at least one for training when the source has
two or more. A held-out group contributes at most ``max_eval_per_group`` evenly spaced files to the
evaluation (so one video does not dominate the mean); its other files are ``excluded``: neither
trained on nor evaluated. The split depends only on the file names, not on their order, and a group's
side does not change when unrelated files are added to other sources.
"""
import hashlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Tuple, Union

from ..pathlist import IMAGE_SUFFIXES, is_image_file
from .jsonfile import read_json

SALT = "vader-hub split v1"
OTHER_SOURCE = "other"
_RULES_KEYS = {"about", "sources", "companions"}

_FRAME_INDEX = re.compile(r"[_-]\d+$")
_STEREO_SIDE = re.compile(r"(?i)left|right")
_SEQUENCE_DIGITS = re.compile(r"\d+$")
_PAIR_LETTER = re.compile(r"(?<=[a-z])[A-Z]$")


@dataclass(frozen=True)
class SplitRules:
    """What one photo set's file names mean beyond the name rules of the module docstring.

    Attributes:
        sources: Lower-case file-name prefixes (the part before the first ``_``) that name where a photo
            comes from; each source is split on its own, so every source is held out and trained on.
        companions: ``{group key: group key it joins}``, for groups that show one scene under unrelated names.
    """

    sources: Tuple[str, ...] = ()
    companions: Mapping[str, str] = field(default_factory=dict)


DEFAULT_RULES = SplitRules()
"""No sources and no companions: the name rules alone, one source for every photo."""


def load_split_rules(path: Union[str, Path]) -> SplitRules:
    """Read a photo set's split rules from a JSON object (``docs/eval.md``, "The held-out split")::

        {"about": "free text, ignored",
         "sources": ["cam", "phone"],
         "companions": {"cam_dusk": "cam_dawn"}}

    Args:
        path: The JSON file; every key is optional.

    Returns:
        The :class:`SplitRules`.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For invalid JSON, unknown keys, a source that is not a lower-case prefix without ``_``,
            or a companion that is not lower case or joins a group that joins another.
    """
    rules = read_json(path, "split rules file")
    if not isinstance(rules, dict):
        raise ValueError(f"{path} must hold a JSON object with 'sources' and/or 'companions'")
    unknown = set(rules) - _RULES_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(_RULES_KEYS)}")
    return SplitRules(
        sources=_checked_sources(rules.get("sources", []), path),
        companions=_checked_companions(rules.get("companions", {}), path),
    )


def _checked_sources(sources: object, path: Union[str, Path]) -> Tuple[str, ...]:
    if not isinstance(sources, list):
        raise ValueError(f"{path}: 'sources' must be a list of file-name prefixes, got {sources!r}")
    for source in sources:
        if not isinstance(source, str) or not source or "_" in source or source != source.lower():
            raise ValueError(f"{path}: a source is a non-empty lower-case file-name prefix without '_', got {source!r}")
        if source == OTHER_SOURCE:
            raise ValueError(f"{path}: {OTHER_SOURCE!r} is the source of unlisted photos; pick another name")
    return tuple(sources)


def _checked_companions(companions: object, path: Union[str, Path]) -> Dict[str, str]:
    if not isinstance(companions, dict):
        raise ValueError(f"{path}: 'companions' must be an object {{group key: group key it joins}}")
    for key, joined in companions.items():
        if not isinstance(joined, str) or key != key.lower() or joined != joined.lower():
            raise ValueError(f"{path}: companions map lower-case group keys to lower-case group keys, "
                             f"got {key!r}: {joined!r}")
        if companions.get(joined, joined) != joined:
            raise ValueError(f"{path}: companion {key!r} joins {joined!r}, which joins another group; "
                             "point it at the group it ends in")
    return dict(companions)


@dataclass(frozen=True)
class Split:
    """A photo set split by group.

    Attributes:
        train: Photos to train on, sorted by name.
        eval: Held-out photos to evaluate on, sorted by name.
        excluded: Held-out photos beyond a group's evaluation quota: neither trained on nor evaluated.
        groups: Group key of every photo's file name (stem), for the record.
    """

    train: List[Path]
    eval: List[Path]
    excluded: List[Path]
    groups: Dict[str, str]


def source_of(stem: str, rules: SplitRules = DEFAULT_RULES) -> str:
    """The source of a photo: its file-name prefix if ``rules`` list it, else :data:`OTHER_SOURCE`."""
    prefix = stem.split("_", 1)[0].lower()
    return prefix if prefix in rules.sources and "_" in stem else OTHER_SOURCE


def group_key(stem: str, rules: SplitRules = DEFAULT_RULES) -> str:
    """The group of a photo, from its file name without suffix (rules in the module docstring).

    Args:
        stem: File name without its suffix, e.g. ``"cv_leuvenA"``.
        rules: The photo set's companions.

    Returns:
        The lower-case group key, e.g. ``"cv_leuven"``.
    """
    key = _FRAME_INDEX.sub("", stem)
    key = _STEREO_SIDE.sub("{side}", key)
    key = _SEQUENCE_DIGITS.sub("", key)
    key = _PAIR_LETTER.sub("", key).lower()
    return rules.companions.get(key, key)


def split_photos(
    paths: Iterable[Union[str, Path]],
    *,
    rules: SplitRules = DEFAULT_RULES,
    eval_fraction: float = 0.25,
    max_eval_per_group: int = 4,
) -> Split:
    """Split photos into training and held-out evaluation photos, keeping each group on one side.

    Args:
        paths: Photo paths; only their file names matter.
        rules: The photo set's sources and companions (:func:`load_split_rules`); default: none.
        eval_fraction: Target share of each source's photos to evaluate on, in (0, 1).
        max_eval_per_group: Most photos one held-out group contributes to the evaluation.

    Returns:
        The :class:`Split`.

    Raises:
        ValueError: If ``paths`` is empty or names one file twice, or a parameter is out of range.
    """
    listed = [Path(p) for p in paths]
    photos = sorted(set(listed), key=_by_name)
    if not photos:
        raise ValueError("no photos to split; pass at least one path")
    if len(photos) != len(listed):
        raise ValueError("a photo is listed twice; pass each path once")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    if max_eval_per_group < 1:
        raise ValueError(f"max_eval_per_group must be at least 1, got {max_eval_per_group}")
    members: Dict[str, List[Path]] = defaultdict(list)
    for photo in photos:
        members[group_key(photo.stem, rules)].append(photo)
    held_out = _held_out_groups(members, rules, eval_fraction, max_eval_per_group)
    if not held_out:
        raise ValueError(
            f"nothing can be held out: every source of the {len(photos)} photos has a single group "
            "(see vader_hub.eval.split for the naming rules); add photos of other scenes"
        )
    train, evaluated, excluded = [], [], []
    for key, group in members.items():
        if key not in held_out:
            train.extend(group)
            continue
        chosen = _evenly_spaced(group, max_eval_per_group)
        evaluated.extend(chosen)
        excluded.extend(p for p in group if p not in chosen)
    return Split(
        train=sorted(train, key=_by_name),
        eval=sorted(evaluated, key=_by_name),
        excluded=sorted(excluded, key=_by_name),
        groups={p.stem: group_key(p.stem, rules) for p in photos},
    )


def list_photos(directory: Union[str, Path]) -> List[Path]:
    """The image files directly inside ``directory`` (:func:`vader_hub.pathlist.is_image_file`), sorted.

    Args:
        directory: The folder that holds the photos; subfolders are not searched.

    Returns:
        The image paths, sorted.

    Raises:
        FileNotFoundError: If ``directory`` does not exist.
        NotADirectoryError: If it is not a directory.
        ValueError: If it holds no image file.
    """
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"photo directory {directory} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory; pass the folder that holds the photos")
    photos = sorted(p for p in directory.iterdir() if is_image_file(p))
    if not photos:
        raise ValueError(f"{directory} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return photos


def _held_out_groups(
    members: Dict[str, List[Path]], rules: SplitRules, eval_fraction: float, max_eval_per_group: int
) -> set:
    """Per source, the groups held out: hash-ranked, up to the source's evaluation quota."""
    by_source: Dict[str, List[str]] = defaultdict(list)
    for key, group in members.items():
        by_source[source_of(group[0].stem, rules)].append(key)
    held_out = set()
    for keys in by_source.values():
        if len(keys) < 2:
            continue
        quota = eval_fraction * sum(len(members[k]) for k in keys) + 0.5
        ranked = sorted(keys, key=_rank)
        chosen, evaluated = [ranked[0]], min(len(members[ranked[0]]), max_eval_per_group)
        for key in ranked[1:]:
            size = min(len(members[key]), max_eval_per_group)
            if len(chosen) < len(keys) - 1 and evaluated + size <= quota:
                chosen.append(key)
                evaluated += size
        held_out.update(chosen)
    return held_out


def _by_name(path: Path) -> tuple:
    return path.name, str(path)


def _rank(key: str) -> str:
    return hashlib.sha256(f"{SALT}:{key}".encode()).hexdigest()


def _evenly_spaced(group: List[Path], count: int) -> List[Path]:
    """``count`` members at the centres of ``count`` equal runs of the sorted group (all if fewer)."""
    if len(group) <= count:
        return list(group)
    return [group[math.floor((k + 0.5) * len(group) / count)] for k in range(count)]
