"""The VADeR networks, their timm registrations and the cell convention."""
from .cells import STRIDE, cell_to_pixel, output_size, pixel_to_cell, upsample_to_pixels
from .registry import default_model_name, pretrained_names, vader_r18_fpn, vader_r50_fpn, vader_r101_fpn
from .vader import MIN_INPUT_SIZE, VaderFPN

__all__ = [
    "MIN_INPUT_SIZE", "STRIDE", "VaderFPN", "cell_to_pixel", "default_model_name", "output_size", "pixel_to_cell",
    "pretrained_names", "upsample_to_pixels", "vader_r18_fpn", "vader_r50_fpn", "vader_r101_fpn",
]
