"""The dense-feature API: features of any image in one call, matching, and pictures of both.

- :func:`extract_dense_features` (``extract.py``): images of any kind and size -> L2-normalised 128-d
  features per stride-4 cell, or per pixel.
- :func:`match_features`, :func:`match_features_dense` (``matching.py``): mutual, or every cell's,
  nearest neighbours between two maps.
- :func:`pca_image`, :func:`correspondence_image` (``pictures.py``): what the features see.
- ``inputs.py`` turns every accepted image kind into float RGB tensors; :mod:`vader_hub.cli.features` adds the
  ``vader-hub extract`` and ``vader-hub match`` sub-commands.
"""
from .extract import DenseTransform, dense_transform, extract_dense_features
from .inputs import MAX_PIXELS
from .matching import Matches, match_features, match_features_dense, rescale_points
from .pictures import correspondence_image, pca_image

__all__ = [
    "DenseTransform", "MAX_PIXELS", "Matches", "correspondence_image", "dense_transform", "extract_dense_features",
    "match_features",
    "match_features_dense", "pca_image", "rescale_points",
]
