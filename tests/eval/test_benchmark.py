"""The whole benchmark on cases with known answers: photos that encode their own coordinates."""
import math
from statistics import fmean

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vader_hub.eval import Method, WarpRanges, evaluate, load_pairs, patch_method, random_init_method

NO_PHOTOMETRIC = WarpRanges(brightness=0.0, contrast=(1.0, 1.0), gamma=(1.0, 1.0), channel_gain=0.0, noise_std=0.0)
IDENTITY = WarpRanges(rotation_deg=0.0, scale=(1.0, 1.0), translation=0.0, perspective=0.0, brightness=0.0,
                      contrast=(1.0, 1.0), gamma=(1.0, 1.0), channel_gain=0.0, noise_std=0.0)
WIDTH, HEIGHT = 128, 96


def coordinate_photo(path):
    """Red = x / (W - 1), green = y / (H - 1), blue = 1: every pixel names its own position."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.stack([xs / (WIDTH - 1), ys / (HEIGHT - 1), np.ones_like(xs, dtype=float)], axis=-1)
    Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
    return image.astype(np.float32)


def read_coordinates(images):
    """A describer that reads the encoded position at each cell's pixel (Fourier features; black -> zero)."""
    maps = []
    for image in images:
        cells = image[:, ::4, ::4]  # (3, h, w): the pixels the cells are centred on
        blue = cells[2].clamp_min(1e-6)
        x, y = cells[0] / blue * (WIDTH - 1), cells[1] / blue * (HEIGHT - 1)  # undo blends with black borders
        parts = []
        for octave in range(5):
            frequency = 2 * math.pi * 2**octave / (4 * WIDTH)
            parts += [torch.cos(frequency * x), torch.sin(frequency * x)]
            parts += [torch.cos(frequency * y), torch.sin(frequency * y)]
        maps.append(torch.stack(parts) * (cells[2] > 0.5))  # (20, h, w)
    return maps


def shuffled_second_map(images):
    first, second = read_coordinates(images)
    order = torch.randperm(second[0].numel(), generator=torch.Generator().manual_seed(0))
    return [first, second.flatten(1)[:, order].reshape(second.shape)]


def test_coordinate_photos_score_full_pck_on_synthetic_warps_and_a_real_pair(tmp_path):
    image = coordinate_photo(tmp_path / "coords.png")
    coordinate_photo(tmp_path / "coords2.png")  # another name: another random view
    homography = np.array([[0.9, 0.15, 8.0], [-0.12, 0.95, 10.0], [3e-4, 1e-4, 1.0]])
    warped = cv2.warpPerspective(image, homography, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    Image.fromarray((warped * 255).round().astype(np.uint8)).save(tmp_path / "warped.png")
    np.savetxt(tmp_path / "H", homography)
    (tmp_path / "pairs.json").write_text('[{"name": "real", "image_a": "coords.png", "image_b": "warped.png", '
                                         '"homography": "H"}]')
    methods = [Method("coordinates", (read_coordinates,)), Method("mixed", (read_coordinates, shuffled_second_map))]
    photos = [tmp_path / "coords.png", tmp_path / "coords2.png"]
    report = evaluate(methods, photos, pairs=load_pairs(tmp_path / "pairs.json"), seed=0, long_side=WIDTH,
                      ranges=NO_PHOTOMETRIC)
    exact = [r for r in report.results if r.method == "coordinates"]
    assert [r.kind for r in exact] == ["synthetic", "synthetic", "homography"]
    for result in exact:
        # Only queries whose match sits next to the black border of a view or the image edge (where the
        # describer zeroes or repeats cells) may be off by 2-4 px.
        assert result.pck[4] == result.pck[8] == 100.0 and result.pck[2] >= 95.0, result
        assert 0.5 * result.queries < result.valid <= result.queries
    # A method's score is the mean of its variants; the report's mean is the mean over images.
    mixed = [r for r in report.results if r.method == "mixed"]
    for result in mixed:
        assert result.variant_pck[0][8] == 100.0 and result.variant_pck[1][8] < 20.0
        assert result.pck[8] == pytest.approx(fmean(v[8] for v in result.variant_pck))
    assert report.mean("mixed", "synthetic")[4] == pytest.approx(fmean(r.pck[4] for r in mixed[:2]))
    assert report.mean("coordinates", "real") == exact[2].pck
    assert torch.equal(report.example.predictions["coordinates"], report.example.predictions["mixed"])


def test_real_networks_and_patches_run_end_to_end(tmp_path):
    photo = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "noise.png")
    methods = [random_init_method("vader_r18_fpn", seeds=(0,)), patch_method()]
    identity = evaluate(methods, [tmp_path / "noise.png"], long_side=64, ranges=IDENTITY)
    assert identity.mean("9x9 normalised patches") == {2: 100.0, 4: 100.0, 8: 100.0}
    warped = evaluate(methods, [tmp_path / "noise.png"], long_side=64, seed=3)
    for method in warped.methods:
        assert all(0.0 <= value <= 100.0 for value in warped.mean(method).values())
    assert warped.mean(methods[1].name)[8] < 100.0  # the warp does change the view


def test_bad_settings_are_refused(tmp_path):
    coordinate_photo(tmp_path / "coords.png")
    method = Method("coordinates", (read_coordinates,))
    with pytest.raises(ValueError, match="no methods"):
        evaluate([], [tmp_path / "coords.png"])
    with pytest.raises(ValueError, match="distinct"):
        evaluate([method, method], [tmp_path / "coords.png"])
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate([method])
    with pytest.raises(ValueError, match="long_side"):
        evaluate([method], [tmp_path / "coords.png"], long_side=16)
    with pytest.raises(FileNotFoundError):
        evaluate([method], [tmp_path / "missing.png"])


@pytest.mark.gpu
def test_networks_on_cuda_score_like_on_cpu(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    photo = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "noise.png")
    scores = {
        device: evaluate([random_init_method("vader_r18_fpn", seeds=(0,), device=device)], [tmp_path / "noise.png"],
                         long_side=128).mean("vader_r18_fpn random init (1 seeds)")
        for device in ("cpu", "cuda")
    }
    assert all(abs(scores["cpu"][t] - scores["cuda"][t]) < 2.0 for t in (2, 4, 8))
