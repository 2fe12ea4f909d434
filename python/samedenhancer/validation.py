"""Argument checks shared by every public entry point: one rule for what a number, an integer, a
flag, a choice, an object of a given type or a pixel coordinate is, and one wording for the error.

NumPy scalars count as numbers (``np.int64(3)`` is an integer, ``np.float32(0.5)`` a real);
``bool`` never counts as a number. Every check raises ``TypeError`` for a value of the wrong kind
and ``ValueError`` for one out of range, naming the parameter, what was expected and what came.

Examples
--------
>>> import numpy as np
>>> integer(np.int64(3), "queue_size", low=1)
3
>>> number(300, "threshold", 0, 255)
Traceback (most recent call last):
...
ValueError: threshold must be a number in [0, 255], got 300
>>> pixel((3.2, 4.9), "click", (10, 20))
(3, 5)
>>> coordinates([0, 0, 1e300, 5], "box", (10, 20))
Traceback (most recent call last):
...
ValueError: box must lie within one image size of the 20x10 image (-20 <= x <= 39, -10 <= y <= 19), got 1e+300
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["at_most", "choice", "coordinates", "finite_array", "flag", "instance", "integer", "number", "pixel",
           "spacing"]


def _range(low, high) -> str:
    if low is not None and high is not None:
        return f" in [{low:g}, {high:g}]"
    if low is not None:
        return f" >= {low:g}"
    if high is not None:
        return f" <= {high:g}"
    return ""


def number(value, name: str, low: float | None = None, high: float | None = None, *, above: float | None = None) -> float:
    """``value`` as a finite float in ``[low, high]`` (and ``> above`` when given)."""
    expected = f"a number{_range(low, high)}" + (f" > {above:g}" if above is not None else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    result = float(value)
    if (
        not math.isfinite(result)
        or (low is not None and result < low)
        or (high is not None and result > high)
        or (above is not None and not result > above)
    ):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return result


def integer(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (Python or NumPy integers; not bool, not float)."""
    expected = f"an integer{_range(low, high)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    result = int(value)
    if (low is not None and result < low) or (high is not None and result > high):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return result


def flag(value, name: str) -> bool:
    """``value`` as a bool (``True``/``False`` or a NumPy bool; not 0/1)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(value, name: str, options) -> object:
    """``value`` when it is one of ``options``."""
    if isinstance(value, (list, dict, set, np.ndarray)) or value not in tuple(options):
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def instance(value, name: str, kind, expected: str | None = None):
    """``value`` when it is an instance of ``kind`` (a type or a tuple of types); ``expected``
    names it in the error (default: the type's name)."""
    if not isinstance(value, kind):
        if expected is None:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            expected = " or ".join(f"a {k.__name__}" for k in kinds)
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    return value


def at_most(count: int, name: str, limit: int | None, what: str, how_to_raise: str) -> None:
    """Refuse ``count`` (of ``what``, in ``name``) above ``limit`` (``None``: no limit) with a
    message saying how to raise the limit: the size guards of the pipeline."""
    if limit is not None and count > limit:
        raise ValueError(f"{name} has {count:,} {what}, more than the limit of {limit:,}: {how_to_raise}")


def finite_array(value, name: str) -> np.ndarray:
    """``value`` as an array of real numbers (bool or numeric dtype) without NaN or infinity."""
    array = np.asarray(value)
    if array.dtype != np.bool_ and array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return array


def coordinates(value, name: str, size: tuple | None = None, *, inside: bool = False) -> np.ndarray:
    """``value`` as a float64 array of finite pixel coordinates whose last axis holds x, y pairs
    (``(..., 2)`` points, ``(..., 4)`` XYXY boxes). With ``size = (H, W)`` every x and y lies
    within one image size of the image (``-W <= x <= 2W - 1``), or inside it with ``inside``
    (``0 <= x <= W - 1``): a coordinate far outside the image is a mistake, and at 1e300 it
    overflows the model's float32 input."""
    array = finite_array(value, name)
    if array.dtype == np.bool_:
        raise TypeError(f"{name} must hold real numbers, got dtype bool")
    array = array.astype(np.float64)
    if size is None or array.size == 0:
        return array
    height, width = size
    if array.ndim == 0 or array.shape[-1] % 2:
        raise ValueError(f"{name} must hold x, y pairs on its last axis, got shape {array.shape}")
    pairs = array.reshape(-1, 2)
    (x_low, x_high), (y_low, y_high) = ((0, width - 1), (0, height - 1)) if inside else ((-width, 2 * width - 1), (-height, 2 * height - 1))
    bad = (pairs[:, 0] < x_low) | (pairs[:, 0] > x_high) | (pairs[:, 1] < y_low) | (pairs[:, 1] > y_high)
    if bad.any():
        where = "inside" if inside else "within one image size of"
        row = pairs[np.flatnonzero(bad)[0]]
        value_out = row[0] if not x_low <= row[0] <= x_high else row[1]
        raise ValueError(f"{name} must lie {where} the {width}x{height} image ({x_low} <= x <= {x_high}, "
                         f"{y_low} <= y <= {y_high}), got {value_out:g}")
    return array


def pixel(value, name: str, size: tuple) -> tuple[int, int]:
    """``value`` as the integer pixel ``(x, y)`` (rounded) of an image of ``size = (H, W)``, inside it."""
    try:
        x, y = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (x, y), got {value!r}") from None
    x, y = number(x, f"{name} x"), number(y, f"{name} y")
    height, width = size
    xi, yi = int(round(x)), int(round(y))
    if not (0 <= xi < width and 0 <= yi < height):
        raise ValueError(f"{name} ({x:g}, {y:g}) is outside the {width}x{height} image (0 <= x < {width}, 0 <= y < {height})")
    return xi, yi


def spacing(value, name: str, ndim: int) -> tuple[float, ...]:
    """``value`` as ``ndim`` positive finite voxel sizes, one per axis: ``None`` is 1 on every
    axis, a single number is that size on every axis."""
    expected = f"a positive number or {ndim} positive numbers (one per axis)"
    if value is None:
        return (1.0,) * ndim
    values = (value,) * ndim if isinstance(value, numbers.Real) else value
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    values = tuple(values)
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) for v in values):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if len(values) != ndim or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return tuple(float(v) for v in values)
