"""VADeR model names, ``architecture`` or ``architecture.tag``, checked in one place.

The weights layer knows architectures by name only: the ``vader_*`` names timm has registered
(``import vader_hub`` registers them) and the tags the manifests give weights.
"""
from typing import List, Tuple

import timm

from .errors import UnknownModelError
from .manifest import read_readable_manifests


def vader_architectures() -> List[str]:
    """The registered VADeR architectures, sorted, e.g. ``["vader_r101_fpn", "vader_r18_fpn", ...]``."""
    return timm.list_models("vader_*")


def check_architecture(name: str, where: str = "") -> str:
    """The architecture of a model name, if it is a registered VADeR model.

    Args:
        name: ``"vader_r18_fpn"`` or ``"vader_r18_fpn.<tag>"`` (the tag is not checked here).
        where: What holds the name, for the message (e.g. a file that records it); empty for an argument.

    Returns:
        The architecture, e.g. ``"vader_r18_fpn"``.

    Raises:
        UnknownModelError: If the architecture is not registered; the message lists those that are.
    """
    architecture = str(name).split(".", 1)[0]
    known = vader_architectures()
    if architecture in known:
        return architecture
    if architecture.startswith("vader_"):
        advice = "upgrade vader-hub if it comes from a newer version"
    else:
        advice = ("it is not a VADeR model; convert other ResNet backbones with `vader-hub convert import`, "
                  "or build the model yourself and pass the module")
    prefix = f"{where}: " if where else ""
    raise UnknownModelError(f"{prefix}unknown model {name!r}: the VADeR models are {', '.join(known)} "
                            f"(each optionally with '.<tag>'); {advice}")


def check_model_name(name: str) -> Tuple[str, str]:
    """Split a model name into architecture and tag, if both are known.

    Args:
        name: ``"vader_r18_fpn"`` (the default tag) or ``"vader_r18_fpn.<tag>"``.

    Returns:
        ``(architecture, tag)``, the tag empty when the name has none.

    Raises:
        UnknownModelError: For an unregistered architecture, or a tag without published weights.
    """
    architecture = check_architecture(name)
    tag = name[len(architecture) + 1:]
    published = [entry.name for entry in read_readable_manifests().entries if entry.architecture == architecture]
    if tag and name not in published:
        published = ", ".join(published) or "none"
        raise UnknownModelError(f"unknown pretrained tag in {name!r}; published weights for {architecture}: "
                                f"{published} (`vader-hub weights list`)")
    return architecture, tag
