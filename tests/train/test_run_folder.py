"""A run writes only into its own folder: another run's folder is refused or, with --overwrite, replaced
whole; a resume writes where it was resumed from; a killed checkpoint write leaves nothing behind for long."""

import dataclasses
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vader_hub.cli.train import main
from vader_hub.train.checkpoint import REQUIRED_KEYS, save_checkpoint

from .test_resume import REPO, environment, trainer_command


def trainer_flags(config, out_dir: Path, *extra: str) -> list[str]:
    """The flags of `python -m vader_hub.train` for `config`, as `main` takes them."""
    return trainer_command(config, out_dir, *extra)[3:]


def snapshot(folder: Path) -> dict[str, str]:
    """The sha256 of every file under `folder`, by relative path."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def logged_steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def one_error_line(capsys) -> str:
    """The one line a refused command printed on stderr."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vader-hub train: error: "), lines
    return lines[0]


@pytest.fixture
def finished_run(tiny_config, tmp_path):
    """A finished 2-step run with an export, in `tmp_path / "ref"`, and its config."""
    config = dataclasses.replace(tiny_config, steps=2, checkpoint_every=1, log_every=1, export=True)
    assert main(trainer_flags(config, tmp_path / "ref")) == 0
    return tmp_path / "ref", config


def test_a_new_run_into_a_run_folder_is_refused_before_any_work(finished_run, capsys):
    run_dir, config = finished_run
    before = snapshot(run_dir)
    started = time.perf_counter()
    assert main(trainer_flags(dataclasses.replace(config, seed=1), run_dir)) == 2
    assert time.perf_counter() - started < 5, "the refusal must come before the data and networks are built"
    message = one_error_line(capsys)
    assert "--resume" in message and "--overwrite" in message and "checkpoint.pt" in message
    assert snapshot(run_dir) == before


def test_overwrite_replaces_the_old_run_and_keeps_the_users_files(finished_run, tmp_path, capsys):
    run_dir, config = finished_run
    (run_dir / "export" / "model.onnx").write_bytes(b"the user's own conversion")
    (run_dir / "notes.txt").write_text("mine")
    before = snapshot(run_dir)
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    assert main(trainer_flags(dataclasses.replace(config, data=str(no_images)), run_dir, "--overwrite")) == 2
    assert snapshot(run_dir) == before, "a new run that cannot start must keep the old one"
    capsys.readouterr()
    new = dataclasses.replace(config, steps=3, seed=1, export=False)
    assert main(trainer_flags(new, run_dir, "--overwrite")) == 0
    assert logged_steps(run_dir) == [1, 2, 3], "the log must hold the new run only"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["config"]["seed"] == 1
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 1
    assert sorted(path.name for path in (run_dir / "export").iterdir()) == ["model.onnx"], \
        "the old run's export must go (this run does not export), the user's file must stay"
    assert (run_dir / "notes.txt").read_text() == "mine"


@pytest.mark.filterwarnings("ignore:resuming with steps")  # the runs continue with more steps on purpose
def test_a_resume_of_a_copied_run_writes_into_the_copy_only(finished_run, tmp_path, capsys):
    run_dir, config = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    original = snapshot(run_dir)
    assert main(["--resume", str(copy), "--steps", "3", "--no-progress"]) == 0
    assert snapshot(run_dir) == original, "the original run folder must not change"
    assert torch.load(copy / "checkpoint.pt", weights_only=True)["step"] == 3
    assert logged_steps(copy) == [1, 2, 3]
    assert json.loads((copy / "export" / "manifest_entry.json").read_text())["provenance"]["steps"] == 3

    elsewhere = tmp_path / "elsewhere"  # an explicit --out still wins, and the resumed copy is left alone
    resumed = snapshot(copy)
    assert main(["--resume", str(copy / "checkpoint.pt"), "--steps", "4", "--out", str(elsewhere),
                 "--no-progress"]) == 0
    assert snapshot(copy) == resumed and snapshot(run_dir) == original
    assert torch.load(elsewhere / "checkpoint.pt", weights_only=True)["step"] == 4


def test_a_resume_into_another_runs_folder_is_refused(finished_run, tmp_path, capsys):
    run_dir, config = finished_run
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    before = snapshot(other)
    assert main(["--resume", str(run_dir), "--steps", "3", "--out", str(other), "--no-progress"]) == 2
    assert "--overwrite" in one_error_line(capsys)
    assert snapshot(other) == before


def minimal_checkpoint(step: int) -> dict[str, object]:
    checkpoint = {key: {} for key in REQUIRED_KEYS}
    checkpoint.update(encoder={"w": torch.full((1000,), float(step))}, step=step, config={"model": "vader_r18_fpn"})
    return checkpoint


KILLED_WRITER = """
import sys, time
from vader_hub.fileio import write_through_temporary
def write(path):
    path.write_bytes(b"x" * 1_000_000)
    print(path, flush=True)
    time.sleep(600)
write_through_temporary(sys.argv[1], write)
"""


def start_writer(path: Path) -> tuple[subprocess.Popen, Path]:
    """A process that is writing checkpoint `path` through a temporary file, and that temporary file."""
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], env=environment(), cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    return writer, Path(writer.stdout.readline().strip())


def test_the_next_save_removes_what_a_killed_write_left_and_nothing_else(tmp_path):
    path = tmp_path / "checkpoint.pt"
    killed, leftover = start_writer(path)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert leftover.is_file() and leftover.name.startswith(".checkpoint.") and leftover.suffix == ".pt"
    writing, in_progress = start_writer(path)  # a live writer's temporary file is not stale
    others = [tmp_path / name for name in (".checkpoint.notes.tmp.pt", ".model.123-abcdef01.tmp.pt", "checkpoint.txt")]
    for other in others:
        other.write_text("not a temporary of this checkpoint")
    try:
        save_checkpoint(minimal_checkpoint(1), path)
        assert not leftover.exists()
        assert in_progress.is_file() and all(other.is_file() for other in others)
    finally:
        writing.kill()
        writing.wait()
    assert torch.load(path, weights_only=True)["step"] == 1
