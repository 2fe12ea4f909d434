"""Coarse masks in: label-map validation (the single place where coarse masks are checked and soft
maps thresholded: :func:`as_label_map`) and the coarse map's log-odds (soft fusion)."""

from __future__ import annotations

import numpy as np

from ..validation import instance, number

__all__ = ["as_label_map", "check_label_map", "coarse_log_odds", "validate_threshold"]

_LABEL_DTYPES = (np.bool_, np.uint8, np.uint16, np.int32, np.int64)
_LABEL_NAMES = "bool, uint8, uint16, int32 or int64"
#: A uint8 map without a threshold holding more classes than this is refused as a likely 0..255 soft map.
MAX_UINT8_LABELS = 32


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
    instance(mask, name, np.ndarray, "a numpy array")
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
