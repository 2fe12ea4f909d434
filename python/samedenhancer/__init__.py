"""samedenhancer: refine coarse medical segmentation masks with Segment-Anything-family models."""

from __future__ import annotations

from ._core import __version__

__all__ = ["__version__"]
