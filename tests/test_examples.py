"""Every script in examples/ runs end to end (random vader_r18_fpn weights, tiny settings)."""
import runpy
import sys
from pathlib import Path

import pytest
from PIL import Image

from vader_hub.models import default_model_name

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMOKE = ["--model", "vader_r18_fpn", "--random-weights"]


def run_example(name: str, argv, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [name, *map(str, argv)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert exit_info.value.code == 0


def test_every_example_is_tested():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(
        ["dense_features.py", "correspondences.py", "linear_probe.py"]
    )


def test_dense_features(tmp_path, monkeypatch, capsys):
    out = tmp_path / "pca.png"
    run_example("dense_features.py", [*SMOKE, "--short-side", "64", "--out", out], monkeypatch)
    assert "features (128, 16, 16)" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.size == (128, 64)


def test_correspondences(tmp_path, monkeypatch, capsys):
    out = tmp_path / "match.png"
    image = tmp_path / "small.png"
    with Image.open(EXAMPLES.parent / "vader_hub" / "assets" / "chelsea.jpg") as photo:
        photo.resize((96, 64)).save(image)
    run_example("correspondences.py", [*SMOKE, image, "--zoom", "1.25", "--out", out], monkeypatch)
    printed = capsys.readouterr().out
    assert "mutual nearest-neighbour matches" in printed and "of the true point" in printed
    with Image.open(out) as picture:
        assert picture.size == (96 + 95, 65)  # beside A, its central 76x52 crop enlarged 1.25x


def test_linear_probe(tmp_path, monkeypatch, capsys):
    out = tmp_path / "probe.png"
    argv = [*SMOKE, "--train-images", "3", "--test-images", "2", "--size", "48", "--steps", "15", "--out", out]
    run_example("linear_probe.py", argv, monkeypatch)
    printed = capsys.readouterr().out
    assert "train: pixel accuracy" in printed and "test: pixel accuracy" in printed
    with Image.open(out) as picture:
        assert picture.size == (3 * 48, 48)


@pytest.mark.parametrize("name, argv, output", [
    ("dense_features.py", [], "dense_features_pca.png"),
    ("correspondences.py", [], "correspondences.png"),
    ("linear_probe.py", ["--train-images", "3", "--test-images", "2", "--size", "48", "--steps", "15"],
     "linear_probe.png"),
])
def test_examples_without_model_options_use_the_default_pretrained_model(name, argv, output, tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.chdir(tmp_path)
    run_example(name, argv, monkeypatch)
    assert (tmp_path / output).stat().st_size > 0
    assert f"using {default_model_name()}" in capsys.readouterr().err
