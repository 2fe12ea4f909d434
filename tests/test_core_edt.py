"""distance_transform against scipy.ndimage.distance_transform_edt (to 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
from _core_helpers import label_maps, real_masks
from hypothesis import assume, given, settings
from scipy import ndimage

from samedenhancer import distance_transform


def check_against_scipy(mask: np.ndarray) -> None:
    ours = distance_transform(mask)
    assert ours.dtype == np.float32 and ours.shape == mask.shape
    np.testing.assert_allclose(ours, ndimage.distance_transform_edt(mask != 0), rtol=0, atol=1e-4)


@settings(max_examples=200, deadline=None)
@given(label_maps(max_side=64, max_classes=1))
def test_random_masks_match_scipy(mask):
    assume((mask == 0).any())
    check_against_scipy(mask)


@pytest.mark.parametrize("dataset", ["kvasir", "cvc_clinicdb", "busi", "thyroid_ddti", "acdc"])
def test_real_masks_match_scipy(data_root, dataset):
    for _, mask in real_masks(dataset):
        if (mask == 0).any():
            check_against_scipy(mask)


def test_large_distances_are_exact():
    mask = np.ones((1500, 1700), np.uint8)
    mask[0, 0] = 0
    mask[1499, 3] = 0
    check_against_scipy(mask)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64])
def test_dtypes_orders_and_views(dtype):
    rng = np.random.default_rng(7)
    mask = (rng.random((50, 70)) < 0.8).astype(dtype)
    for variant in (mask, np.asfortranarray(mask), mask[::3, ::2], mask.T, mask[3:40, 10:60]):
        check_against_scipy(variant)


@pytest.mark.parametrize("shape", [(1, 1), (1, 23), (23, 1), (2, 2)])
def test_small_shapes(shape):
    mask = np.ones(shape, np.uint8)
    mask.flat[-1] = 0
    check_against_scipy(mask)


def test_no_zero_pixel_gives_inf_and_empty_gives_zero():
    assert np.isinf(distance_transform(np.ones((4, 5), np.uint8))).all()
    assert not distance_transform(np.zeros((4, 5), np.uint8)).any()


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        (np.zeros((3, 3), np.complex64), TypeError, "mask must be of dtype .* got dtype complex64"),
        (np.zeros(5, np.uint8), ValueError, r"mask must be a 2-D \(H, W\) or 3-D \(D, H, W\) array, got an array of shape \(5,\)"),
        (np.array([[0.0, np.nan]]), ValueError, "mask must not contain NaN"),
    ],
)
def test_bad_input(mask, error, message):
    with pytest.raises(error, match=message):
        distance_transform(mask)
