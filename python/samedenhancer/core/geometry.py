"""Connected components (area, box, perimeter) and the exact n-D distance transform, from the C++
core."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _core, validation
from .labels import _LABEL_DTYPES, _label_array

__all__ = ["ComponentStats", "connected_components", "distance_transform"]


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
        Each value at least 1e-18, and the image's diagonal in these units,
        ``sqrt(sum((spacing * mask.shape) ** 2))``, at most 1e18 (so every squared distance is a
        normal float32).

    Returns
    -------
    ndarray, float32, the shape of `mask`

    Raises
    ------
    TypeError
        For another dtype, or a spacing that is not numbers.
    ValueError
        For another number of axes, an empty array, NaN values, or a spacing out of range.

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
