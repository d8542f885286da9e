"""torch.hub: every entry point builds timm's network, from a plain checkout with no install."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import vader_hub  # noqa: F401  (registers the models)

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINTS = timm.list_models("vader_*")


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_builds_the_same_network_as_timm(name):
    torch.manual_seed(0)
    from_hub = torch.hub.load(str(REPO), name, source="local").eval()
    torch.manual_seed(0)
    from_timm = timm.create_model(name).eval()
    hub_state, timm_state = from_hub.state_dict(), from_timm.state_dict()
    assert hub_state.keys() == timm_state.keys()
    assert all(torch.equal(hub_state[k], timm_state[k]) for k in hub_state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(from_hub(x), from_timm(x))


def _copy_checkout(destination: Path) -> Path:
    """The files torch.hub gets from GitHub's archive of the repo (the package is not installed from it)."""
    destination.mkdir(parents=True)
    shutil.copytree(REPO / "vader_hub", destination / "vader_hub", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("hubconf.py", "weights_manifest.json"):
        shutil.copy(REPO / name, destination / name)
    return destination


HUB_SCRIPT = """
import json, sys, torch
repo, checkout = sys.argv[1], sys.argv[2]
names = torch.hub.list(repo, trust_repo=True, verbose=False)
docs = {n: torch.hub.help(repo, n, trust_repo=True) for n in names}
from_github = torch.hub.load(repo, "vader_r18_fpn", trust_repo=True, verbose=False, num_classes=3)
from_local = torch.hub.load(checkout, "vader_r18_fpn", source="local")
import vader_hub
with torch.no_grad():
    shapes = [tuple(m(torch.randn(1, 3, 40, 40)).shape) for m in (from_github, from_local)]
print(json.dumps(dict(names=names, docs=docs, module=vader_hub.__file__, shapes=shapes)))
"""


def test_list_help_and_load_work_from_a_plain_checkout(tmp_path):
    """torch.hub's GitHub path (a cached archive of the repo under $TORCH_HOME/hub) and source='local',
    in a fresh process whose vader_hub must come from the checkout, not from site-packages."""
    hub_copy = _copy_checkout(tmp_path / "torch_home" / "hub" / "owner_vader-hub_main")
    local_copy = _copy_checkout(tmp_path / "checkout")
    result = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, "owner/vader-hub:main", str(local_copy)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report["names"]) == sorted(ENTRY_POINTS)
    assert all("128" in doc and "pretrained" in doc for doc in report["docs"].values())
    assert Path(report["module"]).is_relative_to(hub_copy)
    assert report["shapes"] == [[1, 3, 10, 10], [1, 128, 10, 10]]
