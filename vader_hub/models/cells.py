"""The cell convention: which input pixel each output cell of a stride-s feature map is centred on.

Pixel centres sit at integer coordinates: pixel (y, x) is the unit square centred on (y, x).
Output cell (i, j) of a stride-``s`` map is centred on input pixel ``(s * i, s * j)``.

This is where a ResNet's padded stride-2 layers put it: ``conv1`` (7x7, stride 2, padding 3) and the
max-pool (3x3, stride 2, padding 1) are symmetric about ``2 * k``, so stage C2's cell ``k`` sees a
receptive field centred on pixel ``4 * k``; every later stride-2 layer keeps the same rule, and the
decoder's upsampling (:func:`upsample_aligned`) keeps it too. An input of size H x W gives
``ceil(H / s) x ceil(W / s)`` cells, the last of which is centred on a pixel inside the image.

The feature API, the trainer's correspondences and the evaluation all use these helpers, so one
convention holds everywhere.
"""
import math

import torch
import torch.nn.functional as F

STRIDE = 4


def _floating(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a floating tensor, keeping float64 (exact correspondences need it)."""
    return x if x.is_floating_point() else x.float()


def output_size(height: int, width: int, stride: int = STRIDE) -> tuple[int, int]:
    """Size of the stride-``stride`` map for an input of ``height`` x ``width`` pixels.

    Args:
        height: Input height in pixels.
        width: Input width in pixels.
        stride: Stride of the map (4 for the VADeR output).

    Returns:
        ``(ceil(height / stride), ceil(width / stride))``.
    """
    return math.ceil(height / stride), math.ceil(width / stride)


def cell_to_pixel(cells: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Map (fractional) cell coordinates to the input-pixel coordinates they are centred on.

    Works on any trailing coordinate layout, (y, x) or (x, y) alike, since the map is isotropic.

    Args:
        cells: Cell coordinates, any shape.
        stride: Stride of the map.

    Returns:
        Pixel coordinates, ``stride * cells``, floating (float64 stays float64).
    """
    return _floating(cells) * stride


def pixel_to_cell(pixels: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Inverse of :func:`cell_to_pixel`: fractional cell coordinates of input pixels.

    Args:
        pixels: Pixel coordinates, any shape.
        stride: Stride of the map.

    Returns:
        Fractional cell coordinates, ``pixels / stride``, floating (float64 stays float64).
    """
    return _floating(pixels) / stride


def sample_cells(maps: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of maps at fractional cell positions; positions past the border repeat it.

    Args:
        maps: (B, C, h, w) maps.
        cells: (B, P, 2) (x, y) cell coordinates, fractional or integer, one set per map.

    Returns:
        (B, P, C) samples, in ``maps``' dtype, not normalised.
    """
    height, width = maps.shape[-2:]
    cells = _floating(cells)
    scale = cells.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = (cells * scale - 1).to(maps.dtype).unsqueeze(1)  # (B, 1, P, 2); align_corners puts cell k on 2k/(n-1) - 1
    sampled = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (B, C, 1, P)
    return sampled.squeeze(2).transpose(1, 2)  # (B, P, C)


def upsample_aligned(x: torch.Tensor, size: tuple[int, int], factor: int) -> torch.Tensor:
    """Bilinearly upsample a map by an integer ``factor``, keeping the cell convention.

    Output cell ``k`` samples input cell ``k / factor`` exactly (cell ``k`` of a stride-``s`` map and
    cell ``k * factor`` of the stride-``s / factor`` map are centred on the same pixel). Positions past
    the last input cell repeat the border, as the receptive field there is cut by the image edge.

    Args:
        x: Map of shape (B, C, h, w).
        size: Output size (H, W); ``(h - 1) * factor + 1 <= H <= h * factor``, same for W.
        factor: Integer upsampling factor.

    Returns:
        Map of shape (B, C, H, W).
    """
    height, width = x.shape[-2:]
    if factor == 1:
        return x[..., : size[0], : size[1]]
    if height == 1 or width == 1:
        # align_corners interpolation needs two cells along each axis; a single cell is constant.
        x = F.interpolate(x, size=(max(height, 2), max(width, 2)), mode="nearest")
        height, width = x.shape[-2:]
    exact = ((height - 1) * factor + 1, (width - 1) * factor + 1)
    x = F.interpolate(x, size=exact, mode="bilinear", align_corners=True)  # (B, C, (h-1)f+1, (w-1)f+1)
    # size - exact is in [0, factor - 1]: repeat the last row and column by gathering clamped indices.
    # Unlike a branch or a crop, this keeps H and W dynamic for torch.export and ONNX, and unlike a
    # replicate pad it compiles in backward with torch.compile on CPU.
    rows = torch.arange(size[0], device=x.device).clamp(max=exact[0] - 1)
    cols = torch.arange(size[1], device=x.device).clamp(max=exact[1] - 1)
    return x.index_select(-2, rows).index_select(-1, cols)  # (B, C, H, W)


def upsample_to_pixels(features: torch.Tensor, size: tuple[int, int], stride: int = STRIDE) -> torch.Tensor:
    """One feature per input pixel, aligned with the cell convention.

    Pixel ``p`` gets the bilinear sample of the map at cell ``p / stride``, so pixel ``stride * i``
    receives exactly cell ``i``'s feature.

    Args:
        features: Map of shape (B, C, h, w) or (C, h, w) with ``(h, w) == output_size(*size)``.
        size: Input size (H, W) in pixels.
        stride: Stride of the map.

    Returns:
        Per-pixel features of shape (B, C, H, W) or (C, H, W).

    Raises:
        ValueError: If the map does not have the size the convention gives for ``size``.
    """
    expected = output_size(*size, stride=stride)
    if tuple(features.shape[-2:]) != expected:
        raise ValueError(
            f"a {size[0]}x{size[1]} input has a {expected[0]}x{expected[1]} stride-{stride} map, "
            f"got features of spatial size {tuple(features.shape[-2:])}"
        )
    batched = features.dim() == 4
    x = features if batched else features.unsqueeze(0)  # (B, C, h, w)
    x = upsample_aligned(x, size, stride)  # (B, C, H, W)
    return x if batched else x.squeeze(0)
