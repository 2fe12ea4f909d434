"""connected_components against OpenCV (labels up to relabelling, areas, boxes, perimeters)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _core_helpers import label_maps, real_masks
from hypothesis import given, settings

from samedenhancer import ComponentStats, connected_components


def check_against_opencv(mask: np.ndarray, connectivity: int = 8) -> None:
    """Every class separately through cv2.connectedComponentsWithStats; perimeters through
    findContours + arcLength of each component."""
    labels, stats = connected_components(mask, connectivity)
    assert labels.dtype == np.int32 and labels.shape == mask.shape
    assert stats.areas.dtype == np.int64 and stats.boxes.dtype == np.int32 and stats.perimeters.dtype == np.float64
    n = len(stats.areas)
    assert stats.boxes.shape == (n, 4)
    assert labels.max(initial=0) == n
    seen = 0
    for cls in np.unique(mask[mask > 0]):
        count, cv_labels, cv_stats, _ = cv2.connectedComponentsWithStats(
            (mask == cls).astype(np.uint8), connectivity=connectivity, ltype=cv2.CV_32S
        )
        seen += count - 1
        for k in range(1, count):
            ours = np.unique(labels[cv_labels == k])
            assert len(ours) == 1 and ours[0] > 0, "an OpenCV component is split or unlabelled"
            i = ours[0] - 1
            assert np.array_equal(labels == ours[0], cv_labels == k), "components differ"
            x, y, w, h, area = cv_stats[k]
            assert stats.areas[i] == area
            assert stats.boxes[i].tolist() == [x, y, x + w - 1, y + h - 1]
            component = (cv_labels == k).astype(np.uint8)
            contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            assert len(contours) == 1
            assert stats.perimeters[i] == pytest.approx(cv2.arcLength(contours[0], True), rel=1e-6, abs=1e-6)
    assert seen == n
    # Numbered in raster order of the first pixel.
    first = [int(np.flatnonzero(labels.ravel() == i + 1)[0]) for i in range(n)]
    assert first == sorted(first)


@settings(max_examples=150, deadline=None)
@given(label_maps())
def test_random_label_maps_match_opencv_8(mask):
    check_against_opencv(mask, 8)


@settings(max_examples=80, deadline=None)
@given(label_maps(max_classes=1))
def test_random_masks_match_opencv_4(mask):
    check_against_opencv(mask, 4)


@pytest.mark.parametrize("dataset", ["kvasir", "cvc_clinicdb", "busi", "thyroid_ddti", "acdc"])
def test_real_masks_match_opencv(data_root, dataset):
    masks = real_masks(dataset)
    assert masks
    for _, mask in masks:
        check_against_opencv(mask)


def _cases():
    one = np.zeros((7, 9), np.uint8)
    one[3, 4] = 1
    border = np.zeros((12, 10), np.uint8)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = 1
    border[4:8, 3:7] = 1
    return {
        "empty": np.zeros((5, 6), np.uint8),
        "one_pixel": one,
        "full": np.ones((6, 5), np.uint8),
        "touching_borders": border,
        "row_1xN": (np.arange(17)[None, :] % 3 != 0).astype(np.uint8),
        "column_Nx1": (np.arange(17)[:, None] % 4 != 0).astype(np.uint8),
        "diagonal": np.eye(8, dtype=np.uint8),
        "checkerboard": (np.indices((9, 9)).sum(0) % 2).astype(np.uint8),
        "one_by_one": np.ones((1, 1), np.uint8),
    }


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("connectivity", [8, 4])
def test_edge_cases_match_opencv(name, connectivity):
    check_against_opencv(_cases()[name], connectivity)


def test_known_values():
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 1:4] = 1  # 3x3 square: perimeter 8
    mask[5, 6] = 1
    labels, stats = connected_components(mask)
    assert isinstance(stats, ComponentStats)
    assert stats.areas.tolist() == [9, 1]
    assert stats.boxes.tolist() == [[1, 1, 3, 3], [6, 5, 6, 5]]
    assert stats.perimeters.tolist() == [8.0, 0.0]
    assert np.array_equal(connected_components(np.eye(3, dtype=np.uint8), 4)[0], np.diag([1, 2, 3]))


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.int32, np.int64])
def test_dtypes_orders_and_views(dtype):
    rng = np.random.default_rng(3)
    base = (rng.random((40, 60)) < 0.4) * rng.integers(1, 4, (40, 60))
    mask = (base > 0) if dtype is np.bool_ else base.astype(dtype)
    expected_labels, expected = connected_components(np.ascontiguousarray(mask))
    for variant in (np.asfortranarray(mask), mask[::2, ::3], mask.T, mask[5:30, 7:50]):
        check_against_opencv(np.ascontiguousarray(variant).astype(np.uint8) if dtype is np.bool_ else variant.astype(np.int64))
        labels, stats = connected_components(variant)
        ref_labels, ref = connected_components(np.ascontiguousarray(variant))
        assert np.array_equal(labels, ref_labels) and np.array_equal(stats.areas, ref.areas)
    labels, stats = connected_components(np.asfortranarray(mask))
    assert np.array_equal(labels, expected_labels) and np.array_equal(stats.boxes, expected.boxes)


def test_uint16_labels_with_gaps():
    mask = np.zeros((20, 20), np.uint16)
    mask[2:6, 2:6] = 3
    mask[6:9, 6:9] = 200  # touches class 3 diagonally: still a separate component
    mask[15:18, 1:3] = 3
    labels, stats = connected_components(mask)
    assert stats.areas.tolist() == [16, 9, 6]
    assert set(np.unique(mask[labels == 2])) == {200}
    check_against_opencv(mask)


@pytest.mark.parametrize(
    ("mask", "kwargs", "error", "message"),
    [
        (np.zeros((3, 3), np.float32), {}, TypeError, "mask must be a label map of dtype .* got dtype float32"),
        (np.zeros((3, 3), np.int8), {}, TypeError, "got dtype int8"),
        (np.zeros((3, 3, 1), np.uint8), {}, ValueError, r"mask must be a 2-D array \(H, W\), got an array of shape \(3, 3, 1\)"),
        (np.zeros((0, 3), np.uint8), {}, ValueError, "at least one pixel"),
        (np.array([[0, -2]], np.int32), {}, ValueError, "mask must hold labels >= 0, got a minimum of -2"),
        (np.zeros((3, 3), np.uint8), {"connectivity": 6}, ValueError, "connectivity must be 4 or 8, got 6"),
    ],
)
def test_bad_input(mask, kwargs, error, message):
    with pytest.raises(error, match=message):
        connected_components(mask, **kwargs)
