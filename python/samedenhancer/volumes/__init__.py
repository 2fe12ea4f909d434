"""Volumes: structures segmented through a scan from annotated slices (:func:`propagate`).

:mod:`.propagate` drives a propagation through the slices (the stopping rules, the gaps between
annotated slices); :mod:`.slices` segments one slice from the previous one (prompts, rings, the
overlap test). The 3-D refinement of a coarse volume is :meth:`samedenhancer.Enhancer.enhance_volume`
(:mod:`samedenhancer.enhancer.volume`); DICOM series and SEG are read and written in
:mod:`samedenhancer.io`.
"""

from __future__ import annotations

from .propagate import PropagationResult, PropagationTimings, propagate

__all__ = ["PropagationResult", "PropagationTimings", "propagate"]
