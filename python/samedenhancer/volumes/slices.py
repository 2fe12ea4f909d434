"""One slice of a propagation: every class prompted from a reference mask (the previous slice's
result), rings drawn around their inner class, and the overlap test that stops a direction.

Prompts follow the model: LiteMedSAM (box policy) gets the box of each class's reference mask (the
core's miner on the reference label map, largest merged region, grown by a margin since the
structure may have grown); point models (MedSAM2, SAM2.1) get that box with the region's positive /
negative points. A second decoder call refines each class from the box of its first answer.

A ring class (one that encloses another class, like the myocardium around the left-ventricle
cavity) cannot be asked for with a box: the box of a ring asks for the disc inside it, and
LiteMedSAM answers with the cavity. A ring is therefore drawn around its inner class's new mask as
the shell of the thickness that best fits the reference ring; where the inner class is absent (the
apex) the ring's box is decoded as for any class (a ring whose hole nobody labelled gets the hole as
an implicit inner class: :mod:`samedenhancer.volumes.propagate`). What this gives on ACDC:
``benchmarks/VOLUMES.md``.
"""

from __future__ import annotations

import math
import time
from typing import Mapping

import cv2
import numpy as np

from ..core import distance_transform, mine_prompts
from ..metrics import dice

__all__ = ["hull_overlap", "segment_slice", "segment_with_confidence"]

#: Ring thicknesses tried, in pixels.
_THICKNESSES = np.arange(1, 31)
#: Box margin of a propagated prompt, as a fraction of the previous mask's box side (and at least
#: ``BOX_MARGIN_MIN`` pixels): a structure grows or shrinks from one slice to the next.
BOX_MARGIN = 0.2
#: Box margin of the second, refining decoder call (prompted from the first call's answer): the grown
#: box lets a structure that shrank since the reference fill the spare room, its own box does not.
REFINE_MARGIN = 0.05
BOX_MARGIN_MIN = 5.0
#: Pixels by which :func:`hull_overlap` grows both hulls: a small structure that moved by a few
#: pixels between two slices has hulls that barely overlap although the model found it.
HULL_TOLERANCE = 4


class SliceTimings:
    """Seconds spent in decoder calls (with upscaling) and deriving prompts and rings (mining),
    summed over the slices of one propagation."""

    def __init__(self) -> None:
        self.decode_s = self.mining_s = 0.0


def _hull(mask: np.ndarray) -> np.ndarray:
    """The filled convex hull of ``mask`` (OpenCV)."""
    points = cv2.findNonZero(mask.view(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(points), 1)
    return out.view(bool)


def _inner_classes(reference: Mapping[int, np.ndarray]) -> dict[int, int]:
    """Ring class -> the class it encloses: a class whose convex hull holds most of another class
    while the two barely overlap (an open ring, a C-shaped basal myocardium, counts too)."""
    rings = {}
    for c, mask in reference.items():
        hull = _hull(mask)
        for k, other in reference.items():
            if k != c and other.any() and (other & hull).sum() > 0.7 * other.sum() and other.sum() < hull.sum():
                rings[c] = k
                break
    return rings


def _shell(inner: np.ndarray, thickness: float) -> np.ndarray:
    """Pixels outside ``inner`` within ``thickness`` of it."""
    distance = distance_transform(~inner)
    return (distance > 0) & (distance <= thickness)


def _thickness(ring: np.ndarray, inner: np.ndarray) -> float:
    """The shell thickness around ``inner`` that best matches ``ring`` (Dice)."""
    distance = distance_transform(~inner)
    scores = [dice((distance > 0) & (distance <= t), ring) for t in _THICKNESSES]
    return float(_THICKNESSES[int(np.argmax(scores))])


def _grown(tight: np.ndarray, shape: tuple, fraction: float = BOX_MARGIN) -> np.ndarray:
    """XYXY boxes grown by ``fraction`` of their side (at least ``BOX_MARGIN_MIN`` px), clipped."""
    boxes = tight.astype(np.float32)
    side = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], 1)
    margin = np.maximum(fraction * side, BOX_MARGIN_MIN)
    boxes[:, :2] -= margin
    boxes[:, 2:] += margin
    h, w = shape
    return np.clip(boxes, 0, [w - 1, h - 1, w - 1, h - 1]).astype(np.float32)


def hull_overlap(a: np.ndarray, b: np.ndarray, tolerance: int = HULL_TOLERANCE) -> float:
    """|H(a) & H(b)| / min(|H(a)|, |H(b)|) of the convex hulls H of two non-empty masks, each hull
    grown by ``tolerance`` pixels (an elliptic dilation): 1 when one hull holds the other, 0 when
    they are apart (the stopping test of :func:`~samedenhancer.propagate`).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((20, 40), bool); a[2:8, 2:8] = True
    >>> hull_overlap(a, a), hull_overlap(a, np.roll(a, 20, axis=1))
    (1.0, 0.0)
    """
    ha, hb = _hull(a), _hull(b)
    if tolerance > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
        ha, hb = (cv2.dilate(h.view(np.uint8), disc).view(bool) for h in (ha, hb))
    return float((ha & hb).sum() / min(ha.sum(), hb.sum()))


def segment_slice(predictor, embedding, reference: Mapping[int, np.ndarray], policy: str = "box",
                  timings: SliceTimings | None = None, *, refine: bool = True) -> dict[int, np.ndarray]:
    """One slice from reference masks (the previous slice's result, or any masks to take the
    prompts from): class -> boolean mask.

    Every class is prompted with the box (and, for point policies, the points) mined from its
    reference mask, grown by ``BOX_MARGIN``, all in one batched decoder call; overlaps go to the
    higher logit. A ring class (see the module notes) whose inner class is segmented here is the
    shell around the new inner mask with the thickness fitted on the reference. With ``refine``
    (the default), a second decoder call prompts every class again from its first answer, grown by
    only ``REFINE_MARGIN``.
    """
    return segment_with_confidence(predictor, embedding, reference, policy, timings, refine)[0]


def segment_with_confidence(predictor, embedding, reference: Mapping[int, np.ndarray], policy: str,
                            timings: SliceTimings | None, refine: bool = True) -> tuple[dict, dict]:
    """:func:`segment_slice`'s masks and each class's confidence: the mean logit of the last
    decoder call inside the class's mask (NaN for a ring drawn as a shell, and for an empty mask)."""
    first = _segment_once(predictor, embedding, reference, policy, timings, BOX_MARGIN)
    if not refine:
        return first
    again = {c: first[0][c] if c in first[0] and first[0][c].any() else mask for c, mask in reference.items()}
    return _segment_once(predictor, embedding, again, policy, timings, REFINE_MARGIN)


def _prompt_classes(reference: Mapping[int, np.ndarray], classes: list[int]):
    """The prompts of ``classes``' reference masks, mined as one label map (the classes numbered
    1..K in ascending order, so any class ids fit); and the class of each prompt."""
    order = sorted(classes)
    number = {c: i + 1 for i, c in enumerate(order)}
    label_map = np.zeros(next(iter(reference.values())).shape, np.int32)
    for c in classes:
        label_map[reference[c] & (label_map == 0)] = number[c]
    prompts = mine_prompts(label_map, prior="single", min_fraction=0.0, min_area=1)
    return prompts, [order[i - 1] for i in prompts.class_ids.tolist()]


def _segment_once(predictor, embedding, reference: Mapping[int, np.ndarray], policy: str,
                  timings: SliceTimings | None, margin: float) -> tuple[dict, dict]:
    start = time.perf_counter()
    classes = [c for c, m in reference.items() if m.any()]
    if not classes:
        return {}, {}
    shape = next(iter(reference.values())).shape
    prompts, ids = _prompt_classes(reference, classes)
    rings = _inner_classes({c: reference[c] for c in classes})
    thickness = {c: _thickness(reference[c], reference[k]) for c, k in rings.items()}
    mined = time.perf_counter()
    boxes = _grown(prompts.tight_boxes, shape, margin)
    if policy == "box":
        low, _ = predictor.decode(embedding, box=boxes)
    else:
        low, _ = predictor.decode(embedding, point_coords=prompts.points.astype(np.float32),
                                  point_labels=prompts.point_labels, box=boxes)
    logits = predictor.upscale(embedding, low[:, :1])[:, 0]
    decoded = time.perf_counter()
    out, drawn = _resolve(logits, ids, rings, thickness, shape)
    confidence = {c: float(logits[i][out[c]].mean()) if out[c].any() and c not in drawn else math.nan
                  for i, c in enumerate(ids)}
    if timings is not None:
        timings.mining_s += (mined - start) + (time.perf_counter() - decoded)
        timings.decode_s += decoded - mined
    return out, confidence


def _resolve(logits: np.ndarray, ids: list[int], rings: dict[int, int], thickness: dict[int, float],
             shape: tuple) -> tuple[dict[int, np.ndarray], set]:
    """Each class's mask from the decoded logits (overlaps to the higher logit) with the rings drawn
    around their inner class; and the rings drawn as a shell (not read from logits)."""
    # A ring's own decode asks for the disc (its inner class): it takes part in the competition for
    # pixels only where its inner class came out empty.
    shelled = [c for c, k in rings.items() if k in ids]
    competing = np.array([c not in shelled for c in ids])
    if competing.any():
        best = np.argmax(np.where(competing[:, None, None], logits, -np.inf), axis=0)
        out = {c: (logits[i] > 0) & (best == i) & competing[i] for i, c in enumerate(ids)}
    else:
        out = {c: np.zeros(shape, bool) for c in ids}
    for c in shelled:
        inner = out[rings[c]]
        if not inner.any():
            i = ids.index(c)
            out[c] = (logits[i] > 0) & ~np.any([out[k] for k in out if k != c], axis=0)
            continue
        shell = _shell(inner, thickness[c])
        for other in out:
            if other != c:
                out[other] = out[other] & ~shell
        out[c] = shell
    return out, {c for c in shelled if out[rings[c]].any()}
