"""The report: means over images, the Markdown and JSON tables, and the match picture."""
import json

import numpy as np
import pytest
import torch

from vader_hub.eval.cases import Case
from vader_hub.eval.report import CaseResult, EvalReport, MatchExample, match_picture, to_markdown, write_report

THRESHOLDS = (2, 4, 8)


def _result(case, kind, method, values, valid=90):
    pck = dict(zip(THRESHOLDS, values, strict=True))
    return CaseResult(case, kind, method, pck, [pck], queries=100, valid=valid, seconds=0.1)


def _example():
    image = torch.zeros(3, 20, 30)
    queries = torch.tensor([[4.0, 4.0], [12.0, 4.0], [20.0, 12.0]])
    truth = torch.tensor([[5.0, 5.0], [13.0, 5.0], [0.0, 0.0]])
    case = Case("photo.png", "synthetic", image, image, queries, truth, torch.tensor([True, True, False]))
    predictions = {"good": truth.clone(), "bad": truth + 15}
    return MatchExample(case=case, predictions=predictions)


def _pixels(part, colour):
    """How many pixels of an RGB array are clearly green or clearly red."""
    bright, dark = (1, 0) if colour == "green" else (0, 1)
    return int(((part[..., bright] > 150) & (part[..., dark] < 100)).sum())


@pytest.fixture
def report():
    results = [
        _result("a.jpg", "synthetic", "trained", (10, 30, 50)),
        _result("a.jpg", "synthetic", "random", (1, 2, 3)),
        _result("b.jpg", "synthetic", "trained", (20, 40, 70), valid=40),
        _result("b.jpg", "synthetic", "random", (3, 4, 5)),
        _result("teddy", "disparity", "trained", (5, 6, 7)),
        _result("teddy", "disparity", "random", (0, 0, 1)),
    ]
    settings = dict(seed=0, long_side=384, grid_step=8, thresholds=list(THRESHOLDS))
    return EvalReport(["trained", "random"], THRESHOLDS, settings, results, _example())


def test_means_are_over_images_and_kept_apart_for_real_pairs(report):
    assert report.mean("trained") == {2: 15.0, 4: 35.0, 8: 60.0}  # b.jpg weighs as much as a.jpg
    assert report.mean("random", "real") == {2: 0.0, 4: 0.0, 8: 1.0}
    assert report.mean("unknown") is None


def test_markdown_has_the_summary_and_per_image_rows(report):
    text = to_markdown(report)
    columns = [f"{group} PCK@{t}" for group in ("synthetic", "real") for t in THRESHOLDS]
    assert "| method | " + " | ".join(columns) + " |" in text
    assert "| trained | 15.0 | 35.0 | 60.0 | 5.0 | 6.0 | 7.0 |" in text
    assert "| b.jpg | synthetic | 40/100 | 20.0 / 40.0 / 70.0 | 3.0 / 4.0 / 5.0 |" in text


def test_json_round_trips_with_string_thresholds(report):
    data = json.loads(json.dumps(report.to_dict()))
    assert data["summary"]["trained"]["synthetic"] == {"2": 15.0, "4": 35.0, "8": 60.0}
    assert data["results"][2]["pck"] == {"2": 20.0, "4": 40.0, "8": 70.0} and data["results"][2]["valid"] == 40
    assert data["settings"]["seed"] == 0


def test_match_picture_draws_correct_green_and_wrong_red():
    picture = np.asarray(match_picture(_example(), threshold=8))
    assert picture.shape == (2 * (20 + 16), 60, 3)
    good_row, bad_row = picture[16:36], picture[52:72]
    assert _pixels(good_row, "green") > 0 and _pixels(good_row, "red") == 0
    assert _pixels(bad_row, "red") > 0 and _pixels(bad_row, "green") == 0


def test_write_report_writes_three_files_and_names_an_unwritable_folder(report, tmp_path):
    files = write_report(report, tmp_path / "out")
    assert files.markdown.read_text() == to_markdown(report)
    assert json.loads(files.json.read_text())["methods"] == ["trained", "random"]
    assert files.picture.stat().st_size > 0
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match="cannot write the evaluation report into .*file"):
        write_report(report, tmp_path / "file" / "sub")
