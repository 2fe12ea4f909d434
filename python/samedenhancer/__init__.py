"""samedenhancer: refine coarse medical segmentation masks with Segment-Anything-family models."""

from __future__ import annotations

from . import io, metrics
from ._core import __version__
from .core import ComponentStats, MiningOptions, Prompts, as_label_map, connected_components, distance_transform, mine_prompts
from .embeddings import EmbeddingStore
from .enhancer import BatchItem, Encoded, EnhanceOptions, Enhancer, EnhanceResult, Gate, RegionResult, Timings, VolumeResult
from .interactive import InteractiveSession
from .predictor import ImageEmbedding, Prediction, Predictor, PreparedImage
from .prior_maps import PriorMaps, augment, prior_maps
from .streaming import FrameResult, stream
from .volumes import PropagationResult, propagate

__all__ = [
    "BatchItem",
    "ComponentStats",
    "EmbeddingStore",
    "Encoded",
    "EnhanceOptions",
    "EnhanceResult",
    "Enhancer",
    "FrameResult",
    "Gate",
    "ImageEmbedding",
    "InteractiveSession",
    "MiningOptions",
    "Prediction",
    "PreparedImage",
    "Predictor",
    "PriorMaps",
    "Prompts",
    "PropagationResult",
    "RegionResult",
    "Timings",
    "VolumeResult",
    "__version__",
    "as_label_map",
    "augment",
    "connected_components",
    "distance_transform",
    "io",
    "metrics",
    "mine_prompts",
    "prior_maps",
    "propagate",
    "stream",
]
