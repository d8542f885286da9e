"""A shortened `vader-hub demo`: every output is written, the weights load verified, the held-out photo is unseen."""
import hashlib
import json
import os

import pytest

from vader_hub import cli
from vader_hub.demo import HELD_OUT_PHOTO, prepare_out_dir, run_demo


def test_short_demo_writes_every_output_and_never_trains_on_the_evaluated_photo(tmp_path):
    result = run_demo(tmp_path / "out", steps=2, eval_long_side=96)
    for path in (result.weights, result.manifest, result.pca_picture, result.correspondence_picture,
                 result.eval_markdown):
        assert path.is_file() and path.stat().st_size > 0, path
    entry = json.loads(result.manifest.read_text())["entries"][0]
    assert entry["sha256"] == hashlib.sha256(result.weights.read_bytes()).hexdigest()
    trained_on = (tmp_path / "out" / "train" / "data.txt").read_text().split()
    assert len(trained_on) == 5 and not any(path.endswith(HELD_OUT_PHOTO) for path in trained_on)
    evaluated = json.loads((tmp_path / "out" / "eval" / "eval.json").read_text())
    assert evaluated["settings"]["photos"] == [HELD_OUT_PHOTO]
    assert "random init" in result.eval_table and "trained" in result.eval_table


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="--out"):
        prepare_out_dir(locked / "demo")


def test_cli_reports_an_unwritable_output_folder(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert cli.main(["demo", "--out", str(not_a_folder / "demo")]) == 2
    assert "pass a writable folder with --out" in capsys.readouterr().out
