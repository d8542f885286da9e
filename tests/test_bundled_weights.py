"""The weights that ship inside the package: listed, verified on the bytes loaded, refused when changed."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import vader_hub
from vader_hub.models import default_model_name
from vader_hub.weights.manifest import FileSource, bundled_manifest_path, read_manifest_file
from vader_hub.weights.resolve import ResolveOptions, resolve_entry

PACKAGE = Path(vader_hub.__file__).resolve().parent
BUNDLED = read_manifest_file(bundled_manifest_path())
LOAD_SCRIPT = "import timm, vader_hub; timm.create_model({name!r}, pretrained=True); print('loaded')"


def offline_env(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ, VADER_HUB_OFFLINE="1", VADER_HUB_CACHE=str(tmp_path / "cache"), **extra)
    env.pop("VADER_HUB_MANIFEST", None)
    env.pop("VADER_HUB_WEIGHTS_DIR", None)
    return env


def test_every_bundled_entry_is_a_file_inside_the_package_with_its_hash_and_provenance():
    assert BUNDLED, "the bundled manifest lists no weights"
    for entry in BUNDLED:
        local = [s.path for s in entry.sources if isinstance(s, FileSource)]
        assert local and local[0].is_relative_to(PACKAGE), entry.name
        data = local[0].read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry.sha256, entry.size)
        assert entry.size < 30e6 and entry.license == "apache-2.0"
        assert entry.provenance["steps"] and entry.provenance["config"]["model"] == entry.architecture
        assert {"pck@4", "pck@8"} <= set(entry.metrics["synthetic_warps"]["weights"])


def test_the_default_model_is_the_bundled_r18_and_loads_offline_from_the_package(tmp_path):
    name = default_model_name()
    assert name == BUNDLED[0].name and name.startswith("vader_r18_fpn")
    options = ResolveOptions(cache_dir=tmp_path / "cache", offline=True)
    found = resolve_entry(BUNDLED[0], options)
    assert found.verified and found.path.is_relative_to(PACKAGE)
    model = timm.create_model(name, pretrained=True)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 128, 16, 16)


def test_a_copy_of_the_package_with_one_byte_changed_refuses_its_weights(tmp_path):
    copy = tmp_path / "site" / "vader_hub"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    entry = BUNDLED[0]
    weights = copy / next(s.path for s in entry.sources if isinstance(s, FileSource)).relative_to(PACKAGE)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    env = offline_env(tmp_path, PYTHONPATH=str(copy.parent))
    script = f"import vader_hub; assert vader_hub.__file__.startswith({str(copy)!r}); " + LOAD_SCRIPT.format(
        name=entry.name)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode != 0 and "loaded" not in done.stdout
    assert str(weights) in done.stderr and "sha256" in done.stderr


@pytest.mark.parametrize("via", ["timm", "torch.hub"])
def test_pretrained_loads_in_a_fresh_offline_process(tmp_path, via):
    checkout = PACKAGE.parent
    if via == "torch.hub" and not (checkout / "hubconf.py").is_file():
        pytest.skip("installed without a checkout")
    script = (LOAD_SCRIPT.format(name="vader_r18_fpn") if via == "timm" else
              f"import torch; torch.hub.load({str(checkout)!r}, 'vader_r18_fpn', source='local', pretrained=True); "
              "print('loaded')")
    done = subprocess.run([sys.executable, "-c", script], env=offline_env(tmp_path), capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and "loaded" in done.stdout, done.stderr[-2000:]
