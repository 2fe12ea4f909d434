"""Volumes: structures segmented through a scan from annotated slices (:func:`propagate`).

The 3-D refinement of a coarse volume is :meth:`samedenhancer.Enhancer.enhance_volume`
(``samedenhancer.enhancer.volume``); DICOM series and SEG are read and written in
:mod:`samedenhancer.io`.
"""

from __future__ import annotations

from .propagate import PropagationResult, PropagationTimings, propagate

__all__ = ["PropagationResult", "PropagationTimings", "propagate"]
