"""samedenhancer: refine coarse medical segmentation masks with Segment-Anything-family models."""

from __future__ import annotations

from . import metrics
from ._core import __version__
from .core import ComponentStats, Prompts, as_label_map, connected_components, distance_transform, mine_prompts

__all__ = [
    "ComponentStats",
    "Prompts",
    "__version__",
    "as_label_map",
    "connected_components",
    "distance_transform",
    "metrics",
    "mine_prompts",
]
