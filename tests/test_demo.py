"""`vader-hub demo` as the README runs it, and its `--reproduce` run from scratch."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from vader_hub import cli
from vader_hub.demo import EVAL_PHOTOS, REPRODUCE_PHOTOS, prepare_out_dir
from vader_hub.models import default_model_name
from vader_hub.pathlist import read_path_list


def test_the_readme_demo_command_runs_in_a_fresh_empty_folder(tmp_path):
    """Exactly `vader-hub demo`: default arguments, the relative default output folder, offline."""
    env = dict(os.environ, VADER_HUB_OFFLINE="1", VADER_HUB_CACHE=str(tmp_path / "cache"))
    env.pop("VADER_HUB_MANIFEST", None)
    work = tmp_path / "new"
    work.mkdir()
    command = [shutil.which("vader-hub")] if shutil.which("vader-hub") else [sys.executable, "-m", "vader_hub.cli"]
    done = subprocess.run([*command, "demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = work / "demo-out"
    for name in ("pca.png", "correspondences.png", "eval/eval.md", "eval/eval.json", "eval/matches.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "eval" / "eval.json").read_text())
    assert report["settings"]["photos"] == list(EVAL_PHOTOS)
    shipped, random_init = (report["summary"][report["methods"][i]]["synthetic"]["8"] for i in (0, 1))
    assert report["methods"][0] == default_model_name() and "random init" in report["methods"][1]
    assert shipped > random_init + 10
    assert "dense SIFT" in done.stdout and f"using {default_model_name()}" in done.stderr


def test_reproduce_trains_on_other_photos_from_a_relative_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--reproduce", "--steps", "2", "--out", "relative/out"]) == 0
    trained_on = read_path_list(tmp_path / "relative" / "out" / "train" / "data.txt")
    assert sorted(p.name for p in trained_on) == sorted(REPRODUCE_PHOTOS)
    assert not set(REPRODUCE_PHOTOS) & set(EVAL_PHOTOS)
    assert all(p.is_file() for p in trained_on)
    printed = capsys.readouterr().out
    assert "vader_r18_fpn.demo" in printed and "cannot show what the method learns" in printed


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="--out"):
        prepare_out_dir(locked / "demo")


def test_cli_reports_an_unwritable_output_folder_on_stderr(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert cli.main(["demo", "--out", str(not_a_folder / "demo")]) == 2
    assert "pass a writable folder with --out" in capsys.readouterr().err


def test_steps_without_reproduce_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--steps", "3"]) == 2
    assert "--reproduce" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
