"""load_pretrained: the user's explicit file, the weights folder, architecture checks, strict loading."""
import pytest
import torch
from safetensors.torch import save_file

from vader_hub.weights import (
    ArchitectureMismatchError,
    NotAWeightsFileError,
    StateDictMismatchError,
    WeightsNotFoundError,
    export_weights,
    load_pretrained,
)

from .helpers import small_module


def test_explicit_file_loads_without_a_manifest(exported):
    model = small_module(seed=5, channels=64)
    path = load_pretrained(model, {"architecture": "vader_r18_fpn", "tag": None, "file": str(exported.result.weights)})
    assert path == exported.result.weights
    for key, value in exported.module.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_timm_pretrained_cfg_objects_are_accepted(exported):
    from timm.models import PretrainedCfg
    cfg = PretrainedCfg(architecture="vader_r18_fpn", file=str(exported.result.weights))
    assert load_pretrained(small_module(channels=64), cfg) == exported.result.weights


def test_a_pickle_is_never_loaded(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(small_module().state_dict(), path)
    with pytest.raises(NotAWeightsFileError, match="only safetensors .never pickles."):
        load_pretrained(small_module(), {"architecture": "vader_r18_fpn", "file": str(path)})


def test_safetensors_without_vader_metadata_load_when_their_keys_and_shapes_fit(tmp_path):
    """timm's save_for_hf writes plain safetensors: the strict load is the check, not the metadata."""
    source = small_module(seed=3)
    path = tmp_path / "plain.safetensors"
    save_file(source.state_dict(), str(path), metadata={"format": "pt"})
    model = small_module(seed=4)
    load_pretrained(model, {"architecture": "vader_r18_fpn", "file": str(path)})
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())
    with pytest.raises(StateDictMismatchError, match="different shapes"):
        load_pretrained(small_module(channels=16), {"architecture": "vader_r18_fpn", "file": str(path)})


def test_another_architecture_is_refused(exported):
    with pytest.raises(ArchitectureMismatchError, match="holds weights for vader_r18_fpn, not vader_r50_fpn"):
        load_pretrained(small_module(channels=64),
                        {"architecture": "vader_r50_fpn", "file": str(exported.result.weights)})


def test_key_mismatch_lists_missing_and_unexpected(tmp_path):
    state = small_module().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["0.bias"]
    state["1.weight"] = torch.zeros(3)
    path = export_weights(state, "vader_r18_fpn", tmp_path).weights
    model = small_module()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(StateDictMismatchError) as error:
        load_pretrained(model, {"architecture": "vader_r18_fpn", "file": str(path)})
    message = str(error.value)
    assert "missing from the file (1): 0.bias" in message
    assert "unexpected in the file (1): extra.weight" in message
    assert "1.weight (3,) vs model (8,)" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded


def test_missing_explicit_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors does not exist"):
        load_pretrained(small_module(), {"architecture": "vader_r18_fpn", "file": str(tmp_path / "nope.safetensors")})


def test_weights_folder_is_used_before_the_manifest(exported, tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "vader_r18_fpn.safetensors").write_bytes(exported.data)
    monkeypatch.setenv("VADER_HUB_WEIGHTS_DIR", str(folder))
    model = small_module(seed=3, channels=64)
    assert load_pretrained(model, {"architecture": "vader_r18_fpn", "tag": ""}) == folder / "vader_r18_fpn.safetensors"
    assert torch.equal(model[0].weight, exported.module[0].weight)


def test_no_published_weights_says_how_to_get_them():
    with pytest.raises(WeightsNotFoundError) as error:
        load_pretrained(small_module(), {"architecture": "vader_r101_fpn", "tag": ""})
    message = str(error.value)
    assert "no weights are published" in message
    for remedy in ["python -m vader_hub.train --preset smoke", "--preset paper", "pretrained_cfg_overlay=dict(file=",
                   "VADER_HUB_WEIGHTS_DIR", "VADER_HUB_MANIFEST"]:
        assert remedy in message, remedy


@pytest.mark.parametrize("model, cfg, error", [
    ("not a model", {"architecture": "vader_r18_fpn"}, TypeError),
    (torch.nn.Identity(), {"tag": "x"}, ValueError),
    (torch.nn.Identity(), None, ValueError),
])
def test_bad_arguments_are_refused(model, cfg, error):
    with pytest.raises(error):
        load_pretrained(model, cfg)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.to(torch.int8), "stored as torch.int8"),
    (lambda t: t.bool(), "stored as torch.bool"),
    (lambda t: t.clone().index_fill_(0, torch.tensor([0]), float("nan")), "NaN or inf"),
    (lambda t: t.clone().index_fill_(0, torch.tensor([0]), float("inf")), "NaN or inf"),
])
def test_values_that_would_load_silently_wrong_are_refused_by_name(exported, tmp_path, change, message):
    state = exported.module.state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
    broken = dict(state, **{key: change(state[key])})
    path = export_weights(broken, "vader_r18_fpn", tmp_path / "broken").weights
    model = small_module(seed=11, channels=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(StateDictMismatchError, match=message) as error:
        load_pretrained(model, {"architecture": "vader_r18_fpn", "file": str(path)})
    assert key in str(error.value)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
