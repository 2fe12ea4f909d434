"""Argument checks shared by every public entry point: one rule for what a number, an integer, a
flag or a choice is, and one wording for the error.

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
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["choice", "flag", "integer", "number", "spacing"]


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
