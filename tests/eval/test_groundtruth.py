"""Ground-truth readers on small files written here, most by OpenCV as an independent writer."""
import struct

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vader_hub.eval.groundtruth import read_disparity, read_flow, read_homography, read_pfm


def test_homography_text_file(tmp_path):
    matrix = np.array([[1.1, 0.02, 5.0], [-0.01, 0.95, -3.0], [1e-4, 2e-5, 1.0]])
    path = tmp_path / "H_1_2"
    path.write_text("\n".join("   ".join(f"{v:.10e}" for v in row) for row in matrix) + "\n")
    assert torch.allclose(read_homography(path), torch.from_numpy(matrix), atol=1e-12)


@pytest.mark.parametrize(
    "content, message",
    [("1 0 0\n0 1 0\n", "3 rows of 3"), ("1 0 0\n0 1 0\n0 0 x\n", "numbers"), ("1 0 0\n0 1 0\n0 0 0\n", "invertible")],
)
def test_bad_homography_files_are_refused(tmp_path, content, message):
    path = tmp_path / "H"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_homography(path)


def test_sixteen_bit_png_disparity_with_scale_and_invalid(tmp_path):
    stored = np.array([[0, 256, 512], [1024, 0, 65535]], dtype=np.uint16)  # KITTI: disparity * 256, 0 unknown
    cv2.imwrite(str(tmp_path / "disp.png"), stored)
    disparity = read_disparity(tmp_path / "disp.png", scale=256, invalid=0).numpy()
    expected = np.array([[np.nan, 1.0, 2.0], [4.0, np.nan, 65535 / 256]])
    np.testing.assert_allclose(disparity, expected, equal_nan=True)


def test_eight_bit_png_disparity_middlebury_2003(tmp_path):
    stored = np.array([[0, 4, 8], [200, 12, 0]], dtype=np.uint8)  # disparity * 4, 0 unknown
    Image.fromarray(stored).save(tmp_path / "disp2.png")
    disparity = read_disparity(tmp_path / "disp2.png", scale=4).numpy()
    np.testing.assert_allclose(disparity, [[np.nan, 1, 2], [50, 3, np.nan]], equal_nan=True)


def test_pfm_disparity_written_by_opencv(tmp_path):
    stored = np.array([[np.inf, 1.5, 2.0, 3.25], [4.0, 0.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]], dtype=np.float32)
    assert cv2.imwrite(str(tmp_path / "disp0.pfm"), stored)
    np.testing.assert_array_equal(read_pfm(tmp_path / "disp0.pfm"), stored)  # top row first
    disparity = read_disparity(tmp_path / "disp0.pfm", invalid=None).numpy()
    expected = stored.copy()
    expected[0, 0] = np.nan
    np.testing.assert_array_equal(disparity, expected)


def test_big_endian_colour_pfm(tmp_path):
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    body = image[::-1].astype(">f4").tobytes()  # rows bottom to top
    (tmp_path / "c.pfm").write_bytes(b"PF\n3 2\n1.0\n" + body)
    np.testing.assert_array_equal(read_pfm(tmp_path / "c.pfm"), image)


def test_npy_disparity(tmp_path):
    np.save(tmp_path / "d.npy", np.array([[np.nan, 2.0], [-1.0, 4.0]], dtype=np.float32))
    disparity = read_disparity(tmp_path / "d.npy", invalid=-1).numpy()
    np.testing.assert_array_equal(disparity, [[np.nan, 2.0], [np.nan, 4.0]])


def test_flo_written_by_opencv_with_unknown_values(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    flow[2, 3] = [1e10, 0.0]  # Middlebury's unknown flow
    assert cv2.writeOpticalFlow(str(tmp_path / "flow10.flo"), flow)
    result = read_flow(tmp_path / "flow10.flo").numpy()
    assert np.isnan(result[2, 3]).all()
    known = np.ones((5, 7), dtype=bool)
    known[2, 3] = False
    np.testing.assert_array_equal(result[known], flow[known])


def test_npy_flow(tmp_path):
    flow = np.zeros((3, 4, 2), dtype=np.float32)
    flow[..., 0], flow[1, 2] = 1.5, [np.inf, 0.0]
    np.save(tmp_path / "f.npy", flow)
    result = read_flow(tmp_path / "f.npy").numpy()
    assert np.isnan(result[1, 2]).all() and (result[0, :, 0] == 1.5).all()


def test_bad_dense_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_flow(tmp_path / "missing.flo")
    (tmp_path / "bad.flo").write_bytes(struct.pack("<f", 1.0) + b"\0" * 8)
    with pytest.raises(ValueError, match="magic"):
        read_flow(tmp_path / "bad.flo")
    (tmp_path / "short.flo").write_bytes(struct.pack("<fii", 202021.25, 4, 4) + b"\0" * 16)
    with pytest.raises(ValueError, match="bytes"):
        read_flow(tmp_path / "short.flo")
    np.save(tmp_path / "three.npy", np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        read_flow(tmp_path / "three.npy")
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="one channel"):
        read_disparity(tmp_path / "rgb.png")
    (tmp_path / "d.txt").write_text("1")
    with pytest.raises(ValueError, match=".png, .pfm or .npy"):
        read_disparity(tmp_path / "d.txt")
    with pytest.raises(ValueError, match="positive"):
        read_disparity(tmp_path / "rgb.png", scale=0)
