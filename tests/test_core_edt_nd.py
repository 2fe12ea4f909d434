"""distance_transform on volumes with anisotropic spacing against SciPy's
distance_transform_edt(sampling=...): random, property-based and edge-case masks, every dtype and
memory order, and the 2-D path unchanged by the spacing argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from samedenhancer import distance_transform

SPACINGS = [None, 1.0, (1.0, 1.0, 1.0), (2.5, 0.7, 0.7), (0.3, 1.9, 1.1), 3.0]


def scipy_edt(mask: np.ndarray, spacing) -> np.ndarray:
    return ndimage.distance_transform_edt(mask != 0, sampling=spacing)


def check_against_scipy(mask: np.ndarray, spacing=None) -> np.ndarray:
    ours = distance_transform(mask, spacing=spacing)
    assert ours.dtype == np.float32 and ours.shape == mask.shape
    ref = scipy_edt(mask, spacing)
    # float32 output: 1e-4 absolute up to ~100, relative beyond
    np.testing.assert_allclose(ours, ref, rtol=2e-7, atol=1e-4)
    return ours


@st.composite
def volumes(draw, max_side: int = 14):
    """Random D x H x W uint8 masks: salt-and-pepper or balls, with at least one zero voxel."""
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        mask = rng.random(shape) < draw(st.floats(0.0, 1.0))
    else:
        grid = np.indices(shape).reshape(3, -1).T
        centres = rng.integers(0, shape, size=(draw(st.integers(1, 4)), 3))
        radius = rng.uniform(0.5, max_side / 2, size=len(centres))
        near = ((grid[:, None, :] - centres[None]) ** 2).sum(-1) <= radius**2
        mask = near.any(1).reshape(shape)
        if draw(st.booleans()):
            mask = ~mask
    mask = mask.astype(np.uint8)
    mask.flat[draw(st.integers(0, mask.size - 1))] = 0
    return mask


@settings(max_examples=150, deadline=None)
@given(
    volumes(),
    st.one_of(
        st.none(),
        st.floats(0.05, 20.0),
        st.tuples(st.floats(0.05, 20.0), st.floats(0.05, 20.0), st.floats(0.05, 20.0)),
    ),
)
def test_random_volumes_match_scipy(mask, spacing):
    check_against_scipy(mask, spacing)


@settings(max_examples=60, deadline=None)
@given(volumes(max_side=10))
def test_properties(mask):
    """Zeros stay zero, every feature voxel is at least its spacing-weighted nearest axis step
    away, scaling all spacings scales all distances, and the transform is the same along any
    axis flip."""
    assume(mask.any())
    spacing = (2.0, 0.5, 1.25)
    d = distance_transform(mask, spacing=spacing)
    assert (d[mask == 0] == 0).all()
    assert (d[mask != 0] >= min(spacing) - 1e-6).all()
    np.testing.assert_allclose(distance_transform(mask, spacing=tuple(3 * s for s in spacing)), 3 * d, rtol=1e-6)
    for axis in range(3):
        np.testing.assert_array_equal(distance_transform(np.flip(mask, axis), spacing=spacing), np.flip(d, axis))


@pytest.mark.parametrize("spacing", SPACINGS)
def test_random_volume_with_spacings(spacing):
    rng = np.random.default_rng(3)
    check_against_scipy((rng.random((23, 41, 37)) < 0.97).astype(np.uint8), spacing)


def test_large_volume_with_far_zeros():
    mask = np.ones((40, 200, 180), np.uint8)
    mask[0, 0, 0] = 0
    mask[39, 199, 3] = 0
    check_against_scipy(mask, (3.0, 0.8, 0.8))


def test_empty_full_and_one_voxel():
    spacing = (2.0, 1.0, 0.5)
    assert not distance_transform(np.zeros((4, 5, 6), np.uint8), spacing=spacing).any()
    assert np.isinf(distance_transform(np.ones((4, 5, 6), np.uint8), spacing=spacing)).all()
    one = np.ones((7, 9, 11), np.uint8)
    one[3, 4, 5] = 0
    ours = check_against_scipy(one, spacing)
    z, y, x = np.indices(one.shape)
    np.testing.assert_allclose(ours, np.sqrt((2.0 * (z - 3)) ** 2 + (y - 4) ** 2 + (0.5 * (x - 5)) ** 2), rtol=1e-6)
    single = np.zeros((7, 9, 11), np.uint8)
    single[3, 4, 5] = 1
    d = distance_transform(single, spacing=spacing)
    assert d[3, 4, 5] == 0.5 and np.count_nonzero(d) == 1


@pytest.mark.parametrize("where", ["first", "last", "faces"])
def test_zeros_on_the_border(where):
    mask = np.ones((9, 10, 11), np.uint8)
    if where == "first":
        mask[0, 0, 0] = 0
    elif where == "last":
        mask[-1, -1, -1] = 0
    else:
        mask[0], mask[:, -1], mask[:, :, 0] = 0, 0, 0
    check_against_scipy(mask, (1.5, 1.0, 0.75))


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 17), (1, 17, 1), (17, 1, 1), (2, 2, 2), (1, 30, 30), (30, 1, 30)])
def test_thin_shapes(shape):
    mask = np.ones(shape, np.uint8)
    mask.flat[-1] = 0
    check_against_scipy(mask, (2.0, 0.5, 1.5))


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64])
def test_dtypes_orders_and_views(dtype):
    rng = np.random.default_rng(7)
    mask = (rng.random((12, 30, 26)) < 0.9).astype(dtype)
    variants = (
        mask,
        np.asfortranarray(mask),
        mask[::2, ::3, 1::2],
        mask.transpose(2, 0, 1),
        mask[2:9, 5:25, 3:20],
        mask[:, :, ::-1],
    )
    for variant in variants:
        check_against_scipy(variant, (2.5, 1.0, 0.6))


def test_labels_and_negative_values_are_features():
    mask = np.array([[[0, 3, -2, 7]], [[5, 5, 0, 9]]], np.int32)
    check_against_scipy(mask, (2.0, 1.0, 1.0))


def test_a_volume_of_one_slice_is_the_image_transform():
    rng = np.random.default_rng(5)
    image = (rng.random((64, 80)) < 0.95).astype(np.uint8)
    np.testing.assert_array_equal(distance_transform(image[None], spacing=(7.0, 1.0, 1.0))[0], distance_transform(image))


def test_image_spacing():
    rng = np.random.default_rng(11)
    image = (rng.random((70, 90)) < 0.95).astype(np.uint8)
    check_against_scipy(image, (0.8, 1.7))
    np.testing.assert_array_equal(distance_transform(image, spacing=1), distance_transform(image))
    np.testing.assert_array_equal(distance_transform(image, spacing=(1, 1)), distance_transform(image))


@pytest.mark.parametrize(
    ("mask", "spacing", "error", "message"),
    [
        (np.zeros((2, 3, 4), np.uint8), (1.0, 1.0), ValueError, "spacing must be a positive number or 3 positive numbers"),
        (np.zeros((2, 3, 4), np.uint8), (1.0, 0.0, 1.0), ValueError, "spacing must be a positive number or 3"),
        (np.zeros((2, 3, 4), np.uint8), (1.0, float("nan"), 1.0), ValueError, "spacing must be"),
        (np.zeros((2, 3, 4), np.uint8), -2.0, ValueError, "spacing must be"),
        (np.zeros((2, 3, 4), np.uint8), "1", TypeError, "spacing must be"),
        (np.zeros((2, 3, 4), np.uint8), (1.0, True, 1.0), TypeError, "spacing must be"),
        (np.zeros((2, 3), np.uint8), (1.0, 1.0, 1.0), ValueError, "spacing must be a positive number or 2 positive numbers"),
        (np.zeros((2, 3, 4, 5), np.uint8), None, ValueError, r"mask must be a 2-D \(H, W\) or 3-D \(D, H, W\) array"),
        (np.zeros((2, 0, 4), np.uint8), None, ValueError, "mask must have at least one pixel"),
        (np.zeros((2, 3, 4), np.complex64), None, TypeError, "mask must be of dtype .* got dtype complex64"),
        (np.full((2, 3, 4), np.nan), None, ValueError, "mask must not contain NaN"),
    ],
)
def test_bad_input(mask, spacing, error, message):
    with pytest.raises(error, match=message):
        distance_transform(mask, spacing=spacing)


def test_input_is_not_modified():
    mask = (np.random.default_rng(2).random((5, 6, 7)) < 0.8).astype(np.uint8)
    before = mask.copy()
    distance_transform(mask, spacing=(1.0, 2.0, 3.0))
    np.testing.assert_array_equal(mask, before)
