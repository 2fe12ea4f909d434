"""Per-image segmentation metrics with MedPy's conventions: Dice, HD95 and ASSD.

Masks are binary (nonzero = foreground) images (H, W) or volumes (D, H, W), the spacing one value
per axis (mm for volumes): each value at least 1e-18 and the image's diagonal in those units
(``sqrt(sum((spacing * shape) ** 2))``) at most 1e18, so squared distances stay within float32's
range (``ValueError`` otherwise). Surface distances use the core's exact Euclidean distance
transform (``samedenhancer._core``; C++, the GIL released). Both masks empty: Dice 1, HD95 0, ASSD
0. Exactly one empty: Dice 0, HD95 and ASSD NaN (undefined; callers count them separately and never
average them as numbers).
"""

from __future__ import annotations

import numpy as np

from . import _core, validation

__all__ = ["assd", "dice", "hd95", "label_scores"]


def _pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("pred", pred), ("truth", truth)):
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        if array.ndim not in (2, 3):
            raise ValueError(f"{name} must be a 2-D (H, W) or 3-D (D, H, W) mask, got an array of shape {array.shape}")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a boolean or numeric mask, got dtype {array.dtype}")
        if array.dtype.kind == "f" and np.isnan(array).any():
            raise ValueError(f"{name} must not contain NaN, got NaN values")
        arrays.append(array)
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"truth must have the shape of pred {arrays[0].shape}, got {arrays[1].shape}")
    return tuple(np.ascontiguousarray(a if a.dtype == np.bool_ else a != 0).view(np.uint8) for a in arrays)


def dice(pred, truth) -> float:
    """Dice similarity coefficient ``2 |P & T| / (|P| + |T|)``; 1.0 when both are empty.

    Parameters
    ----------
    pred, truth : ndarray, shape (H, W) or (D, H, W)
        Binary masks (nonzero = foreground), any numeric or bool dtype.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 0]]))
    0.5
    """
    a, b = _pair(pred, truth)
    both, na, nb = _core.overlap(a, b)
    return 1.0 if na + nb == 0 else 2.0 * both / (na + nb)


def _surface(pred, truth, spacing) -> tuple[float, float]:
    """(HD95, ASSD); the core returns (0, 0) for two empty masks and NaN for one."""
    a, b = _pair(pred, truth)
    sizes = validation.spacing(spacing, "spacing", a.ndim)
    return _core.surface_metrics(a, b, list(sizes))


def hd95(pred, truth, spacing=None) -> float:
    """95th percentile of the symmetric surface distances (MedPy's ``hd95``).

    Surfaces are the masks XOR their erosion by the cross (4-connected in 2-D, 6-connected in
    3-D), the image border counting as background; distances are exact Euclidean, scaled by `spacing`.

    Parameters
    ----------
    pred, truth : ndarray, shape (H, W) or (D, H, W)
        Binary masks (nonzero = foreground).
    spacing : float or sequence of float, optional
        Pixel (voxel) size along each axis, (row, column) or (z, row, column), e.g. in mm; one
        number for all axes; default 1 (pixels).

    Returns
    -------
    float
        0.0 when both masks are empty, NaN when exactly one is.

    References
    ----------
    MedPy, ``medpy.metric.binary.hd95`` (Maier et al.).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((10, 10), bool); a[2:5, 2:5] = True
    >>> hd95(a, np.roll(a, 3, axis=1))
    3.0
    """
    return float(_surface(pred, truth, spacing)[0])


def assd(pred, truth, spacing=None) -> float:
    """Average symmetric surface distance (MedPy's ``assd``): the mean of both directed mean
    surface distances.

    Parameters
    ----------
    pred, truth : ndarray, shape (H, W) or (D, H, W)
        Binary masks (nonzero = foreground).
    spacing : float or sequence of float, optional
        Pixel (voxel) size along each axis; default 1.

    Returns
    -------
    float
        0.0 when both masks are empty, NaN when exactly one is.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((10, 10), bool); a[2:5, 2:5] = True
    >>> assd(a, np.roll(a, 3, axis=1), spacing=(1.0, 0.5))
    1.0
    """
    return float(_surface(pred, truth, spacing)[1])


def label_scores(pred, truth, spacing=None) -> tuple[float, float]:
    """Dice and HD95 of two label maps, each the mean over the classes present in either map.

    Binary masks are the one-class case. With no foreground anywhere the result is (1.0, 0.0). HD95
    is NaN when some class is empty in exactly one of the maps.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"truth must have the shape of pred {pred.shape}, got {truth.shape}")
    classes = sorted((set(np.unique(pred).tolist()) | set(np.unique(truth).tolist())) - {0}) or [1]
    dices = [dice(pred == c, truth == c) for c in classes]
    distances = [hd95(pred == c, truth == c, spacing=spacing) for c in classes]
    return float(np.mean(dices)), float(np.mean(distances))
