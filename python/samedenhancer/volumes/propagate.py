"""A structure segmented through a volume from one or a few annotated slices (propagation).

micro-sam's ``segment_mask_in_volume`` semantics (Archit et al., 2025): from the lowest and the
highest annotated slice the segmentation is extrapolated outward, each slice prompted from the
previous slice's result (:mod:`samedenhancer.volumes.slices`); a direction stops for a class when
the overlap between the previous and the new mask falls below ``iou_threshold`` (the new mask is
not kept), when the model's confidence in the new mask drops below ``CONFIDENCE_DROP`` of the last
kept slice's or of the first propagated slice's, whichever is higher (also not kept), when the
result is empty for two slices in a row, or at the volume's edge. The overlap is measured on the
two masks' convex hulls relative to the smaller hull (:func:`~.slices.hull_overlap`), not as the
plain IoU: between two thick slices a structure grows or shrinks by up to 2x and a thin ring moves
by about its own width, so the IoU stops where the structure merely changed size. Between two
annotated slices the gap is filled from both ends towards the middle without stopping, and the
middle slice is prompted from the union of its two neighbours.

A class with a hole nobody labelled (the myocardium annotated without its cavity) stays a ring:
its hole is propagated as an implicit inner class that the ring is drawn around, and left out of
the result. How well each rule does on ACDC: ``benchmarks/VOLUMES.md``.

References
----------
.. [1] Archit, A. et al., "Segment Anything for Microscopy", Nat. Methods 22, 579 (2025)
   (micro-sam's ``segment_mask_in_volume``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..core import check_label_map
from ..enhancer.rings import ring_hole
from ..embeddings import EmbeddingStore
from ..predictor import as_predictor
from ..validation import instance, integer, number
from .slices import SliceTimings, hull_overlap, segment_with_confidence

__all__ = ["PropagationResult", "PropagationTimings", "propagate"]

#: Slice status values, per class and per slice.
ANNOTATED, PROPAGATED, STOPPED = "annotated", "propagated", "stopped"
#: A direction stops for a class when its confidence (the mean logit inside the new mask) falls
#: below this fraction of the last kept slice's or of the first propagated slice's: past the end of
#: a structure the model still answers the grown box with something, less sure of it, and a
#: confidence that fades a little with each slice never drops by this much from one slice to the next.
CONFIDENCE_DROP = 0.7


@dataclass(frozen=True)
class PropagationTimings:
    """Seconds spent encoding slices, in decoder calls (with upscaling), and deriving prompts and
    rings (mining)."""

    encode: float
    decode: float
    mining: float


@dataclass(frozen=True)
class PropagationResult:
    """The propagated label volume and how each slice was obtained.

    Attributes
    ----------
    mask : ndarray
        Label volume, the volume's shape, the seed's dtype (uint8 for bool seeds).
    status : tuple of str
        Per slice: ``"annotated"`` (a seed), ``"propagated"`` (at least one class was propagated
        into it), ``"stopped"`` (no class reached it: every direction stopped before, or never had
        a class).
    class_status : dict
        Class -> tuple of per-slice statuses of that class.
    axis : int
    encodes : int
        Slices encoded (each at most once).
    timings : PropagationTimings
    """

    mask: np.ndarray
    status: tuple
    class_status: dict
    axis: int
    encodes: int
    timings: PropagationTimings


def _check_seeds(volume, seed_mask, seed_slice, seeds, axis) -> tuple[np.ndarray, int, dict[int, np.ndarray], np.dtype]:
    """The volume, the slice axis, the validated seeds ``{slice: label map}`` and their common dtype."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must be a 3-D array, got shape {volume.shape}")
    axis = integer(axis, "axis", -3, 2) % 3
    depth = volume.shape[axis]
    slice_shape = tuple(s for i, s in enumerate(volume.shape) if i != axis)
    if seeds is None:
        if seed_mask is None or seed_slice is None:
            raise ValueError("give seed_mask and seed_slice, or seeds={slice: mask}")
        seeds = {seed_slice: seed_mask}
    elif seed_mask is not None or seed_slice is not None:
        raise ValueError("give seed_mask and seed_slice, or seeds, not both")
    instance(seeds, "seeds", Mapping, "a dict {slice index: label map}")
    if not seeds:
        raise ValueError("seeds must hold at least one {slice index: label map}, got an empty dict")
    checked: dict[int, np.ndarray] = {}
    dtype = None
    for z, mask in seeds.items():
        z = integer(z, "seed slice", 0, depth - 1)
        label_map = check_label_map(mask, f"seed mask of slice {z}")
        if label_map.shape != slice_shape:
            raise ValueError(f"seed mask of slice {z} must have the slice shape {slice_shape}, got {label_map.shape}")
        if not label_map.any():
            raise ValueError(f"seed mask of slice {z} holds no class")
        dtype = mask.dtype if dtype is None else np.result_type(dtype, mask.dtype)
        checked[z] = label_map
    return volume, axis, checked, dtype


class _Propagation:
    """The state of one propagation: per class the mask and status of every slice, the slice
    embeddings (each slice encoded at most once) and the time spent per stage."""

    def __init__(self, predictor, volume: np.ndarray, axis: int, seeds: dict[int, np.ndarray], iou_threshold: float):
        self.predictor, self.volume, self.axis, self.iou_threshold = predictor, volume, axis, iou_threshold
        self.policy = "box" if predictor.manifest.default_policy == "box" else "points+box"
        self.depth = volume.shape[axis]
        self.slice_shape = tuple(s for i, s in enumerate(volume.shape) if i != axis)
        self.seeds = seeds
        self.classes = sorted({int(c) for m in seeds.values() for c in np.unique(m) if c})
        holes = {z: {c: ring_hole(m == c, m) for c in self.classes} for z, m in seeds.items()}
        rings = sorted({c for per_slice in holes.values() for c, hole in per_slice.items() if hole is not None})
        # ring class -> its implicit inner class (the unlabelled hole), numbered above every class
        self.inner = {c: max(self.classes) + 1 + i for i, c in enumerate(rings)}
        self.tracked = self.classes + list(self.inner.values())
        self.masks = {c: np.zeros((self.depth,) + self.slice_shape, bool) for c in self.tracked}
        self.status = {c: [STOPPED] * self.depth for c in self.tracked}
        for z, label_map in seeds.items():
            for c in self.classes:
                self.masks[c][z] = label_map == c
                self.status[c][z] = ANNOTATED
            for c, inner in self.inner.items():
                if holes[z][c] is not None:
                    self.masks[inner][z] = holes[z][c]
                self.status[inner][z] = ANNOTATED
        self.embeddings: dict[int, object] = {}
        self.encode_s = 0.0
        self.slice_timings = SliceTimings()

    def embedding(self, z: int):
        if z not in self.embeddings:
            start = time.perf_counter()
            self.embeddings[z] = self.predictor.encode(np.ascontiguousarray(np.take(self.volume, z, self.axis)))
            self.encode_s += time.perf_counter() - start
        return self.embeddings[z]

    def step(self, z: int, reference: dict[int, np.ndarray]) -> tuple[dict[int, np.ndarray], dict[int, float]]:
        """Slice ``z`` prompted from ``reference``: masks and confidences per class."""
        return segment_with_confidence(self.predictor, self.embedding(z), reference, self.policy, self.slice_timings)

    def outward(self, start: int, stop: int, increment: int, classes: list[int]) -> None:
        """From annotated slice ``start`` towards ``stop`` (exclusive), with the stopping rules."""
        previous = {c: self.masks[c][start] for c in classes if self.masks[c][start].any()}
        empty = {c: 0 for c in previous}
        trust = {c: math.nan for c in previous}  # the last kept slice's confidence
        anchor = {c: math.nan for c in previous}  # the first kept slice's (the one next to the annotation)
        for z in range(start + increment, stop, increment):
            if not previous:
                return
            new, confidence = self.step(z, previous)
            for c in list(previous):
                mask = new.get(c, np.zeros(self.slice_shape, bool))
                if not mask.any():
                    empty[c] += 1
                    if empty[c] >= 2:
                        del previous[c]
                    continue  # the next slice is prompted from the last non-empty mask
                reference = max((t for t in (trust[c], anchor[c]) if not math.isnan(t)), default=math.nan)
                if hull_overlap(previous[c], mask) < self.iou_threshold or confidence[c] < CONFIDENCE_DROP * reference:
                    del previous[c]
                    continue
                empty[c] = 0
                self.masks[c][z], self.status[c][z] = mask, PROPAGATED
                previous[c], trust[c] = mask, confidence[c]
                if math.isnan(anchor[c]):
                    anchor[c] = confidence[c]
            for ring, inner in self.inner.items():  # an implicit inner class ends with its ring
                if ring not in previous:
                    previous.pop(inner, None)

    def between(self, low: int, high: int) -> None:
        """Fill the slices between two annotated slices from both ends towards the middle."""
        both = [c for c in self.tracked if self.masks[c][low].any() and self.masks[c][high].any()]
        one = [c for c in self.tracked if c not in both]
        if one:  # a class annotated on one end only: extrapolated from there, with the stopping rules
            self.outward(low, high, 1, [c for c in one if self.masks[c][low].any()])
            self.outward(high, low, -1, [c for c in one if self.masks[c][high].any()])
        if high - low < 2 or not both:
            return
        middle = (low + high) // 2
        for start, end, increment in ((low, middle, 1), (high, middle, -1)):
            previous = {c: self.masks[c][start] for c in both}
            for z in range(start + increment, end, increment):
                new, _ = self.step(z, previous)
                for c in both:
                    mask = new.get(c, np.zeros(self.slice_shape, bool))
                    self.masks[c][z], self.status[c][z] = mask, PROPAGATED
                    if mask.any():
                        previous[c] = mask
        reference = {c: self.masks[c][middle - 1] | self.masks[c][middle + 1] for c in both}
        new, _ = self.step(middle, reference)
        for c in both:
            self.masks[c][middle], self.status[c][middle] = new.get(c, np.zeros(self.slice_shape, bool)), PROPAGATED

    def run(self) -> None:
        annotated = sorted(self.seeds)
        self.outward(annotated[0], -1, -1, self.tracked)
        self.outward(annotated[-1], self.depth, 1, self.tracked)
        for low, high in zip(annotated[:-1], annotated[1:]):
            self.between(low, high)

    def result(self, dtype: np.dtype) -> PropagationResult:
        """The label volume of the seeds' classes (implicit inner classes left out)."""
        out_dtype = dtype if dtype.kind in "ui" else np.uint8
        labels = np.zeros((self.depth,) + self.slice_shape, out_dtype)
        for c in self.classes:
            labels[self.masks[c] & (labels == 0)] = c
        per_slice = []
        for z in range(self.depth):
            states = {self.status[c][z] for c in self.classes}
            per_slice.append(ANNOTATED if z in self.seeds else PROPAGATED if PROPAGATED in states else STOPPED)
        return PropagationResult(
            mask=np.ascontiguousarray(np.moveaxis(labels, 0, self.axis)),
            status=tuple(per_slice),
            class_status={c: tuple(self.status[c]) for c in self.classes},
            axis=self.axis,
            encodes=len(self.embeddings),
            timings=PropagationTimings(self.encode_s, self.slice_timings.decode_s, self.slice_timings.mining_s),
        )


def propagate(volume, seed_mask=None, seed_slice=None, *, seeds: Mapping[int, np.ndarray] | None = None,
              model="litemedsam", iou_threshold: float = 0.5, axis: int = 2, providers=None,
              embeddings: EmbeddingStore | None = None) -> PropagationResult:
    """Segment the classes of one (or a few) annotated slices through a volume.

    Parameters
    ----------
    volume : ndarray, 3-D
        The scan (grey), slices along ``axis``.
    seed_mask : ndarray, 2-D
        Label map of slice ``seed_slice`` (0 = background, several classes at once), bool or
        unsigned/signed integer labels >= 0. A class with an unlabelled hole (a ring) stays a ring.
    seed_slice : int
        Index of the annotated slice along ``axis``.
    seeds : dict, optional
        ``{slice index: label map}`` for several annotated slices (instead of ``seed_mask`` /
        ``seed_slice``).
    model : str or Predictor
        Model name (``"litemedsam"``, the embedded default) or a ready predictor.
    iou_threshold : float
        A direction stops for a class when the overlap of the previous and the new mask
        (:func:`~samedenhancer.volumes.slices.hull_overlap`: their convex hulls, relative to the
        smaller one) is below it, in [0, 1]; 0 never stops on overlap. A direction also stops when
        the mean logit inside the new mask is below ``CONFIDENCE_DROP`` times the last kept
        slice's or the first propagated slice's.
    axis : int
        Slice axis (2: NIfTI's and :func:`samedenhancer.io.read_dicom_series`' slice axis).
    providers : sequence of str, optional
        ONNX Runtime execution providers when ``model`` is a name.
    embeddings : EmbeddingStore, optional
        Store each slice's embedding (slice by slice): a rerun on the volume encodes nothing.

    Returns
    -------
    PropagationResult
        ``mask``: the label volume in the seed's dtype; ``status``: how each slice was obtained.

    Examples
    --------
    A disc drifting through four slices of a synthetic volume, annotated on slice 1:

    >>> import numpy as np
    >>> yy, xx = np.mgrid[:96, :96]
    >>> volume = np.stack([((yy - 48) ** 2 + (xx - 40 - 3 * z) ** 2 < 400) * 200 for z in range(4)], axis=2)
    >>> result = propagate(volume.astype(np.uint8), (volume[..., 1] > 0).astype(np.uint8), 1)
    >>> result.status, result.encodes
    (('propagated', 'annotated', 'propagated', 'propagated'), 3)
    >>> round(float((result.mask[..., 3] > 0).mean() / (volume[..., 3] > 0).mean()), 1)   # the disc's area
    1.0
    """
    volume, axis, checked, dtype = _check_seeds(volume, seed_mask, seed_slice, seeds, axis)
    iou_threshold = number(iou_threshold, "iou_threshold", 0, 1)
    predictor = as_predictor(model, providers=providers, needs=("encode", "decode", "upscale", "manifest"),
                             embeddings=embeddings)
    propagation = _Propagation(predictor, volume, axis, checked, iou_threshold)
    propagation.run()
    return propagation.result(dtype)
