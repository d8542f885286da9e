"""The cell convention: aligned upsampling against a slow reference, and the convention on the real network."""
import math

import numpy as np
import pytest
import timm
import torch

from vader_hub.models.cells import (
    cell_to_pixel,
    output_size,
    pixel_to_cell,
    sample_cells,
    upsample_aligned,
    upsample_to_pixels,
)


def slow_upsample(x: np.ndarray, size: tuple, factor: int) -> np.ndarray:
    """Output cell k samples input cell k / factor bilinearly, clamped to the last cell (one loop per cell)."""
    channels, height, width = x.shape
    out = np.zeros((channels, *size))
    for i in range(size[0]):
        for j in range(size[1]):
            y, xx = min(i / factor, height - 1), min(j / factor, width - 1)
            y0, x0 = int(math.floor(y)), int(math.floor(xx))
            y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
            dy, dx = y - y0, xx - x0
            out[:, i, j] = (
                x[:, y0, x0] * (1 - dy) * (1 - dx) + x[:, y0, x1] * (1 - dy) * dx
                + x[:, y1, x0] * dy * (1 - dx) + x[:, y1, x1] * dy * dx
            )
    return out


@pytest.mark.parametrize("image_size", [(33, 47), (64, 64), (37, 90), (250, 65)])
@pytest.mark.parametrize("factor", [2, 4])
def test_upsample_aligned_matches_slow_reference(image_size, factor):
    torch.manual_seed(0)
    coarse = output_size(*image_size, stride=4 * factor)
    fine = output_size(*image_size, stride=4)
    x = torch.randn(1, 3, *coarse, dtype=torch.float64)
    fast = upsample_aligned(x, fine, factor)[0].numpy()
    np.testing.assert_allclose(fast, slow_upsample(x[0].numpy(), fine, factor), atol=1e-12)


def test_upsample_to_pixels_puts_each_cell_on_its_pixel():
    torch.manual_seed(0)
    height, width = 37, 50
    features = torch.randn(8, *output_size(height, width))  # (C, 10, 13)
    per_pixel = upsample_to_pixels(features, (height, width))
    assert per_pixel.shape == (8, height, width)
    cells = torch.stack(torch.meshgrid(torch.arange(10), torch.arange(13), indexing="ij"), -1)  # (10, 13, 2)
    pixels = cell_to_pixel(cells).long()
    torch.testing.assert_close(per_pixel[:, pixels[..., 0], pixels[..., 1]], features)
    torch.testing.assert_close(pixel_to_cell(cell_to_pixel(cells)), cells.float())


def test_upsample_to_pixels_rejects_a_map_of_the_wrong_size():
    with pytest.raises(ValueError, match="10x13"):
        upsample_to_pixels(torch.randn(8, 9, 13), (37, 50))


def slow_bilinear(map_: np.ndarray, x: float, y: float) -> np.ndarray:
    """The (C,) bilinear sample of a (C, h, w) map at cell (x, y), clamped to the map."""
    height, width = map_.shape[1:]
    x, y = min(max(x, 0.0), width - 1), min(max(y, 0.0), height - 1)
    x0, y0 = min(int(math.floor(x)), width - 1), min(int(math.floor(y)), height - 1)
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    top = (1 - fx) * map_[:, y0, x0] + fx * map_[:, y0, x1]
    bottom = (1 - fx) * map_[:, y1, x0] + fx * map_[:, y1, x1]
    return (1 - fy) * top + fy * bottom


@pytest.mark.parametrize("height, width", [(5, 7), (1, 6), (4, 1)])
def test_sample_cells_matches_a_slow_bilinear_loop(height, width):
    generator = torch.Generator().manual_seed(height * 10 + width)
    maps = torch.randn(2, 3, height, width, generator=generator, dtype=torch.float64)
    spread = torch.tensor([width + 1.0, height + 1.0], dtype=torch.float64)  # reaches a cell past each border
    cells = torch.rand(2, 9, 2, generator=generator, dtype=torch.float64) * spread - 1  # (2, 9, 2)
    sampled = sample_cells(maps, cells)  # (2, 9, 3)
    assert sampled.shape == (2, 9, 3)
    for b in range(2):
        for p in range(9):
            x, y = cells[b, p].tolist()
            np.testing.assert_allclose(sampled[b, p].numpy(), slow_bilinear(maps[b].numpy(), x, y), atol=1e-10)


def test_sample_cells_takes_integer_cells_and_keeps_the_maps_dtype():
    maps = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # (1, 2, 3, 4)
    cells = torch.tensor([[[0, 0], [3, 2], [1, 2]]])  # (1, 3, 2) int64 (x, y)
    sampled = sample_cells(maps, cells)  # (1, 3, 2)
    assert sampled.dtype == torch.float32
    expected = torch.stack([maps[0, :, 0, 0], maps[0, :, 2, 3], maps[0, :, 2, 1]])  # (3, 2) exact cells
    torch.testing.assert_close(sampled[0], expected)
    halfway = sample_cells(maps, torch.tensor([[[0.5, 0.0]]], dtype=torch.float64))  # float64 cells, float32 maps
    torch.testing.assert_close(halfway[0, 0], (maps[0, :, 0, 0] + maps[0, :, 0, 1]) / 2)


def _trunk_c2(model, x):
    trunk = model.trunk
    return trunk.layer1(trunk.maxpool(trunk.act1(trunk.bn1(trunk.conv1(x)))))


def test_trunk_stride4_cells_follow_a_4px_shift_exactly():
    """Away from the border, shifting the image by 4 px shifts C2 by exactly one cell."""
    torch.manual_seed(0)
    model = timm.create_model("vader_r18_fpn").eval()
    image = torch.randn(1, 3, 132, 132)
    with torch.no_grad():
        base = _trunk_c2(model, image[..., :128, :128])
        shifted = _trunk_c2(model, image[..., 4:, 4:])
    # C2's receptive field is under 48 px: cells 6..25 see no padding in either crop.
    torch.testing.assert_close(shifted[..., 6:25, 6:25], base[..., 7:26, 7:26], atol=1e-5, rtol=1e-5)


def test_stride4_embedding_path_follows_a_4px_shift_by_one_cell():
    """With the coarse levels switched off, the embedding is a stride-4 network: a 4 px shift of the image
    moves the interior features by one cell. (Not bitwise: GroupNorm's statistics span the whole map.)
    The coarse levels' alignment is checked by the upsampling tests above."""
    torch.manual_seed(0)
    model = timm.create_model("vader_r18_fpn").eval()
    with torch.no_grad():
        for lateral in model.decoder.lateral[1:]:
            lateral.weight.zero_()
            lateral.bias.zero_()
        image = torch.randn(1, 3, 196, 196)
        base = model(image[..., :192, :192])  # (1, 128, 48, 48)
        shifted = model(image[..., 4:, 4:])
    interior = slice(7, 40)  # cells whose ~52 px receptive field stays inside both crops
    one_cell = (shifted[..., interior, interior] - base[..., 8:41, 8:41]).abs().max().item()
    no_shift = (shifted[..., interior, interior] - base[..., interior, interior]).abs().max().item()
    assert one_cell < 0.05 < 0.3 < no_shift
