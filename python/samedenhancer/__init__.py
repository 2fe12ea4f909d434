"""samedenhancer: refine coarse medical segmentation masks with Segment-Anything-family models."""

from __future__ import annotations

from ._core import __version__
from .predictor import ImageEmbedding, Prediction, Predictor

__all__ = ["__version__", "ImageEmbedding", "Prediction", "Predictor"]
