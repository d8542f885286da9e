"""Where trained weights came from: the code's version, and the provenance a run's export records.

Every checkpoint stores `code_version()`, and the exported weights carry `export_provenance(...)`
(the weights layer's provenance keys: config, data, steps, code_version), so a weights file says
which code, recipe and images made it.
"""

import dataclasses
import functools
import subprocess
from pathlib import Path

from .. import __version__
from .config import TrainConfig
from .data import ImageList


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, with the git commit when running from a checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                                capture_output=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__


def export_provenance(config: TrainConfig, images: ImageList) -> dict[str, object]:
    """The provenance of a finished run's export: its config, its images (listed in `data.txt`), code version."""
    return {"config": dataclasses.asdict(config), "steps": config.steps, "code_version": code_version(),
            "data": {"source": config.data, "images": len(images.paths), "skipped": len(images.skipped),
                     "sha256_of_paths_and_sizes": images.fingerprint(), "list": "data.txt"}}
