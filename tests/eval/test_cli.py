"""``vader-hub eval`` and ``vader-hub eval split`` through the parser, as the top-level CLI wires them."""
import argparse
import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from vader_hub.cli import eval as cli
from vader_hub.eval.split import list_photos, load_split_rules, split_photos
from vader_hub.weights.export import export_weights

NAMES = [
    "sk_a.png", "sk_b.png", "sk_c.png", "cv_pair1.png", "cv_pair2.png", "cv_d.png", "cv_e.png",
    "mate_F.jpg", "mate_G.jpg", "vid_one_0000.jpg", "vid_one_0010.jpg", "vid_two_0000.jpg", "vid_two_0010.jpg",
]


def run(*argv):
    parser = argparse.ArgumentParser(prog="vader-hub")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name in NAMES:
        Image.fromarray((rng.random((36, 48, 3)) * 255).astype(np.uint8)).save(folder / name)
    return folder


def test_split_writes_the_three_lists(photos, tmp_path, capsys):
    assert run("eval", "split", str(photos), "--out", str(tmp_path / "lists")) == 0
    expected = split_photos(list_photos(photos))
    for name in ("train", "eval", "excluded"):
        lines = (tmp_path / "lists" / f"{name}.txt").read_text().splitlines()
        assert lines == [str(p.resolve()) for p in getattr(expected, name)]
    assert "13 photos:" in capsys.readouterr().out


def test_eval_of_a_weights_file_against_the_baselines(photos, tmp_path, capsys):
    torch.manual_seed(0)
    weights = export_weights(timm.create_model("vader_r18_fpn").state_dict(), "vader_r18_fpn", tmp_path / "w").weights
    out = tmp_path / "report"
    code = run("eval", "--photos", str(photos), "--weights", str(weights), "--random-seeds", "0",
               "--long-side", "48", "--out", str(out))
    assert code == 0
    data = json.loads((out / "eval.json").read_text())
    assert data["methods"] == ["model.safetensors", "vader_r18_fpn random init (1 seeds)",
                               "dense SIFT (16 px, upright)", "9x9 normalised patches"]
    assert data["settings"]["photos"] == [p.name for p in split_photos(list_photos(photos)).eval]
    assert data["settings"]["long_side"] == 48
    assert (out / "matches.png").is_file() and "| model.safetensors |" in (out / "eval.md").read_text()
    assert "| 9x9 normalised patches |" in capsys.readouterr().out


def test_eval_reads_a_list_of_photos(photos, tmp_path):
    (tmp_path / "some.txt").write_text(f"# two photos\n{photos / 'sk_a.png'}\n\n{photos / 'cv_d.png'}\n")
    assert run("eval", "--photos", str(tmp_path / "some.txt"), "--random-seeds", "--no-sift", "--long-side", "48",
               "--out", str(tmp_path / "out")) == 0
    data = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert data["settings"]["photos"] == ["sk_a.png", "cv_d.png"] and data["methods"] == ["9x9 normalised patches"]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "nothing to evaluate"),
        (["--photos", "missing_dir"], "no such file"),
        (["--photos", "LIST"], "missing file"),
        (["--photos", "PHOTO", "--random-seeds", "--no-sift", "--no-patches"], "no methods"),
        (["--photos", "PHOTO", "--weights", "missing.safetensors"], "does not exist"),
    ],
)
def test_eval_errors_are_reported_with_exit_code_2(photos, tmp_path, capsys, argv, message):
    (tmp_path / "list.txt").write_text("gone.png\n")
    argv = [str(tmp_path / "list.txt") if a == "LIST" else str(photos / "sk_a.png") if a == "PHOTO" else a
            for a in argv]
    assert run("eval", *argv, "--out", str(tmp_path / "out")) == 2
    assert message in capsys.readouterr().err


def test_split_of_a_missing_folder_is_an_error(tmp_path, capsys):
    assert run("eval", "split", str(tmp_path / "none"), "--out", str(tmp_path)) == 2
    assert "does not exist" in capsys.readouterr().err


def test_split_rules_set_the_sources_of_split_and_of_a_photos_directory(photos, tmp_path, capsys):
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps({"sources": ["sk", "cv", "mate", "vid"], "companions": {"cv_d": "cv_e"}}))
    rules = load_split_rules(rules_file)
    lists = tmp_path / "lists"
    assert run("eval", "split", str(photos), "--split-rules", str(rules_file), "--out", str(lists)) == 0
    expected = split_photos(list_photos(photos), rules=rules)
    for name in ("train", "eval", "excluded"):
        lines = (lists / f"{name}.txt").read_text().splitlines()
        assert lines == [str(p.resolve()) for p in getattr(expected, name)]
    printed = capsys.readouterr().out
    assert "  eval sk: " in printed and "  eval vid: " in printed and "  eval other: " not in printed
    assert run("eval", "--photos", str(photos), "--split-rules", str(rules_file), "--random-seeds", "--no-sift",
               "--long-side", "48", "--out", str(tmp_path / "out")) == 0
    data = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert data["settings"]["photos"] == [p.name for p in expected.eval]


def test_a_bad_split_rules_file_is_an_error(photos, tmp_path, capsys):
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps({"sources": ["SK"]}))
    assert run("eval", "split", str(photos), "--split-rules", str(rules_file), "--out", str(tmp_path)) == 2
    assert "lower-case" in capsys.readouterr().err
    assert run("eval", "--photos", str(photos), "--split-rules", str(tmp_path / "none.json")) == 2
    assert "split rules file" in capsys.readouterr().err
