"""Masks as files store them: the first channel of a colour mask, labels in a label dtype."""

from __future__ import annotations

import numpy as np


def stored_mask(array: np.ndarray) -> np.ndarray:
    """A mask as stored in an image or frame: the first channel of a colour one, labels in a label
    dtype (:func:`stored_labels`). Shared by :func:`read_mask` and the frame readers."""
    if array.ndim == 3:
        array = np.ascontiguousarray(array[..., 0])
    return stored_labels(array)


def stored_labels(array: np.ndarray) -> np.ndarray:
    """Labels as the file stored them, in a label dtype: bool -> uint8; signed integers and floats
    holding only whole numbers >= 0 (labels saved as int16 or float) -> uint8 / uint16; anything
    else (soft maps, negative values) unchanged."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    signed = array.dtype.kind == "i" and array.dtype.itemsize < 4  # int8/int16: not a label dtype
    whole = array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all()
    if (signed or whole) and array.size and array.min() >= 0 and array.max() <= 65535:
        return array.astype(np.uint8 if array.max() <= 255 else np.uint16)
    return array
