"""PCA pictures against a numpy SVD reference; correspondence pictures pixel by pixel."""
import numpy as np
import pytest
import torch
from PIL import Image

from vader_hub.features.matching import Matches
from vader_hub.features.pictures import _position_colour, correspondence_image, pca_image, to_pil_image


def reference_pca_picture(features: np.ndarray) -> np.ndarray:
    """numpy reference: SVD of the centred cells, signed by the largest loading, 1..99th percentile stretch."""
    channels, height, width = features.shape
    cells = features.reshape(channels, -1).T.astype(np.float64)
    centred = cells - cells.mean(axis=0)
    _, _, right = np.linalg.svd(centred, full_matrices=False)
    axes = right[:3].T
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(3)])
    projected = centred @ axes
    low, high = np.percentile(projected, [1, 99], axis=0)
    stretched = np.clip((projected - low) / (high - low), 0, 1)
    return np.round(stretched * 255).reshape(height, width, 3)


def test_pca_picture_matches_numpy_svd():
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 16, generator=generator) * torch.tensor([[5.0], [3.0], [2.0]])
    features = torch.einsum("kc,khw->chw", basis, torch.randn(3, 9, 13, generator=generator))
    features += 0.05 * torch.randn(16, 9, 13, generator=generator)
    picture = pca_image(features)
    assert picture.mode == "RGB" and picture.size == (13, 9)
    difference = np.abs(np.asarray(picture).astype(int) - reference_pca_picture(features.numpy()))
    assert difference.max() <= 1


def test_two_kinds_of_cells_get_two_colours():
    features = torch.zeros(8, 6, 10)
    features[0, :, :5], features[1, :, 5:] = 1.0, 1.0  # left half one vector, right half another
    pixels = np.asarray(pca_image(features))
    assert len(np.unique(pixels[:, :5].reshape(-1, 3), axis=0)) == 1
    assert len(np.unique(pixels[:, 5:].reshape(-1, 3), axis=0)) == 1
    assert not np.array_equal(pixels[0, 0], pixels[0, 9])


def test_pca_picture_at_image_size_follows_the_cell_convention():
    features = torch.randn(6, 5, 7, generator=torch.Generator().manual_seed(1))
    cells = np.asarray(pca_image(features)).astype(int)
    pixels = np.asarray(pca_image(features, image_size=(19, 26))).astype(int)
    assert pixels.shape == (19, 26, 3)
    assert np.abs(pixels[::4, ::4] - cells).max() <= 1  # pixel (4i, 4j) shows cell (i, j)
    with pytest.raises(ValueError, match="stride-4 map"):
        pca_image(features, image_size=(40, 40))


@pytest.mark.parametrize("channels", [1, 2])
def test_pca_picture_of_few_channels_and_constant_maps(channels):
    features = torch.randn(channels, 4, 4, generator=torch.Generator().manual_seed(2))
    pixels = np.asarray(pca_image(features))
    assert pixels.shape == (4, 4, 3) and np.all(pixels[..., channels:] == 128)
    assert np.all(np.asarray(pca_image(torch.ones(8, 3, 3))) == 128)


def test_pca_picture_errors():
    with pytest.raises(TypeError, match="floating-point"):
        pca_image(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(C, h, w\)"):
        pca_image(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="non-empty"):
        pca_image(torch.zeros(3, 0, 4))


def make_matches(pairs, scores) -> Matches:
    points_a = torch.tensor([a for a, _ in pairs], dtype=torch.float32).view(-1, 2)
    points_b = torch.tensor([b for _, b in pairs], dtype=torch.float32).view(-1, 2)
    return Matches(points_a=points_a, points_b=points_b, scores=torch.tensor(scores, dtype=torch.float32))


def test_correspondence_picture_without_matches_is_the_two_images():
    rng = np.random.default_rng(0)
    image_a, image_b = rng.integers(0, 256, (20, 30, 3), np.uint8), rng.integers(0, 256, (12, 16, 3), np.uint8)
    picture = np.asarray(correspondence_image(Image.fromarray(image_a), image_b, make_matches([], [])))
    assert picture.shape == (20, 46, 3)
    np.testing.assert_array_equal(picture[:, :30], image_a)
    np.testing.assert_array_equal(picture[:12, 30:], image_b)
    assert np.all(picture[12:, 30:] == 0)


def test_correspondence_picture_joins_the_best_matches():
    white = np.full((40, 60, 3), 255, np.uint8)
    matches = make_matches([((8.0, 20.0), (50.0, 30.0)), ((40.0, 4.0), (12.0, 8.0))], [0.9, 0.2])
    picture = np.asarray(correspondence_image(white, white, matches, max_lines=1))
    colour = _position_colour(8 / 60, 20 / 40)
    np.testing.assert_array_equal(picture[20, 8], colour)  # the best match's end in A
    np.testing.assert_array_equal(picture[30, 60 + 50], colour)  # and in B, shifted by A's width
    np.testing.assert_array_equal(picture[25, 59], colour)  # the midpoint of the line between them
    np.testing.assert_array_equal(picture[4, 40], [255, 255, 255])  # the weaker match is not drawn
    both = np.asarray(correspondence_image(white, white, matches, max_lines=2))
    np.testing.assert_array_equal(both[4, 40], _position_colour(40 / 60, 4 / 40))


def test_correspondence_picture_errors():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="Matches"):
        correspondence_image(image, image, {"points_a": []})
    with pytest.raises(ValueError, match="max_lines"):
        correspondence_image(image, image, make_matches([], []), max_lines=0)
    with pytest.raises(ValueError, match="channels"):
        correspondence_image(np.zeros((8, 8, 2), np.uint8), image, make_matches([], []))


def test_to_pil_image_rounds_and_clips_instead_of_wrapping_around():
    image = torch.tensor([[[0.0, 0.5, 1.0, 1.2]], [[-0.1, 0.25, 0.999, 2.0]], [[1.0, 0.0, 0.5, -3.0]]])  # (3, 1, 4)
    picture = to_pil_image(image)
    assert picture.mode == "RGB" and picture.size == (4, 1)
    np.testing.assert_array_equal(np.asarray(picture)[0], [[0, 0, 255], [128, 64, 0], [255, 255, 128], [255, 255, 0]])
