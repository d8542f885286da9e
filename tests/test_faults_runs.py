"""Bad files and bad places given to the commands end in one error line and exit 2, never a traceback;
nothing is written, and a hostile file's code never runs. An image too large to use is refused from its
header, before it is decoded."""
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageFile

from vader_hub.cli import main
from vader_hub.features.inputs import MAX_PIXELS, load_image
from vader_hub.train.checkpoint import REQUIRED_KEYS, save_checkpoint


def one_error_line(capsys, command: str) -> str:
    """The single line a refused ``vader-hub COMMAND`` printed on stderr (and nothing on stdout)."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"vader-hub {command}: error: "), captured.err
    assert captured.out == ""
    return lines[0]


class RunsCode:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def bad_checkpoints(folder: Path) -> dict[str, Path]:
    """Checkpoint files that are not checkpoints: empty, truncated, garbage, and two that would run code."""
    whole = folder / "whole.pt"
    save_checkpoint({**{key: {} for key in REQUIRED_KEYS}, "encoder": {"w": torch.zeros(10_000)}, "step": 1}, whole)
    files = {name: folder / f"{name}.pt" for name in ("empty", "truncated", "garbage", "hostile", "hostile_pickle")}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    files["garbage"].write_bytes(bytes(range(256)) * 16)
    torch.save({"encoder": RunsCode(folder / "ran"), "step": 1}, files["hostile"])
    files["hostile_pickle"].write_bytes(pickle.dumps(RunsCode(folder / "ran")))
    return files


def test_resume_from_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys, recwarn):
    for name, path in bad_checkpoints(tmp_path).items():
        assert main(["train", "--resume", str(path), "--no-progress"]) == 2, name
        assert str(path) in one_error_line(capsys, "train"), name
    assert not (tmp_path / "ran").exists(), "a hostile checkpoint's code must never run"
    assert [str(warning.message) for warning in recwarn] == [], "warnings would add lines to the one error line"


def test_the_trainer_refuses_a_model_that_is_not_a_vader_architecture(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "run"
    photos.mkdir()
    for index in range(8):  # a smoke batch of real images: the refusal must not depend on the data
        Image.effect_mandelbrot((128, 96), (-2 + index / 8, -1, 1, 1), 64).convert("RGB").save(photos / f"{index}.png")
    assert main(["train", "--preset", "smoke", "--data", str(photos), "--model", "resnet50",
                 "--out", str(out), "--no-progress"]) == 2
    message = one_error_line(capsys, "train")
    assert "resnet50" in message and "vader_r18_fpn" in message
    assert not out.exists()


def test_a_run_on_one_image_has_no_negatives_and_is_refused_before_any_work(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "run"
    photos.mkdir()
    Image.effect_mandelbrot((128, 96), (-2, -1, 1, 1), 64).convert("RGB").save(photos / "only.png")
    assert main(["train", "--preset", "smoke", "--data", str(photos), "--batch-size", "1", "--bn-group-size", "1",
                 "--steps", "2", "--out", str(out), "--no-progress"]) == 2
    assert "the loss would have no negatives" in one_error_line(capsys, "train")
    assert not (out / "checkpoint.pt").exists() and not (out / "export").exists()


def test_extract_into_a_file_is_refused_and_the_file_kept(tmp_path, capsys):
    photo, target = tmp_path / "photo.png", tmp_path / "results"
    Image.new("RGB", (64, 48), (90, 120, 30)).save(photo)
    target.write_bytes(b"the user's file")
    assert main(["extract", str(photo), "--out", str(target)]) == 2
    assert "is a file" in one_error_line(capsys, "extract")
    assert target.read_bytes() == b"the user's file"
    assert main(["extract", str(photo), "--out", str(target / "below")]) == 2
    assert "cannot create the --out folder" in one_error_line(capsys, "extract")


def in_read_only_folder(folder: Path, *command: str) -> subprocess.CompletedProcess:
    """Run ``command`` where ``folder`` is a read-only mount (a private mount namespace: nothing else sees it).

    A read-only filesystem refuses writes even to root, so this works as any user that may create
    namespaces; elsewhere the test is skipped.
    """
    script = f'mount -t tmpfs -o ro tmpfs "{folder}" && exec "$@"'
    probe = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only folder here (unshare: {probe.stderr.decode().strip()})")
    return subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", *command],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a read-only mount")
def test_extract_into_a_folder_that_cannot_be_written_is_refused(tmp_path):
    photo, locked = tmp_path / "photo.png", tmp_path / "locked"
    Image.new("RGB", (64, 48)).save(photo)
    locked.mkdir()
    for out, reason in ((locked, "permission denied"), (locked / "below", "nor create it in")):
        result = in_read_only_folder(locked, sys.executable, "-m", "vader_hub.cli", "extract", str(photo),
                                     "--out", str(out))
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("vader-hub extract: error: ") and reason in lines[0]


def test_convert_import_of_an_empty_or_broken_file_is_one_line(tmp_path, capsys):
    empty, broken = tmp_path / "empty.pth", tmp_path / "broken.safetensors"
    empty.write_bytes(b"")
    broken.write_bytes((120).to_bytes(8, "little") + b'{"trunk.conv1.weight": {"dtype": "F32", ')
    out = tmp_path / "trunk.safetensors"
    for path, reason in ((empty, "complete torch.save"), (broken, "damaged safetensors")):
        assert main(["convert", "import", str(path), "--model", "vader_r18_fpn", "--out", str(out)]) == 2
        assert reason in one_error_line(capsys, "convert")
    assert not out.exists()


@pytest.fixture
def huge_png(tmp_path) -> Path:
    """A 10000x10000 one-bit PNG of about 25 KB that decodes to 100 megapixels (gigabytes as float RGB)."""
    path = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000), 1).save(path, optimize=True)
    assert path.stat().st_size < 100_000
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Make decoding any image file fail the test: refusals must come from the header alone."""
    def decode(self):
        raise AssertionError(f"{self.filename} was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the test opens it itself
def test_an_image_over_max_pixels_is_refused_from_its_header(huge_png, no_decoding):
    with pytest.raises(ValueError, match=r"from its header\) is 10000x10000 = 100.0 megapixels"):
        load_image(huge_png, max_pixels=MAX_PIXELS)
    with pytest.raises(ValueError, match="over the limit"):
        load_image(Image.open(huge_png), max_pixels=MAX_PIXELS)


def test_extract_refuses_a_huge_image_without_decoding_it(huge_png, no_decoding, tmp_path, capsys):
    out = tmp_path / "features"
    assert main(["extract", str(huge_png), "--out", str(out)]) == 2
    errors = capsys.readouterr().err
    assert "from its header" in errors and "was decoded" not in errors and "DecompressionBomb" not in errors
    assert not out.exists()
