"""Fixtures for the weights tests: an isolated environment, loopback servers, a small exported file."""
from pathlib import Path
from typing import Iterator

import pytest
import timm
import torch
from huggingface_hub import constants as hf_constants

from vader_hub.models import hub_config
from vader_hub.weights import export_weights, manifest

from .helpers import Exported, small_module
from .servers import FaultServer

ENV_CLEARED = ("VADER_HUB_MANIFEST", "VADER_HUB_OFFLINE", "HF_HUB_OFFLINE", "VADER_HUB_WEIGHTS_DIR",
               "VADER_HUB_ALLOW_HTTP", "HF_ENDPOINT", "HF_HOME", "XDG_CACHE_HOME")
FAST_POLICY = {"VADER_HUB_CONNECT_TIMEOUT": "2", "VADER_HUB_READ_TIMEOUT": "0.5", "VADER_HUB_RETRIES": "2",
               "VADER_HUB_RETRY_BACKOFF": "0.05", "VADER_HUB_DOWNLOAD_DEADLINE": "20"}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own caches, no user manifests and an empty bundled manifest (the shipped
    weights are tested in tests/test_bundled_weights.py); downloads give up fast.

    huggingface_hub read HF_HUB_OFFLINE at import: an offline CI machine must still reach the
    loopback Hub endpoint, so its flag is cleared too (offline tests set the variable, which
    vader-hub reads at each call).
    """
    for name in ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("VADER_HUB_CACHE", str(tmp_path / "vader_cache"))
    empty_bundled = tmp_path_factory.mktemp("bundled") / "weights_manifest.json"
    empty_bundled.write_text('{"schema_version": 1, "entries": []}\n')
    monkeypatch.setattr(manifest, "bundled_manifest_path", lambda: empty_bundled)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    for name, value in FAST_POLICY.items():
        monkeypatch.setenv(name, value)
    return tmp_path


@pytest.fixture
def server() -> Iterator[FaultServer]:
    fault_server = FaultServer()
    yield fault_server
    fault_server.close()


@pytest.fixture
def exported(tmp_path: Path) -> Exported:
    """An exported module of about 20 KiB: big enough to cut in halves and quarters."""
    module = small_module(seed=1, channels=64)
    result = export_weights(module.state_dict(), "vader_r18_fpn", tmp_path / "export", tag="test",
                            provenance={"data": "synthetic", "steps": 0})
    return Exported(result, module, result.weights.read_bytes())


@pytest.fixture
def r18_exported(tmp_path: Path) -> Exported:
    """A real vader_r18_fpn export (random weights, float16, 26 MB): what publishing checks the tensors of."""
    torch.manual_seed(1)
    module = timm.create_model("vader_r18_fpn").eval()
    result = export_weights(module.state_dict(), "vader_r18_fpn", tmp_path / "r18_export", tag="test", half=True,
                            provenance={"data": "synthetic", "steps": 0}, config=hub_config(module))
    return Exported(result, module, result.weights.read_bytes())
