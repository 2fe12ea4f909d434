"""Prompt mining: a coarse label map -> boxes, points and regions per class (Morphological
Split-Filter-Fuse, then one box and two points per merged region), from the C++ core."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np

from .. import _core
from ..validation import flag, integer, number
from .labels import as_label_map

__all__ = ["MiningOptions", "Prompts", "mine_prompts"]

_PRIORS = ("single", "multi")
Prior = Union[str, Mapping[int, str]]
_MAX_CLASS = int(np.iinfo(np.int32).max)  # class ids are int32


@dataclass(frozen=True)
class Prompts:
    """Prompts mined from a coarse label map: one row per merged region, all classes together.

    Attributes
    ----------
    class_ids : ndarray, int32, shape (R,)
        Class of each region (regions are ordered by class, then by their first pixel).
    boxes : ndarray, int32, shape (R, 4)
        XYXY inclusive, tight box grown by the margin and clipped to the image.
    tight_boxes : ndarray, int32, shape (R, 4)
        XYXY inclusive tight boxes.
    points : ndarray, int32, shape (R, 2, 2)
        (x, y) of the positive point, then of the negative point ((0, 0) where there is none).
    point_labels : ndarray, int32, shape (R, 2)
        (1, 0), or (1, -1) where the ring is empty (-1 is SAM's padding point, ignored by decoders).
    has_negative : ndarray, bool, shape (R,)
    areas : ndarray, int64, shape (R,)
        Pixels of each merged region.
    ipq : ndarray, float32, shape (R,)
        Isoperimetric quotient 4 pi A / P^2 (P the summed member perimeters), clamped to <= 1.
    regions : ndarray, int32, shape (H, W)
        i + 1 where a pixel belongs to region i, 0 elsewhere.
    label_map : ndarray, shape (H, W)
        The validated (and, for soft maps, thresholded) input.
    classes : ndarray, int32
        Every nonzero class present, ascending.
    dropped_classes : ndarray, int32
        Classes present but without any surviving region (the caller keeps them unchanged).
    """

    class_ids: np.ndarray
    boxes: np.ndarray
    tight_boxes: np.ndarray
    points: np.ndarray
    point_labels: np.ndarray
    has_negative: np.ndarray
    areas: np.ndarray
    ipq: np.ndarray
    regions: np.ndarray
    label_map: np.ndarray
    classes: np.ndarray
    dropped_classes: np.ndarray

    def __len__(self) -> int:
        return int(self.class_ids.shape[0])


def _split_prior(prior: Prior) -> tuple[bool, tuple[int, ...], tuple[int, ...]]:
    if isinstance(prior, str):
        if prior not in _PRIORS:
            raise ValueError(f"prior must be 'single', 'multi' or a dict class -> 'single'/'multi', got {prior!r}")
        return prior == "single", (), ()
    if not isinstance(prior, Mapping):
        raise TypeError(f"prior must be 'single', 'multi' or a dict class -> 'single'/'multi', got {prior!r}")
    single, multi = [], []
    for cls, mode in prior.items():
        if isinstance(cls, bool) or not isinstance(cls, numbers.Integral) or not 1 <= int(cls) <= _MAX_CLASS:
            raise ValueError(f"prior keys must be class labels in [1, {_MAX_CLASS}], got {cls!r}")
        if mode not in _PRIORS:
            raise ValueError(f"prior[{cls!r}] must be 'single' or 'multi', got {mode!r}")
        (single if mode == "single" else multi).append(int(cls))
    return False, tuple(single), tuple(multi)


@dataclass(frozen=True)
class MiningOptions:
    """How prompts are mined from a coarse mask (see :func:`mine_prompts`); validated when made.

    Attributes
    ----------
    prior : {"multi", "single"} or dict
        Domain prior, for all classes or per class (``{class: "single" | "multi"}``; classes not
        in the dict use "multi"). ``"single"`` keeps the largest merged region.
    ipq_filter : bool
        Apply the isoperimetric-quotient filter (for compact targets such as cells or nodules).
    ring_radius : int
        Radius in pixels of the ring searched for the negative point (>= 0).
    box_margin : int, optional
        Pixels added on each side of the tight box; default ``min(10, side // 10)`` per axis.
    min_area : int
        Smallest component kept, in pixels.
    min_fraction : float
        Smallest component kept, as a fraction of its class's pixels, in [0, 1].

    Examples
    --------
    >>> MiningOptions(prior="single").ring_radius
    20
    >>> MiningOptions(ring_radius=-1)
    Traceback (most recent call last):
    ...
    ValueError: ring_radius must be an integer >= 0, got -1
    """

    prior: Prior = "multi"
    ipq_filter: bool = False
    ring_radius: int = 20
    box_margin: int | None = None
    min_area: int = 5
    min_fraction: float = 0.1

    def __post_init__(self) -> None:
        _split_prior(self.prior)
        object.__setattr__(self, "ipq_filter", flag(self.ipq_filter, "ipq_filter"))
        object.__setattr__(self, "ring_radius", integer(self.ring_radius, "ring_radius", 0))
        if self.box_margin is not None:
            object.__setattr__(self, "box_margin", integer(self.box_margin, "box_margin", 0))
        object.__setattr__(self, "min_area", integer(self.min_area, "min_area", 0))
        object.__setattr__(self, "min_fraction", number(self.min_fraction, "min_fraction", 0, 1))

    def replace(self, **changes) -> "MiningOptions":
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)


def mine_prompts(coarse, options: MiningOptions | None = None, *, threshold: float | None = None, **overrides) -> Prompts:
    """Morphological Split-Filter-Fuse and prompt mining for every class of a coarse mask, in one
    call that releases the GIL.

    Per class: 8-connected components; keep those with ``area >= min_area`` and
    ``area >= min_fraction`` x the class's pixels; optionally keep those with IPQ >= the mean IPQ of
    the kept set; fuse with SAMRefiner's box-merge criterion; ``"single"`` keeps the largest merged
    region. Per merged region: the positive point is the pixel farthest (exact Euclidean distance)
    from everything outside the region, the image border included; the negative point is the pixel
    of the ring (region dilated by a Euclidean disk of radius `ring_radius`, minus every pixel of the
    class) farthest from the region. Ties go to the first pixel in raster order.

    Parameters
    ----------
    coarse : ndarray, shape (H, W)
        A label map or soft map, see :func:`as_label_map`.
    options : MiningOptions, optional
        Mining options (default ``MiningOptions()``).
    threshold : float, optional
        Soft-map threshold, see :func:`as_label_map`.
    **overrides
        Fields of :class:`MiningOptions` (``prior``, ``ipq_filter``, ``ring_radius``,
        ``box_margin``, ``min_area``, ``min_fraction``) that replace those of ``options``.

    Returns
    -------
    Prompts

    References
    ----------
    SAMedEnhancer: "Generic medical image segmentation enhancement by adapting Segment Anything
    Model" (MSFF and hierarchical prompts); Lin et al. (2025), SAMRefiner, ICLR, arXiv:2502.06756
    (the merge criterion).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((40, 40), np.uint8)
    >>> mask[10:21, 5:16] = 1
    >>> p = mine_prompts(mask, ring_radius=5)
    >>> p.class_ids.tolist(), p.tight_boxes.tolist(), p.boxes.tolist()
    ([1], [[5, 10, 15, 20]], [[4, 9, 16, 21]])
    >>> p.points.tolist(), p.point_labels.tolist()
    ([[[10, 15], [5, 5]]], [[1, 0]])
    """
    if options is None:
        options = MiningOptions(**overrides)
    elif not isinstance(options, MiningOptions):
        raise TypeError(f"options must be a MiningOptions, got {type(options).__name__}")
    elif overrides:
        options = options.replace(**overrides)
    label_map = as_label_map(coarse, threshold)
    default_single, single, multi = _split_prior(options.prior)
    # Values past the image's extent change nothing; capping them keeps Python ints inside int64.
    extent = label_map.shape[0] + label_map.shape[1]
    margin = None if options.box_margin is None else min(options.box_margin, extent)
    mined = _core.mine_prompts(
        label_map,
        ring_radius=min(options.ring_radius, extent),
        box_margin=margin,
        min_area=min(options.min_area, label_map.size + 1),
        min_fraction=options.min_fraction,
        ipq_filter=options.ipq_filter,
        default_single=default_single,
        single=list(single),
        multi=list(multi),
    )
    return Prompts(
        class_ids=mined.class_ids,
        boxes=mined.boxes,
        tight_boxes=mined.tight_boxes,
        points=mined.points,
        point_labels=mined.point_labels,
        has_negative=mined.has_negative,
        areas=mined.areas,
        ipq=mined.ipq,
        regions=mined.regions,
        label_map=label_map,
        classes=mined.classes,
        dropped_classes=mined.dropped_classes,
    )
