"""The config: paper defaults, presets, typed overrides from strings, clear errors."""

import dataclasses

import pytest

from vader_hub.train.config import PRESETS, TrainConfig, apply_overrides, config_from_dict, parse_field, preset


def test_defaults_are_the_paper_recipe():
    config = TrainConfig()
    assert (config.model, config.image_size, config.batch_size) == ("vader_r50_fpn", 224, 256)
    assert (config.base_lr, config.sgd_momentum, config.weight_decay) == (0.03, 0.9, 1e-4)
    assert (config.temperature, config.queue_size, config.momentum) == (0.07, 65536, 0.999)
    assert (config.min_overlap_cells, config.pairs_per_image) == (32, 32)
    assert (config.crop_scale_min, config.brightness, config.hue, config.greyscale_prob) == (0.2, 0.4, 0.1, 0.2)
    assert config.learning_rate == pytest.approx(0.03)
    assert dataclasses.replace(config, batch_size=512).learning_rate == pytest.approx(0.06)
    assert preset("paper") == config
    assert config.source_side == 256 and TrainConfig(image_size=128).source_side == 146
    assert TrainConfig(source_short_side=300).source_side == 300


def test_smoke_preset_is_small():
    smoke = preset("smoke")
    assert smoke.model == "vader_r18_fpn" and smoke.image_size <= 64 and smoke.steps <= 50
    assert set(PRESETS) == {"paper", "smoke"}
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")


def test_overrides_are_parsed_to_each_field_type():
    config = apply_overrides(TrainConfig(), {"steps": "500", "temperature": "0.2", "compile": "yes",
                                             "grad_clip": "none", "init": "a.pt", "num_workers": "3"})
    assert (config.steps, config.temperature, config.compile) == (500, 0.2, True)
    assert (config.grad_clip, config.init, config.num_workers) == (None, "a.pt", 3)
    assert parse_field("grad_clip", "1.5") == 1.5


@pytest.mark.parametrize("overrides, message", [
    ({"stepz": "5"}, "unknown config field 'stepz'"),
    ({"steps": "many"}, "'steps' expects int"),
    ({"compile": "maybe"}, "'compile' expects bool"),
    ({"steps": "0"}, "steps must be a positive integer"),
    ({"batch_size": "48"}, "multiple of bn_group_size"),
    ({"pairs_per_image": "64"}, "cannot exceed min_overlap_cells"),
    ({"amp": "int8"}, "amp must be one of"),
    ({"flip_prob": "1.5"}, r"flip_prob must be in \[0, 1\]"),
    ({"image_size": "16"}, "at least 32"),
    ({"temperature": "inf"}, "temperature must be positive and finite"),
    ({"noise_std_max": "-0.1"}, "noise_std_max must be a finite number >= 0"),
    ({"blur_sigma_min": "3.0"}, "blur_sigma_min <= blur_sigma_max"),
    ({"hue": "5"}, r"hue must be in \[0, 0.5\]"),
    ({"weights_tag": "../x"}, "weights_tag '../x' is not a valid tag"),
])
def test_bad_values_are_refused_with_the_field_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(TrainConfig(), overrides)


def test_a_config_survives_asdict_and_back():
    config = apply_overrides(preset("smoke"), {"data": "x/", "grad_clip": "2.0"})
    assert config_from_dict(dataclasses.asdict(config)) == config
    with pytest.raises(ValueError, match="does not know"):
        config_from_dict({**dataclasses.asdict(config), "colour": "red"})
