"""The shared projective helpers against OpenCV."""
import cv2
import numpy as np
import pytest
import torch

from vader_hub.geometry import apply_homography, homography_from_points


def test_homography_from_points_matches_opencv():
    source = torch.tensor([[0.0, 0.0], [99.0, 3.0], [95.0, 70.0], [4.0, 66.0]])
    target = torch.tensor([[10.0, 5.0], [90.0, -2.0], [101.0, 80.0], [-3.0, 60.0]])
    expected = cv2.getPerspectiveTransform(source.numpy(), target.numpy())
    assert torch.allclose(homography_from_points(source, target), torch.from_numpy(expected), atol=1e-9)


def test_degenerate_or_misshapen_points_are_refused():
    collinear = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 5.0]])
    with pytest.raises(ValueError, match="collinear"):
        homography_from_points(collinear, collinear + 1)
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        homography_from_points(torch.zeros(3, 2), torch.zeros(3, 2))


def test_apply_homography_matches_opencv_and_keeps_the_points_dtype():
    generator = torch.Generator().manual_seed(0)
    homography = torch.eye(3, dtype=torch.float64) + torch.randn(3, 3, generator=generator, dtype=torch.float64) * 0.01
    points = torch.rand(50, 2, generator=generator) * 80  # float32
    expected = cv2.perspectiveTransform(points.double().numpy()[None], homography.numpy())[0]
    mapped = apply_homography(homography, points)
    assert mapped.dtype == torch.float32
    assert np.allclose(mapped.numpy(), expected, atol=1e-4)


def test_apply_homography_broadcasts_a_batch_of_matrices_over_shared_points():
    generator = torch.Generator().manual_seed(1)
    matrices = torch.eye(3, dtype=torch.float64) + torch.randn(4, 3, 3, generator=generator, dtype=torch.float64) * 0.01
    points = torch.rand(1, 6, 2, generator=generator, dtype=torch.float64) * 50
    batched = apply_homography(matrices.view(4, 1, 3, 3), points)  # (4, 6, 2)
    expected = np.stack([cv2.perspectiveTransform(points.numpy(), matrix.numpy())[0] for matrix in matrices])
    assert batched.shape == (4, 6, 2)
    np.testing.assert_allclose(batched.numpy(), expected, atol=1e-9)
