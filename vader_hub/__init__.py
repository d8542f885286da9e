"""vader-hub: VADeR dense self-supervised backbones for timm, torch.hub and the Hugging Face Hub.

``import vader_hub`` registers one timm model per backbone of :data:`vader_hub.models.TRUNKS`
(``timm.list_models("vader_*")``: ``vader_r18_fpn``, ``vader_r50_fpn``, ``vader_r101_fpn``).

    >>> import timm, torch, vader_hub
    >>> model = timm.create_model("vader_r18_fpn").eval()
    >>> model(torch.randn(1, 3, 224, 224)).shape
    torch.Size([1, 128, 56, 56])
"""
from . import models
from .features import correspondence_image, extract_dense_features, match_features, match_features_dense, pca_image

__version__ = "0.1.0"
__all__ = [
    "correspondence_image", "extract_dense_features", "match_features", "match_features_dense", "models", "pca_image",
]
