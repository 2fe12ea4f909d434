"""samedenhancer: refine coarse medical segmentation masks with Segment-Anything-family models.

The entry points: :class:`Enhancer` (a coarse mask in, a refined one out; :class:`EnhanceOptions`
says how), :func:`stream` (frames of a video or device), :func:`propagate` (a volume from annotated
slices), :class:`InteractiveSession` (click correction), :class:`Predictor` (SAM2-style prompts),
:func:`prior_maps` / :func:`augment` (SAMAug's input augmentation), and the C++ core's
:func:`mine_prompts`, :func:`connected_components`, :func:`distance_transform`. :mod:`.io` reads and
writes images, masks, volumes and DICOM; :mod:`.metrics` scores masks; :mod:`.data` holds a sample.
"""

from __future__ import annotations

from . import data, io, metrics
from ._core import __version__
from .core import ComponentStats, MiningOptions, Prompts, as_label_map, connected_components, distance_transform, mine_prompts
from .embeddings import EmbeddingStore
from .enhancer import BatchItem, Encoded, EnhanceOptions, Enhancer, EnhanceResult, Gate, RegionResult, Timings, VolumeResult
from .interactive import InteractiveSession
from .predictor import ImageEmbedding, Prediction, Predictor
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
    "data",
    "distance_transform",
    "io",
    "metrics",
    "mine_prompts",
    "prior_maps",
    "propagate",
    "stream",
]
