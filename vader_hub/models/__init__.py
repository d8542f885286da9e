"""The VADeR networks, their timm registrations (one per entry of :data:`TRUNKS`) and the cell convention."""
from .cells import STRIDE, cell_to_pixel, output_size, pixel_to_cell, upsample_to_pixels
from .preprocess import normalize_images
from .registry import (
    CREATE_FUNCTIONS,
    TRUNKS,
    default_model_name,
    hub_config,
    model_for_state_dict,
    pretrained_names,
)
from .vader import MIN_INPUT_SIZE, VaderFPN

__all__ = [
    "CREATE_FUNCTIONS", "MIN_INPUT_SIZE", "STRIDE", "TRUNKS", "VaderFPN", "cell_to_pixel", "default_model_name",
    "hub_config", "model_for_state_dict", "normalize_images", "output_size", "pixel_to_cell", "pretrained_names",
    "upsample_to_pixels",
]
