"""`vader-hub train` and `python -m vader_hub.train`: one parser, every field a flag, clear errors."""

import argparse
import dataclasses

import pytest

from vader_hub.cli import build_parser
from vader_hub.cli import train as cli
from vader_hub.train import preset
from vader_hub.train.checkpoint import REQUIRED_KEYS, save_checkpoint


def standalone_parser():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser


def option_strings(parser):
    return sorted(s for action in parser._actions for s in action.option_strings)


def test_both_entry_points_have_the_same_options():
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert option_strings(subparsers.choices["train"]) == option_strings(standalone_parser())
    fields = {f.name for f in dataclasses.fields(preset("paper"))}
    assert {"--" + name.replace("_", "-") for name in fields} <= set(option_strings(standalone_parser()))


def test_flags_override_the_preset_with_typed_values():
    args = build_parser().parse_args(["train", "--preset", "smoke", "--data", "photos", "--batch-size", "16",
                                      "--temperature", "0.1", "--no-export", "--grad-clip", "none", "--out", "r"])
    config = cli.config_from_args(args)
    assert config == dataclasses.replace(preset("smoke"), data="photos", batch_size=16, temperature=0.1,
                                         export=False, grad_clip=None, out_dir="r")


def test_resume_starts_from_the_checkpoints_config(tmp_path):
    saved = dataclasses.replace(preset("smoke"), data="photos", steps=12)
    checkpoint = {key: {} for key in REQUIRED_KEYS}
    checkpoint.update(step=6, config=dataclasses.asdict(saved))
    save_checkpoint(checkpoint, tmp_path / "checkpoint.pt")
    args = standalone_parser().parse_args(["--resume", str(tmp_path), "--steps", "20"])
    assert cli.config_from_args(args) == dataclasses.replace(saved, steps=20, out_dir=str(tmp_path))


def test_bad_input_exits_with_code_2_and_a_message(capsys):
    assert cli.main(["--preset", "smoke"]) == 2
    assert "--data" in capsys.readouterr().err
    assert cli.main(["--preset", "smoke", "--data", "x", "--steps", "ten"]) == 2
    assert "'steps' expects int" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
