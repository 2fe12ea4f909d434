"""Connected components, the exact distance transform and prompt mining: the numpy facade of the
C++ core (``samedenhancer._core``).

Every function validates its input here (the single place where coarse masks are checked and soft
maps thresholded: :func:`as_label_map`), hands C-contiguous arrays to the C++ core, which releases
the GIL, and returns fixed result types.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Union

import numpy as np

from . import _core, validation
from .validation import flag, integer, number

__all__ = [
    "ComponentStats",
    "MiningOptions",
    "Prompts",
    "as_label_map",
    "coarse_log_odds",
    "connected_components",
    "distance_transform",
    "mine_prompts",
    "validate_threshold",
]

_LABEL_DTYPES = (np.bool_, np.uint8, np.uint16, np.int32, np.int64)
_LABEL_NAMES = "bool, uint8, uint16, int32 or int64"
#: A uint8 map without a threshold holding more classes than this is refused as a likely 0..255 soft map.
MAX_UINT8_LABELS = 32
_PRIORS = ("single", "multi")
Prior = Union[str, Mapping[int, str]]


def _as_2d(array, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (H, W), got an array of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must have at least one pixel, got an array of shape {array.shape}")
    return array


def _label_array(array, name: str) -> np.ndarray:
    """``array`` as a C-contiguous integer label map (bool viewed as uint8), or TypeError/ValueError."""
    array = _as_2d(array, name)
    if array.dtype.type not in _LABEL_DTYPES:
        raise TypeError(f"{name} must be a label map of dtype {_LABEL_NAMES}, got dtype {array.dtype}")
    array = np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    if array.dtype.kind == "i":
        low = array.min()
        if low < 0:
            raise ValueError(f"{name} must hold labels >= 0, got a minimum of {low}")
        if array.dtype == np.int64:
            high = array.max()
            if high > np.iinfo(np.int32).max:
                raise ValueError(f"{name} must hold labels <= {np.iinfo(np.int32).max}, got a maximum of {high}")
    return array


def check_label_map(mask, name: str = "mask") -> np.ndarray:
    """Validate ``mask`` as a 2-D bool or integer label map with at least one pixel and no negative
    label (``TypeError``/``ValueError`` naming ``name``); return it C-contiguous, bool viewed as
    uint8. Soft maps are not accepted here: see :func:`as_label_map`."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(mask).__name__}")
    return _label_array(mask, name)


def as_label_map(coarse, threshold: float | None = None) -> np.ndarray:
    """Validate a coarse mask and return it as a C-contiguous integer label map.

    Parameters
    ----------
    coarse : ndarray, shape (H, W)
        A label map (bool, uint8, uint16, int32 or int64; 0 = background, 1..K = classes) in any
        memory order, or a soft map: float16/32/64 probabilities in [0, 1], or uint8 0..255 when
        `threshold` is given.
    threshold : float, optional
        Soft maps only: a pixel is foreground where its value is ``> threshold``. Default 0.5 for
        float maps (a threshold there must be in [0, 1]); for uint8 maps, giving it (e.g. 127)
        marks the input as a 0..255 soft map.

    Returns
    -------
    ndarray, shape (H, W)
        The label map itself (uint8 for bool input, C-contiguous; a copy only where needed) or, for a
        soft map, uint8 0/1.

    Raises
    ------
    TypeError
        For another dtype.
    ValueError
        For arrays that are not 2-D or empty, negative labels, NaN or values outside [0, 1] in a
        float map, or a threshold out of range or given for a label dtype other than uint8. Two
        guards against plausible wrong output: a uint8 map without `threshold` holding more than
        ``MAX_UINT8_LABELS`` (32) classes is refused as a likely 0..255 probability map (store
        label maps of more classes as uint16), and a uint8 0/1 map with ``threshold >= 1`` is
        refused (it would come out empty). A 0/255 binary mask without `threshold` is one class,
        label 255, and comes back as 0/255.

    Examples
    --------
    >>> import numpy as np
    >>> as_label_map(np.array([[0.2, 0.7], [0.5, 0.9]])).tolist()
    [[0, 1], [0, 1]]
    >>> as_label_map(np.array([[0, 200], [128, 255]], np.uint8), threshold=127).tolist()
    [[0, 1], [1, 1]]
    """
    array = _as_2d(coarse, "coarse")
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            raise ValueError("coarse must be a soft map without NaN, got NaN values")
        low, high = array.min(), array.max()
        if low < 0 or high > 1:
            raise ValueError(f"coarse must be a soft map with values in [0, 1], got values in [{low}, {high}]")
        if threshold is not None and number(threshold, "threshold", 0, 255) > 1:
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}: a float soft map holds "
                             "probabilities; thresholds above 1 are for uint8 0..255 maps")
        t = 0.5 if threshold is None else float(threshold)
        return np.ascontiguousarray(array > t).view(np.uint8)
    if threshold is not None:
        if array.dtype != np.uint8:
            raise ValueError(
                f"threshold applies to float soft maps and uint8 0..255 soft maps, got threshold={threshold!r} "
                f"for coarse of dtype {array.dtype}"
            )
        t = number(threshold, "threshold", 0, 255)
        if t >= 1 and array.max() == 1:
            raise ValueError(f"coarse holds only 0 and 1, a label map, but threshold={threshold!r} would make it empty: "
                             "give no threshold for label maps")
        return np.ascontiguousarray(array > t).view(np.uint8)
    if array.dtype == np.uint8:
        values = np.count_nonzero(np.bincount(np.ascontiguousarray(array).ravel(), minlength=256))
        if values > MAX_UINT8_LABELS + 1:
            raise ValueError(
                f"coarse is a uint8 map with {values} distinct values and no threshold: it looks like a 0..255 "
                f"probability map, not a label map; give threshold (e.g. 127), or store a label map of more than "
                f"{MAX_UINT8_LABELS} classes as uint16"
            )
    if array.dtype.type not in _LABEL_DTYPES:
        raise TypeError(
            f"coarse must be a label map of dtype {_LABEL_NAMES} or a float soft map, got dtype {array.dtype}"
        )
    return _label_array(array, "coarse")


def validate_threshold(threshold) -> float | None:
    """``threshold`` checked as a soft-map threshold could be: ``None`` or a number in [0, 255]
    (whether it must be in [0, 1], for a float map, is checked against each map)."""
    return None if threshold is None else number(threshold, "threshold", 0, 255)


#: Probabilities are clipped to [EPS, 1 - EPS] before taking log-odds (8-bit maps: +-6.2 at 0 / 255).
LOG_ODDS_EPS = 1.0 / 512.0


def coarse_log_odds(coarse, threshold: float | None = None) -> np.ndarray | None:
    """The coarse segmenter's evidence per pixel, as log-odds relative to its threshold.

    ``log(p / (1 - p)) - log(t / (1 - t))`` with ``p`` the soft map's probability (0..255 maps are
    divided by 255) and ``t`` the threshold that makes the coarse label map, so the evidence is
    positive exactly where the coarse label map is foreground. Probabilities are clipped to
    ``[LOG_ODDS_EPS, 1 - LOG_ODDS_EPS]``.

    Parameters
    ----------
    coarse : ndarray, shape (H, W)
        As for :func:`as_label_map` (validated there).
    threshold : float, optional
        As for :func:`as_label_map`.

    Returns
    -------
    ndarray of float32, shape (H, W), or None
        None where there is no probability to read: a label map (integer or bool dtype without a
        threshold), or a soft map holding two values or fewer (a binary mask stored as a soft map).

    Examples
    --------
    >>> import numpy as np
    >>> coarse_log_odds(np.array([[0.0, 1.0]])) is None
    True
    >>> [round(float(v), 2) for v in coarse_log_odds(np.array([[0.1, 0.5, 0.9]]))[0]]
    [-2.2, 0.0, 2.2]
    """
    array = _as_2d(coarse, "coarse")
    if array.dtype.kind == "f":
        t = 0.5 if threshold is None else number(threshold, "threshold", 0, 1)
        scale = np.float32(1.0)
    elif threshold is not None and array.dtype == np.uint8:
        t = number(threshold, "threshold", 0, 255)
        scale = np.float32(1.0 / 255.0)
    else:
        return None
    low, high = array.min(), array.max()
    if not ((array > low) & (array < high)).any():
        return None

    def log_odds(values: np.ndarray) -> np.ndarray:
        p = np.clip(values.astype(np.float32) * scale, LOG_ODDS_EPS, 1.0 - LOG_ODDS_EPS).astype(np.float32)
        return np.log(p) - np.log1p(-p)

    # The threshold goes through the same float32 operations as the map: exactly 0 where p == t.
    offset = log_odds(np.array([t]))[0]
    if array.dtype == np.uint8:  # 256 values: one table lookup per pixel
        return (log_odds(np.arange(256, dtype=np.uint8)) - offset)[array]
    return log_odds(array) - offset


class ComponentStats(NamedTuple):
    """Per-component statistics; row ``i`` describes label ``i + 1``.

    Attributes
    ----------
    areas : ndarray, int64, shape (N,)
        Pixel counts.
    boxes : ndarray, int32, shape (N, 4)
        Tight boxes XYXY, inclusive pixel coordinates.
    perimeters : ndarray, float64, shape (N,)
        Length of the outer 8-connected border as OpenCV's ``findContours`` (RETR_EXTERNAL,
        CHAIN_APPROX_NONE) + ``arcLength(closed=True)`` measures it (0 for one pixel).
    """

    areas: np.ndarray
    boxes: np.ndarray
    perimeters: np.ndarray


def connected_components(mask, connectivity: int = 8) -> tuple[np.ndarray, ComponentStats]:
    """Label the connected components of a mask or label map, with area, box and perimeter.

    Pixels connect when they are neighbours and hold the same nonzero value, so the classes of a
    label map are labelled separately in one pass. Components are numbered 1..N in raster order of
    their first pixel (top-most row, then left-most column).

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        bool, uint8, uint16, int32 or int64 (values >= 0), any memory order.
    connectivity : {8, 4}
        Neighbourhood.

    Returns
    -------
    labels : ndarray, int32, shape (H, W)
        0 for background, i + 1 for component i.
    stats : ComponentStats

    References
    ----------
    He, Chao & Suzuki (2008), A run-based two-scan labeling algorithm, IEEE TIP 17(5):749-756.
    Suzuki & Abe (1985), Topological structural analysis of digitized binary images by border
    following, CVGIP 30(1):32-46 (the perimeter).

    Examples
    --------
    >>> import numpy as np
    >>> labels, stats = connected_components(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 2]], np.uint8))
    >>> labels.tolist()
    [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    >>> stats.areas.tolist(), stats.boxes.tolist()
    ([2, 1], [[0, 0, 1, 1], [2, 2, 2, 2]])
    """
    if isinstance(connectivity, (bool, np.bool_)) or connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    array = _label_array(mask, "mask")
    labels, areas, boxes, perimeters = _core.connected_components(array, int(connectivity))
    return labels, ComponentStats(areas, boxes, perimeters)


def distance_transform(mask, spacing=None) -> np.ndarray:
    """Exact Euclidean distance of every nonzero pixel (voxel) to the nearest zero one, in units of
    `spacing`.

    SciPy's ``distance_transform_edt(mask, sampling=spacing)`` convention: zero pixels get 0 and
    pixels outside the image are not zeros. A mask without any zero pixel gives +inf everywhere.

    Parameters
    ----------
    mask : ndarray, shape (H, W) or (D, H, W)
        bool, uint8, uint16, int32, int64, float32 or float64 (nonzero = feature; no NaN), any
        memory order.
    spacing : float or sequence of float, optional
        Pixel (voxel) size along each axis, e.g. (z, y, x) in mm; one number for all axes; default 1.

    Returns
    -------
    ndarray, float32, the shape of `mask`

    References
    ----------
    Felzenszwalb & Huttenlocher (2012), Distance Transforms of Sampled Functions, Theory of
    Computing 8:415-428, doi:10.4086/toc.2012.v008a019.

    Examples
    --------
    >>> import numpy as np
    >>> distance_transform(np.array([[0, 1, 1, 1]], np.uint8)).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    >>> distance_transform(np.array([[[0]], [[1]], [[1]]], np.uint8), spacing=(2.5, 1, 1)).ravel().tolist()
    [0.0, 2.5, 5.0]
    """
    array = mask if isinstance(mask, np.ndarray) else np.asarray(mask)
    if array.ndim not in (2, 3):
        raise ValueError(f"mask must be a 2-D (H, W) or 3-D (D, H, W) array, got an array of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"mask must have at least one pixel, got an array of shape {array.shape}")
    sizes = validation.spacing(spacing, "spacing", array.ndim)
    if array.dtype.type not in _LABEL_DTYPES + (np.float32, np.float64):
        raise TypeError(
            f"mask must be of dtype bool, uint8, uint16, int32, int64, float32 or float64, got dtype {array.dtype}"
        )
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError("mask must not contain NaN, got NaN values")
    array = np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    return _core.distance_transform(array, list(sizes))


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
        if isinstance(cls, bool) or not isinstance(cls, numbers.Integral) or int(cls) < 1:
            raise ValueError(f"prior keys must be class labels >= 1, got {cls!r}")
        if mode not in _PRIORS:
            raise ValueError(f"prior[{cls!r}] must be 'single' or 'multi', got {mode!r}")
        (single if mode == "single" else multi).append(int(cls))
    return False, tuple(single), tuple(multi)


@dataclass(frozen=True)
class MiningOptions:
    """How prompts are mined from a coarse mask (METHOD.md §1-2); validated when made.

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
    radius, area, fraction = options.ring_radius, options.min_area, options.min_fraction
    margin = -1 if options.box_margin is None else options.box_margin
    # Values past the image's extent change nothing; clipping keeps them inside int64 for the core.
    extent = label_map.shape[0] + label_map.shape[1]
    radius, margin, area = min(radius, extent), min(margin, extent), min(area, label_map.size + 1)
    out = _core.mine_prompts(label_map, radius, margin, area, fraction, options.ipq_filter, default_single, list(single), list(multi))
    class_ids, boxes, tight, points, point_labels, has_negative, areas, ipq, regions, classes, dropped = out
    return Prompts(
        class_ids=class_ids,
        boxes=boxes,
        tight_boxes=tight,
        points=points,
        point_labels=point_labels,
        has_negative=has_negative,
        areas=areas,
        ipq=ipq,
        regions=regions,
        label_map=label_map,
        classes=classes,
        dropped_classes=dropped,
    )
