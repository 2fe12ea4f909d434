"""The one rule for argument checks (``samedenhancer.validation``): TypeError for the wrong kind,
ValueError for out of range, each naming the parameter, what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import validation


def test_coordinates_are_real_finite_and_near_the_image():
    assert validation.coordinates([[1, 2], [3, 4]], "point_coords", (10, 20)).dtype == np.float64
    assert validation.coordinates([-20, -10, 39, 19], "box", (10, 20)).tolist() == [-20, -10, 39, 19]
    with pytest.raises(ValueError, match=r"box must lie within one image size of the 20x10 image \(-20 <= x <= 39"):
        validation.coordinates([0, 0, 40, 5], "box", (10, 20))
    with pytest.raises(ValueError, match=r"got 1e\+300"):
        validation.coordinates([0, 1e300], "point", (10, 20))
    with pytest.raises(ValueError, match="inside the 20x10 image"):
        validation.coordinates([0, 0, 20, 5], "box", (10, 20), inside=True)
    with pytest.raises(ValueError, match="point must be finite"):
        validation.coordinates([0, np.nan], "point", (10, 20))
    with pytest.raises(TypeError, match="box must hold real numbers, got dtype bool"):
        validation.coordinates([True, False, True, True], "box")
    with pytest.raises(TypeError, match="real numbers"):
        validation.coordinates(["1", "2"], "point")
    with pytest.raises(ValueError, match="x, y pairs"):
        validation.coordinates([1, 2, 3], "point", (10, 20))


def test_pixels_round_and_must_lie_inside():
    assert validation.pixel((np.float32(3.4), np.int64(4)), "click", (10, 20)) == (3, 4)
    with pytest.raises(ValueError, match=r"click \(20, 4\) is outside the 20x10 image"):
        validation.pixel((20, 4), "click", (10, 20))
    with pytest.raises(ValueError, match="click must be \\(x, y\\)"):
        validation.pixel(5, "click", (10, 20))
    with pytest.raises(TypeError, match="click x must be a number"):
        validation.pixel((True, 4), "click", (10, 20))


def test_instances_and_size_limits():
    assert validation.instance(3, "n", int) == 3
    with pytest.raises(TypeError, match="options must be a samedenhancer.EnhanceOptions, got dict"):
        validation.instance({}, "options", tuple, "a samedenhancer.EnhanceOptions")
    with pytest.raises(TypeError, match="x must be a int or a float, got str"):
        validation.instance("1", "x", (int, float))
    validation.at_most(5, "coarse", None, "classes", "")  # no limit
    validation.at_most(5, "coarse", 5, "classes", "")
    with pytest.raises(ValueError, match="coarse has 6 classes, more than the limit of 5: raise it"):
        validation.at_most(6, "coarse", 5, "classes", "raise it")


def test_finite_arrays():
    assert validation.finite_array([1, 2], "mask").tolist() == [1, 2]
    with pytest.raises(ValueError, match="mask must be finite"):
        validation.finite_array([np.inf], "mask")
    with pytest.raises(TypeError, match="mask must hold real numbers, got dtype object"):
        validation.finite_array(np.array([None]), "mask")
