"""The pairs file: each kind of ground truth maps points of image A as its closed form says."""
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vader_hub.eval.pairs import Disparity, Flow, Homography, load_pairs

HOMOGRAPHY = np.array([[0.9, 0.1, 4.0], [-0.05, 1.1, 2.0], [1e-4, -2e-4, 1.0]])


@pytest.fixture
def pair_dir(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 6), "gray").save(tmp_path / name)
    np.savetxt(tmp_path / "H_a_b", HOMOGRAPHY)
    disparity = np.arange(48, dtype=np.uint8).reshape(6, 8)  # stored * 2; 0 unknown at (0, 0)
    Image.fromarray(disparity).save(tmp_path / "disp.png")
    flow = np.stack([np.full((6, 8), 1.5), np.arange(48).reshape(6, 8) / 10], axis=-1).astype(np.float32)
    flow[5, 7] = [2e9, 0.0]
    cv2.writeOpticalFlow(str(tmp_path / "flow.flo"), flow)
    return tmp_path


def _write(folder, pairs):
    path = folder / "pairs.json"
    path.write_text(json.dumps(pairs))
    return path


def test_the_three_kinds_map_points_by_their_closed_forms(pair_dir):
    path = _write(pair_dir, {"pairs": [
        {"name": "h", "image_a": "a.png", "image_b": "b.png", "homography": "H_a_b"},
        {"image_a": "a.png", "image_b": "b.png", "disparity": "disp.png", "disparity_scale": 2},
        {"name": "r", "image_a": "a.png", "image_b": "b.png", "disparity": "disp.png", "disparity_scale": 2,
         "disparity_view": "right"},
        {"name": "f", "image_a": "a.png", "image_b": "b.png", "flow": "flow.flo"},
    ]})
    homography, left, right, flow = load_pairs(path)
    assert left.name == "a-b"
    assert [homography.truth.label, left.truth.label, flow.truth.label] == ["homography", "disparity", "flow"]
    points = torch.tensor([[3.0, 2.0], [0.2, 0.1], [6.6, 4.8], [7.0, 5.0], [20.0, 1.0]])

    expected = cv2.perspectiveTransform(points.double().numpy()[None], HOMOGRAPHY)[0]
    np.testing.assert_allclose(homography.truth.targets(points).points.numpy(), expected, rtol=1e-6)

    # Disparity at the nearest pixel (row, column) is (8 * row + column) / 2; 0 (pixel 0, 0) is unknown.
    targets = left.truth.targets(points)
    assert targets.known.tolist() == [True, False, True, True, False]
    np.testing.assert_allclose(targets.points[0].numpy(), [3 - 19 / 2, 2])
    np.testing.assert_allclose(targets.points[2].numpy(), [6.6 - 47 / 2, 4.8])
    np.testing.assert_allclose(right.truth.targets(points).points[0].numpy(), [3 + 19 / 2, 2])

    targets = flow.truth.targets(points)
    assert targets.known.tolist() == [True, True, False, False, False]  # pixel (7, 5) is unknown, (20, 1) outside
    np.testing.assert_allclose(targets.points[0].numpy(), [4.5, 2 + 1.9], rtol=1e-6)


def test_each_kind_of_ground_truth_is_its_own_type(pair_dir):
    path = _write(pair_dir, [
        {"image_a": "a.png", "image_b": "b.png", "homography": "H_a_b"},
        {"image_a": "a.png", "image_b": "b.png", "disparity": "disp.png", "disparity_view": "right"},
        {"image_a": "a.png", "image_b": "b.png", "flow": "flow.flo"},
    ])
    truths = [pair.truth for pair in load_pairs(path)]
    assert [type(truth) for truth in truths] == [Homography, Disparity, Flow] and truths[1].sign == 1
    assert truths[0].matrix.shape == (3, 3) and truths[1].disparity.shape == (6, 8)
    assert truths[2].flow.shape == (6, 8, 2)


@pytest.mark.parametrize(
    "entry, error, message",
    [
        ({"image_a": "a.png", "image_b": "b.png"}, ValueError, "exactly one"),
        ({"image_a": "a.png", "image_b": "b.png", "flow": "flow.flo", "homography": "H_a_b"}, ValueError,
         "exactly one"),
        ({"image_a": "a.png", "image_b": "b.png", "flow": "flow.flo", "colour": 1}, ValueError, "unknown keys"),
        ({"image_a": "a.png", "image_b": "c.png", "flow": "flow.flo"}, FileNotFoundError, "c.png"),
        ({"image_a": "a.png", "image_b": "b.png", "flow": "nope.flo"}, FileNotFoundError, "nope.flo"),
        ({"image_a": "a.png", "image_b": "b.png", "disparity": "disp.png", "disparity_view": "up"}, ValueError, "left"),
        ({"image_a": "big.png", "image_b": "b.png", "flow": "flow.flo"}, ValueError, "pixel for pixel"),
        ({"image_a": "a.png", "image_b": "rotated.jpg", "homography": "H_a_b"}, ValueError, "EXIF orientation 6"),
        ({"image_a": "a.png", "image_b": "notes.png", "homography": "H_a_b"}, ValueError, "not a readable image"),
    ],
)
def test_bad_entries_are_refused(pair_dir, entry, error, message):
    Image.new("RGB", (9, 6)).save(pair_dir / "big.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (8, 6)).save(pair_dir / "rotated.jpg", exif=exif)
    (pair_dir / "notes.png").write_text("not an image")
    with pytest.raises(error, match=message):
        load_pairs(_write(pair_dir, [entry]))


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pairs(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_pairs(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="non-empty list"):
        load_pairs(_write(tmp_path, []))


@pytest.mark.parametrize("orientation", [0, 1, 9])
def test_orientation_tags_that_do_not_rotate_are_accepted(pair_dir, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation  # 1 is upright; 0 and 9 are written by some cameras and ignored when loading
    Image.new("RGB", (8, 6), "gray").save(pair_dir / "tagged.jpg", exif=exif)
    entry = {"image_a": "a.png", "image_b": "tagged.jpg", "homography": "H_a_b"}
    (pair,) = load_pairs(_write(pair_dir, [entry]))
    assert pair.image_b.name == "tagged.jpg"
