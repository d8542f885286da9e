"""The training loop end to end: the smoke preset learns, outputs are complete, a bad loss stops safely."""

import dataclasses
import json
import shutil
import statistics

import pytest
import timm
import torch
from safetensors.torch import load_file

from vader_hub.train import NonFiniteLossError, preset, train
from vader_hub.train.checkpoint import REQUIRED_KEYS


def test_smoke_preset_loss_falls_and_run_folder_is_complete(photo_dir, tmp_path):
    config = dataclasses.replace(preset("smoke"), data=str(photo_dir), out_dir=str(tmp_path / "smoke"))
    result = train(config, show_progress=False)
    assert len(result.losses) == config.steps
    first, last = statistics.mean(result.losses[:5]), statistics.mean(result.losses[-5:])
    assert last < first - 0.3, f"loss did not fall: first steps {first:.3f}, last steps {last:.3f}"

    saved = json.loads((tmp_path / "smoke" / "config.json").read_text())
    assert saved == dataclasses.asdict(config)
    logged = [json.loads(line) for line in (tmp_path / "smoke" / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in logged] == list(range(1, config.steps + 1))
    assert {"loss", "lr", "positive_similarity", "negative_similarity", "images_per_second",
            "data_wait_fraction"} <= set(logged[0])

    checkpoint = torch.load(result.checkpoint, weights_only=True)
    assert set(REQUIRED_KEYS) <= set(checkpoint) and checkpoint["step"] == config.steps
    assert checkpoint["config"]["model"] == "vader_r18_fpn"
    model = timm.create_model("vader_r18_fpn")
    assert list(checkpoint["encoder"]) == list(model.state_dict())

    exported = load_file(result.export.weights)
    assert set(exported) == set(checkpoint["encoder"])
    assert all(torch.equal(exported[name], tensor) for name, tensor in checkpoint["encoder"].items())
    model.load_state_dict(exported, strict=True)


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tiny_config):
    config = dataclasses.replace(tiny_config, base_lr=1e12, steps=20, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train(config, show_progress=False)
    checkpoint = torch.load(f"{config.out_dir}/checkpoint.pt", weights_only=True)
    assert 1 <= checkpoint["step"] < config.steps
    assert all(torch.isfinite(t).all() for t in checkpoint["encoder"].values() if t.is_floating_point())
    logged = [json.loads(line)["loss"] for line in open(f"{config.out_dir}/log.jsonl")]
    assert len(logged) == checkpoint["step"]


def test_resume_refuses_a_config_that_changes_the_maths_or_other_data(tiny_config, tmp_path):
    train(dataclasses.replace(tiny_config, steps=2), show_progress=False)
    with pytest.raises(ValueError, match="temperature"):
        train(dataclasses.replace(tiny_config, steps=4, temperature=0.2), resume=tiny_config.out_dir)
    fewer = tmp_path / "fewer"
    shutil.copytree(tiny_config.data, fewer)
    next(fewer.rglob("*.jpg")).unlink()
    with pytest.raises(ValueError, match="not the ones the checkpoint was trained on"):
        train(dataclasses.replace(tiny_config, steps=2, data=str(fewer)), resume=tiny_config.out_dir)
    with pytest.raises(ValueError, match="below the checkpoint's step 2"):
        train(dataclasses.replace(tiny_config, steps=1), resume=tiny_config.out_dir)


def test_missing_data_is_a_clear_error(tiny_config):
    with pytest.raises(ValueError, match="--data"):
        train(dataclasses.replace(tiny_config, data=None))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(dataclasses.replace(tiny_config, data="/nonexistent/photos"))


def test_the_log_says_what_init_loaded_into_the_trunk(tiny_config, tmp_path, capsys):
    torch.save(timm.create_model("resnet18", num_classes=1000).state_dict(), tmp_path / "resnet18.pth")
    train(dataclasses.replace(tiny_config, steps=1, init=str(tmp_path / "resnet18.pth")), show_progress=False)
    printed = capsys.readouterr().out
    assert f"trunk initialised from {tmp_path / 'resnet18.pth'}" in printed
    assert "layout: torchvision/timm" in printed and "dropped 2 non-trunk tensors" in printed
