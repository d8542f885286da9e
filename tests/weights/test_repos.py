"""Weights shared the timm way load the timm way, verified: ``hf-hub:`` against a loopback Hub, ``local-dir:``.

The Hub tests run the loads in fresh processes (huggingface_hub reads ``HF_ENDPOINT`` at import), with
no manifest set, against :class:`servers.FaultServer` speaking the Hub protocol.
"""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import timm
import torch
from timm.models import adapt_input_conv, save_for_hf

from vader_hub.models import hub_config
from vader_hub.weights import ChecksumMismatchError, WeightsNotFoundError, export_weights
from vader_hub.weights.publish import publish
from vader_hub.weights.repos import UnverifiedWeightsWarning

INPUT_SEED = 1
LOAD_SCRIPT = """
import sys, warnings, timm, torch, vader_hub
from vader_hub.weights.repos import UnverifiedWeightsWarning
warnings.simplefilter("error", UnverifiedWeightsWarning) if sys.argv[3] == "strict" else None
model = timm.create_model(sys.argv[1], pretrained=True).eval()
torch.manual_seed(1)
with torch.no_grad():
    torch.save({"state": model.state_dict(), "output": model(torch.randn(1, 3, 64, 64))}, sys.argv[2])
"""
PUSH_SCRIPT = """
import sys, timm, torch, vader_hub
from timm.models import push_to_hf_hub
torch.manual_seed(0)
push_to_hf_hub(timm.create_model("vader_r18_fpn"), sys.argv[1])
"""


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(0)
    return timm.create_model("vader_r18_fpn").eval()


def _output(model) -> torch.Tensor:
    torch.manual_seed(INPUT_SEED)
    with torch.no_grad():
        return model(torch.randn(1, 3, 64, 64))


def _export(model, folder: Path):
    return export_weights(model.state_dict(), "vader_r18_fpn", folder, tag="mine", config=hub_config(model))


def _fresh_process(script: str, *args: str, server, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "VADER_HUB_MANIFEST"}
    env.update(HF_ENDPOINT=server.base_url, HF_HUB_CACHE=str(tmp_path / "hf"), VADER_HUB_CACHE=str(tmp_path / "vc"),
               HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def _load_in_fresh_process(name: str, server, tmp_path: Path, strict: bool = True) -> subprocess.CompletedProcess:
    return _fresh_process(LOAD_SCRIPT, name, str(tmp_path / "out.pt"), "strict" if strict else "lenient",
                          server=server, tmp_path=tmp_path)


def assert_same_network(loaded_path: Path, model) -> None:
    """Bit for bit the same tensors; the same output up to the float rounding of another thread count."""
    loaded = torch.load(loaded_path)
    assert loaded["state"].keys() == model.state_dict().keys()
    assert all(torch.equal(loaded["state"][key], value) for key, value in model.state_dict().items())
    torch.testing.assert_close(loaded["output"], _output(model), rtol=1e-5, atol=1e-5)


def _cached_weights(tmp_path: Path) -> list:
    return [p for p in (tmp_path / "hf").rglob("model.safetensors") if p.exists()]


def test_a_repo_made_by_publish_loads_by_its_hf_hub_name_verified(server, r18, tmp_path):
    commit = publish(_export(r18, tmp_path / "export").weights.parent, "org/vader", endpoint=server.base_url).commit
    result = _load_in_fresh_process(f"hf-hub:org/vader@{commit}", server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_same_network(tmp_path / "out.pt", r18)


def test_a_repo_made_by_timms_push_to_hf_hub_loads(server, r18, tmp_path):
    pushed = _fresh_process(PUSH_SCRIPT, "org/timm-vader", server=server, tmp_path=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    commit = server.state.records[("org/timm-vader", "main")]["sha"]
    result = _load_in_fresh_process(f"hf-hub:org/timm-vader@{commit}", server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_same_network(tmp_path / "out.pt", r18)


def test_a_changed_byte_on_the_hub_is_refused_and_nothing_corrupt_stays_cached(server, r18, tmp_path):
    commit = publish(_export(r18, tmp_path / "export").weights.parent, "org/vader", endpoint=server.base_url).commit
    served = server.state.files[f"/org/vader/resolve/{commit}/model.safetensors"]
    served.data = served.data[:-1] + bytes([served.data[-1] ^ 1])
    result = _load_in_fresh_process(f"hf-hub:org/vader@{commit}", server, tmp_path)
    assert result.returncode != 0 and "ChecksumMismatchError" in result.stderr
    assert "the Hub records" in result.stderr and not (tmp_path / "out.pt").exists()
    assert _cached_weights(tmp_path) == []


def test_an_unpinned_branch_loads_with_a_warning_naming_the_commit_to_pin(server, r18, tmp_path):
    commit = publish(_export(r18, tmp_path / "export").weights.parent, "org/vader", endpoint=server.base_url).commit
    result = _load_in_fresh_process("hf-hub:org/vader", server, tmp_path, strict=False)
    assert result.returncode == 0, result.stderr
    assert "UnverifiedWeightsWarning" in result.stderr and f"Pin it: hf-hub:org/vader@{commit}" in result.stderr
    refused = _load_in_fresh_process("hf-hub:org/vader", server, tmp_path, strict=True)
    assert refused.returncode != 0 and "UnverifiedWeightsWarning" in refused.stderr


def _cfg_fields(model) -> dict:
    keys = ("mean", "std", "interpolation", "crop_pct", "input_size", "min_input_size", "first_conv", "classifier")
    return {key: tuple(v) if isinstance(v := model.pretrained_cfg[key], (list, tuple)) else v for key in keys}


def test_an_export_folder_loads_by_its_local_dir_name_verified_with_the_exporters_cfg(r18, tmp_path):
    folder = _export(r18, tmp_path / "export").weights.parent
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedWeightsWarning)
        model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert torch.equal(_output(model), _output(r18))
    assert _cfg_fields(model) == _cfg_fields(r18) and model.pretrained_cfg["tag"] == "mine"
    unloaded = timm.create_model(f"local-dir:{folder}", pretrained=False)
    assert unloaded.pretrained_cfg["crop_pct"] == 1.0


def test_a_changed_export_folder_is_refused(r18, tmp_path):
    weights = _export(r18, tmp_path / "export").weights
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ChecksumMismatchError, match="the manifest says"):
        timm.create_model(f"local-dir:{weights.parent}", pretrained=True)
    assert weights.read_bytes() != data  # the user's file is reported, never deleted or rewritten


def test_a_folder_written_by_save_for_hf_loads_with_a_warning_that_it_is_unverified(r18, tmp_path):
    save_for_hf(r18, str(tmp_path / "pickled"))  # timm's default: pytorch_model.bin, a pickle
    with pytest.raises(WeightsNotFoundError, match="has no model.safetensors .it holds config.json, pytorch_model.bin"):
        timm.create_model(f"local-dir:{tmp_path / 'pickled'}", pretrained=True)
    save_for_hf(r18, str(tmp_path / "timm"), safe_serialization=True)
    assert json.loads((tmp_path / "timm" / "config.json").read_text())["architecture"] == "vader_r18_fpn"
    with pytest.warns(UnverifiedWeightsWarning, match="no recorded sha256"):
        model = timm.create_model(f"local-dir:{tmp_path / 'timm'}", pretrained=True).eval()
    assert torch.equal(_output(model), _output(r18))


@pytest.mark.parametrize("in_chans", [1, 4])
def test_other_input_channels_adapt_the_first_convolution_as_timm_does(r18, tmp_path, in_chans):
    folder = _export(r18, tmp_path / "export").weights.parent
    model = timm.create_model("vader_r18_fpn", pretrained=True, in_chans=in_chans,
                              pretrained_cfg_overlay=dict(file=str(folder / "model.safetensors")))
    expected = adapt_input_conv(in_chans, r18.trunk.conv1.weight.detach())
    assert model.trunk.conv1.weight.shape[1] == in_chans and torch.equal(model.trunk.conv1.weight, expected)
    assert torch.equal(model.trunk.layer1[0].conv1.weight, r18.trunk.layer1[0].conv1.weight)
    assert model(torch.randn(1, in_chans, 64, 64)).shape == (1, 128, 16, 16)
