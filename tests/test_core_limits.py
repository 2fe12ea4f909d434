"""The C++ core at the edges of its numbers (issue 30, items 7 and 20): absurd but representable
spacings, class ids, margins, fractions and sizes give a correct result or a clear ValueError,
through the numpy facade and through ``samedenhancer._core`` directly; never a crash, never a
silently wrong answer. The supported spacings: every value >= 1e-18 and the image's diagonal
sqrt(sum((spacing * shape)^2)) <= 1e18."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _core_helpers import medpy_assd, medpy_hd95
from scipy import ndimage

from samedenhancer import _core, connected_components, distance_transform, metrics, mine_prompts

SPACING_RANGE = r"spacing: expected positive values >= 1e-18 with the image's diagonal .* <= 1e18"
INT32_MAX = 2**31 - 1


def _blob(ndim: int) -> np.ndarray:
    mask = np.zeros((8,) * ndim, np.uint8)
    mask[(slice(2, 6),) * ndim] = 1
    return mask


def _spacing_entry_points():
    """(name, call(mask, spacing)) for every entry point that takes a spacing."""
    shifted = lambda m: np.roll(m, 1, axis=0)  # noqa: E731
    return [
        ("distance_transform", lambda m, s: distance_transform(m, s)),
        ("_core.distance_transform", lambda m, s: _core.distance_transform(m, list(s))),
        ("hd95", lambda m, s: metrics.hd95(m, shifted(m), s)),
        ("assd", lambda m, s: metrics.assd(m, shifted(m), s)),
        ("label_scores", lambda m, s: metrics.label_scores(m, shifted(m), s)),
        ("_core.surface_metrics", lambda m, s: _core.surface_metrics(m, shifted(m), list(s))),
    ]


ENTRY_POINTS = _spacing_entry_points()


# -- item 7: the EDT's spacing --------------------------------------------------------------------
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("value", [1e154, 1e200, 1.7e308, 1e19, 1e-19, 1e-170, 1e-320, 5e-324])
@pytest.mark.parametrize(("name", "call"), ENTRY_POINTS, ids=[n for n, _ in ENTRY_POINTS])
def test_spacing_out_of_range_is_a_clear_error(name, call, ndim, value):
    """Each axis alone out of range, the others 1: 1e154 segfaulted (inf - inf in the envelope),
    subnormal spacings divided 0 by 0."""
    for axis in range(ndim):
        spacing = [1.0] * ndim
        spacing[axis] = value
        with pytest.raises(ValueError, match=SPACING_RANGE):
            call(_blob(ndim), tuple(spacing))


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(("name", "call"), ENTRY_POINTS, ids=[n for n, _ in ENTRY_POINTS])
def test_spacing_inf_and_nan_are_refused(name, call, ndim):
    for value in (math.inf, -math.inf, math.nan, 0.0, -1.0):
        with pytest.raises(ValueError, match="spacing"):
            call(_blob(ndim), (value,) * ndim)


@pytest.mark.parametrize("shape", [(8, 8), (3, 1000), (5, 8, 8)])
def test_a_diagonal_beyond_1e18_is_refused_at_any_single_spacing(shape):
    """The bound is the diagonal: a spacing fine for a small image is refused for a long one."""
    diagonal_per_unit = math.sqrt(sum(n * n for n in shape))
    ok, too_far = 0.999e18 / diagonal_per_unit, 1.001e18 / diagonal_per_unit
    mask = np.ones(shape, np.uint8)
    mask.flat[0] = 0
    expected = ndimage.distance_transform_edt(mask, sampling=ok)
    np.testing.assert_allclose(distance_transform(mask, ok), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=SPACING_RANGE + r".* for an image of shape"):
        distance_transform(mask, too_far)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("spacing", [1e-18, 1e-9, 3.7, 1e12, (1e-18, 1.0, 1.0), (1e15, 1e-18, 2.0)])
def test_spacings_in_range_are_exact(ndim, spacing):
    """At the ends of the range the transform is SciPy's (float64) to float32 precision, and the
    surface metrics are MedPy's."""
    if isinstance(spacing, tuple):
        spacing = spacing[:ndim]
    rng = np.random.default_rng(ndim)
    mask = (rng.random((9,) * ndim) < 0.7).astype(np.uint8)
    mask.flat[0] = 0
    expected = ndimage.distance_transform_edt(mask, sampling=spacing)
    np.testing.assert_allclose(distance_transform(mask, spacing), expected, rtol=1e-6)
    pred, truth = _blob(ndim), np.roll(_blob(ndim), (1, 2), axis=(0, 1))
    assert metrics.hd95(pred, truth, spacing) == pytest.approx(medpy_hd95(pred, truth, spacing), rel=1e-9)
    assert metrics.assd(pred, truth, spacing) == pytest.approx(medpy_assd(pred, truth, spacing), rel=1e-9)


# -- item 20: class ids -------------------------------------------------------------------------
def _two_classes(dtype, low, high) -> np.ndarray:
    """Two touching squares of values `low` and `high` (so a truncated value would merge them)."""
    m = np.zeros((10, 12), dtype)
    m[2:6, 2:6] = low
    m[2:6, 6:10] = high
    m[7:9, 1:3] = low
    return m


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [
        (np.int64, 2**32 + 1, 1),  # int32 truncation would make these one value
        (np.int64, 2**63 - 1, 2**63 - 2),
        (np.int64, 2**31, INT32_MAX),
        (np.int64, -1, 1),
        (np.int32, INT32_MAX, 1),
        (np.uint16, 65535, 65534),
    ],
)
def test_core_components_keep_extreme_values_apart(dtype, low, high):
    """Components depend only on which pixels hold equal values: extreme values label exactly as
    1 and 2 do."""
    labels, areas, boxes, perimeters = _core.connected_components(_two_classes(dtype, low, high))
    ref = _core.connected_components(_two_classes(np.uint8, 1, 2))
    for ours, expected in zip((labels, areas, boxes, perimeters), ref):
        assert np.array_equal(ours, expected)
    assert labels.max() == 3


@pytest.mark.parametrize(("dtype", "value"), [(np.int64, INT32_MAX), (np.int32, INT32_MAX), (np.uint16, 65535), (np.int64, 1)])
def test_core_mine_prompts_reports_the_largest_class_ids(dtype, value):
    mask = _two_classes(dtype, value, 0)
    mined = _core.mine_prompts(mask, 20, None, 1, 0.0, False, False, [], [])
    ref = _core.mine_prompts(_two_classes(np.uint8, 1, 0), 20, None, 1, 0.0, False, False, [], [])
    assert mined.class_ids.tolist() == [value] * len(ref) and mined.classes.tolist() == [value]
    for name in ("boxes", "tight_boxes", "points", "point_labels", "areas", "regions", "ipq"):
        assert np.array_equal(getattr(mined, name), getattr(ref, name)), name


@pytest.mark.parametrize("value", [2**31, 2**32 + 1, 2**63 - 1, -1, -(2**63)])
def test_core_mine_prompts_refuses_class_ids_outside_int32(value):
    """Class ids were cast to int32: 2**32 + 1 came back as class 1, 2**63 - 1 as -1."""
    with pytest.raises(ValueError, match=rf"coarse: expected labels in \[0, 2147483647\] .* got a label of {value}$"):
        _core.mine_prompts(_two_classes(np.int64, value, 1), 20, None, 5, 0.1, False, False, [], [])


@pytest.mark.parametrize("value", [2**31, 2**63 - 1])
def test_facade_refuses_class_ids_outside_int32(value):
    for call in (mine_prompts, connected_components):
        with pytest.raises(ValueError, match="labels <= 2147483647"):
            call(_two_classes(np.int64, value, 1))


def test_prior_keys_outside_int32_are_refused():
    with pytest.raises(ValueError, match=r"prior keys must be class labels in \[1, 2147483647\], got 2147483648"):
        mine_prompts(_blob(2), prior={2**31: "single"})
    # a class id the map cannot hold changes nothing in the core
    plain = _core.mine_prompts(_blob(2), 20, None, 5, 0.1, False, False, [], [])
    listed = _core.mine_prompts(_blob(2), 20, None, 5, 0.1, False, False, [2**62], [-5])
    assert np.array_equal(plain.regions, listed.regions) and np.array_equal(plain.boxes, listed.boxes)


# -- item 20: margins, radii, areas and fractions -----------------------------------------------
def _mine(**overrides):
    args = dict(ring_radius=20, box_margin=None, min_area=5, min_fraction=0.1, ipq_filter=False,
                default_single=False, single=[], multi=[])
    args.update(overrides)
    return _core.mine_prompts(_blob(2), **args)


@pytest.mark.parametrize("margin", [8, 16, 2**31, 2**62, 2**63 - 1])
def test_huge_box_margin_gives_the_whole_image(margin):
    """box_margin = 2**63 - 1 overflowed (x0 - margin) and gave the tight box."""
    assert _mine(box_margin=margin).boxes.tolist() == [[0, 0, 7, 7]]
    assert mine_prompts(_blob(2), box_margin=margin * 2**10).boxes.tolist() == [[0, 0, 7, 7]]


def test_huge_ring_radius_and_min_area():
    full = _mine(ring_radius=8 + 8)
    for radius in (2**31, 2**63 - 1):
        assert _mine(ring_radius=radius).points.tolist() == full.points.tolist()
    assert _mine(min_area=2**63 - 1).dropped_classes.tolist() == [1]
    assert len(_mine(min_area=16)) == 1 and len(_mine(min_area=17)) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_fraction": math.nan}, r"min_fraction: expected a number in \[0, 1\], got nan"),
        ({"min_fraction": math.inf}, r"min_fraction: expected a number in \[0, 1\], got inf"),
        ({"min_fraction": -0.1}, r"min_fraction: expected a number in \[0, 1\], got -0.1"),
        ({"min_fraction": 1.5}, r"min_fraction: expected a number in \[0, 1\], got 1.5"),
        ({"box_margin": -1}, r"box_margin: expected an integer >= 0, or None .* got -1"),
        ({"box_margin": -(2**63)}, r"box_margin: expected an integer >= 0, or None"),
        ({"ring_radius": -1}, r"ring_radius: expected an integer >= 0, got -1"),
        ({"min_area": -(2**63)}, r"min_area: expected an integer >= 0"),
    ],
)
def test_core_refuses_out_of_range_options(overrides, message):
    """min_fraction = NaN dropped every region silently; a negative margin meant 'automatic'."""
    with pytest.raises(ValueError, match=message):
        _mine(**overrides)


@pytest.mark.parametrize("value", [2**63, 2**64 + 3, -(2**63) - 1])
def test_core_refuses_integers_beyond_int64(value):
    for name in ("ring_radius", "box_margin", "min_area"):
        with pytest.raises(TypeError, match="incompatible function arguments"):
            _mine(**{name: value})


def test_min_fraction_edges_are_exact():
    mask = np.zeros((20, 20), np.uint8)
    mask[1:11, 1:11] = 1  # 100 pixels
    mask[14:19, 14:19] = 1  # 25 pixels: 0.2 of the class
    kept = lambda f: len(_core.mine_prompts(mask, 0, 0, 0, f, False, False, [], []))  # noqa: E731
    assert kept(0.0) == 2 and kept(0.2) == 2 and kept(np.nextafter(0.2, 1)) == 1 and kept(1.0) == 0
    assert kept(5e-324) == 2  # subnormal


# -- item 20: sizes -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 2**31), (2, 2**30), (2**31, 1)])
def test_images_beyond_int32_pixels_are_refused_before_any_work(tmp_path, shape):
    """Labels, region ids and run coordinates are int32: a sparse (never read) memory map of more
    than 2**31 - 1 pixels is refused from its shape alone."""
    huge = np.memmap(tmp_path / "huge.raw", dtype=np.uint8, mode="w+", shape=shape)
    message = r"expected at most 2147483647 pixels \(labels and coordinates are int32\), got an array of shape"
    with pytest.raises(ValueError, match="mask: " + message):
        _core.connected_components(huge)
    with pytest.raises(ValueError, match="coarse: " + message):
        _core.mine_prompts(huge, 20, None, 5, 0.1, False, False, [], [])
    del huge


# -- the named result ---------------------------------------------------------------------------
def test_mined_prompts_is_a_named_read_only_result():
    mined = _mine()
    assert isinstance(mined, _core.MinedPrompts) and len(mined) == 1
    assert repr(mined) == "MinedPrompts(1 regions, classes [1], dropped [])"
    expected = {"class_ids": (np.int32, (1,)), "boxes": (np.int32, (1, 4)), "tight_boxes": (np.int32, (1, 4)),
                "points": (np.int32, (1, 2, 2)), "point_labels": (np.int32, (1, 2)), "has_negative": (np.bool_, (1,)),
                "areas": (np.int64, (1,)), "ipq": (np.float32, (1,)), "regions": (np.int32, (8, 8)),
                "classes": (np.int32, (1,)), "dropped_classes": (np.int32, (0,))}
    for name, (dtype, shape) in expected.items():
        value = getattr(mined, name)
        assert isinstance(value, np.ndarray) and value.dtype == dtype and value.shape == shape, name
        with pytest.raises(AttributeError):
            setattr(mined, name, value)
    assert mined.tight_boxes.tolist() == [[2, 2, 5, 5]] and mined.areas.tolist() == [16]
    with pytest.raises(TypeError, match="No constructor defined"):
        _core.MinedPrompts()
