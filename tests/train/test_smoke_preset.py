"""The README's smoke-training command works as written: on six of the bundled photos, and on its own data path."""

import json
import shlex
import shutil
from pathlib import Path

import torch

import vader_hub
from vader_hub.cli.train import main
from vader_hub.train.config import preset
from vader_hub.train.data import list_images

ASSETS = Path(vader_hub.__file__).parent / "assets"
REPOSITORY = Path(__file__).resolve().parents[2]


def readme_smoke_arguments() -> list[str]:
    """The arguments of the README's `python -m vader_hub.train --preset smoke ...` line."""
    for line in (REPOSITORY / "README.md").read_text().splitlines():
        if line.startswith("python -m vader_hub.train --preset smoke"):
            return shlex.split(line, comments=True)[3:]
    raise AssertionError("the README shows no smoke-training command")


def test_the_readme_smoke_command_trains_on_a_folder_of_six_bundled_photos(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(ASSETS.glob("*.jpg"))[:6]:
        shutil.copy(path, photos)
    out = tmp_path / "runs" / "smoke"
    # Later flags win in argparse: only the data, the run folder and the length of the run change.
    code = main([*readme_smoke_arguments(), "--data", str(photos), "--out", str(out), "--steps", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert len((out / "data.txt").read_text().splitlines()) == 6
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    assert (out / "export" / "model.safetensors").is_file()


def test_the_readme_smoke_command_names_a_folder_of_a_fresh_checkout_that_holds_a_batch():
    arguments = readme_smoke_arguments()
    images = list_images(REPOSITORY / arguments[arguments.index("--data") + 1])
    assert len(images.paths) >= preset("smoke").batch_size and not images.skipped
