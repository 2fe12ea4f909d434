"""metrics.dice / hd95 / assd against MedPy's formulas written out with SciPy
(medpy.metric.binary.__surface_distances, hd95, assd, dc)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from _core_helpers import label_maps, medpy_assd, medpy_dc, medpy_hd95
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from samedenhancer import _core, metrics
from samedenhancer.bench import datasets


def check(pred, truth, spacing=None):
    assert metrics.dice(pred, truth) == pytest.approx(medpy_dc(pred, truth), rel=1e-12)
    assert metrics.hd95(pred, truth, spacing) == pytest.approx(medpy_hd95(pred, truth, spacing), rel=1e-6, abs=1e-6)
    assert metrics.assd(pred, truth, spacing) == pytest.approx(medpy_assd(pred, truth, spacing), rel=1e-6, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(label_maps(max_side=40, max_classes=1, min_side=2), st.integers(0, 2**31), st.sampled_from([None, (1.0, 1.0), (0.7, 1.9), 2.5]))
def test_random_pairs_match_medpy(pred, seed, spacing):
    rng = np.random.default_rng(seed)
    truth = np.roll(pred, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) ^ (rng.random(pred.shape) < 0.05)
    assume(pred.any() and truth.any())
    check(pred, truth, spacing)


@pytest.mark.parametrize("dataset", ["kvasir", "cvc_clinicdb"])
def test_real_coarse_vs_truth_match_medpy(data_root, dataset):
    for sample in datasets.samples(dataset, data_root)[::4]:
        truth = sample.ground_truth()
        for segmenter in datasets.SEGMENTERS[dataset]:
            pred = sample.coarse(segmenter) > 127
            if pred.any() and truth.any():
                check(pred, truth)


def test_empty_conventions():
    empty, full = np.zeros((5, 5), bool), np.ones((5, 5), bool)
    assert metrics.dice(empty, empty) == 1.0 and metrics.hd95(empty, empty) == 0.0 and metrics.assd(empty, empty) == 0.0
    assert metrics.dice(empty, full) == 0.0
    assert math.isnan(metrics.hd95(full, empty)) and math.isnan(metrics.assd(empty, full))


def test_core_surface_metrics_empty_and_zero_size_masks():
    """The core holds the empty conventions itself (the facade passes every pair through), and an
    axis of length 0 is two empty masks (it divided by zero before: SIGFPE)."""
    empty, full = np.zeros((5, 5), np.uint8), np.ones((5, 5), np.uint8)
    assert _core.surface_metrics(empty, empty, []) == (0.0, 0.0)
    assert all(math.isnan(v) for v in _core.surface_metrics(full, empty, []) + _core.surface_metrics(empty, full, []))
    for shape in [(0, 4), (4, 0), (0, 0), (2, 0, 3)]:
        zero = np.zeros(shape, np.uint8)
        assert _core.surface_metrics(zero, zero, []) == (0.0, 0.0)
    assert metrics.hd95(np.zeros((0, 4)), np.zeros((0, 4))) == 0.0


def test_identical_masks_and_dtypes():
    mask = np.zeros((20, 30), np.uint8)
    mask[4:15, 6:20] = 255
    for variant in (mask, mask.astype(bool), mask.astype(np.float32) / 255, np.asfortranarray(mask), mask.T.copy().T):
        assert metrics.dice(variant, mask) == 1.0 and metrics.hd95(variant, mask) == 0.0 and metrics.assd(variant, mask) == 0.0


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((np.zeros((3, 3)), np.zeros((3, 4))), ValueError, r"truth must have the shape of pred \(3, 3\), got \(3, 4\)"),
        ((np.zeros(3), np.zeros(3)), ValueError, r"pred must be a 2-D \(H, W\) or 3-D \(D, H, W\) mask, got an array of shape \(3,\)"),
        ((np.zeros((3, 3)), np.full((3, 3), np.nan)), ValueError, "truth must not contain NaN"),
        ((np.zeros((3, 3), object), np.zeros((3, 3))), TypeError, "pred must be a boolean or numeric mask, got dtype object"),
    ],
)
def test_bad_input(args, error, message):
    for fn in (metrics.dice, metrics.hd95, metrics.assd):
        with pytest.raises(error, match=message):
            fn(*args)


@pytest.mark.parametrize(
    ("spacing", "error"),
    [(0.0, ValueError), (-1.0, ValueError), ((1.0,), ValueError), ((1.0, float("inf")), ValueError), ("1", TypeError)],
)
def test_bad_spacing(spacing, error):
    a = np.ones((3, 3), bool)
    with pytest.raises(error, match="spacing must be a positive number or 2 positive numbers"):
        metrics.hd95(a, a, spacing)


@st.composite
def volume_pairs(draw):
    """A random D x H x W mask (balls or noise) and a shifted, perturbed copy."""
    shape = tuple(draw(st.integers(2, 16)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        grid = np.indices(shape).reshape(3, -1).T
        centres = rng.integers(0, shape, size=(int(rng.integers(1, 4)), 3))
        pred = (((grid[:, None, :] - centres[None]) ** 2).sum(-1) <= rng.uniform(1, 6) ** 2).any(1).reshape(shape)
    else:
        pred = rng.random(shape) < rng.uniform(0.05, 0.9)
    truth = np.roll(pred, tuple(rng.integers(-2, 3, 3)), axis=(0, 1, 2)) ^ (rng.random(shape) < 0.03)
    return pred, truth


@settings(max_examples=100, deadline=None)
@given(volume_pairs(), st.sampled_from([None, (1.0, 1.0, 1.0), (2.5, 0.7, 0.7), (10.0, 1.5, 1.2), 0.8]))
def test_random_volumes_match_medpy(pair, spacing):
    pred, truth = pair
    assume(pred.any() and truth.any())
    check(pred, truth, spacing)


def test_real_acdc_volume_in_mm(data_root):
    """An ACDC ground-truth volume (its slice PNGs stacked) against itself moved by a slice and a
    pixel, per structure, in mm."""
    slices = sorted((data_root / "acdc" / "masks").glob("patient011_frame01_slice*.png"))
    assert len(slices) > 3
    label = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in slices])
    spacing = (10.0, 1.5, 1.5)
    for cls in (1, 2, 3):
        truth = label == cls
        assert truth.any()
        check(np.roll(truth, (1, 1), axis=(0, 2)), truth, spacing)


def test_volume_conventions_and_layouts():
    truth = np.zeros((6, 20, 20), bool)
    truth[1:5, 4:12, 5:15] = True
    pred = np.roll(truth, 2, axis=0)
    # a shift of 2 slices at 3 mm: every surface voxel of the moved faces is 6 mm off
    assert metrics.hd95(pred, truth, spacing=(3.0, 1.0, 1.0)) == pytest.approx(medpy_hd95(pred, truth, (3.0, 1.0, 1.0)))
    assert metrics.dice(truth, truth) == 1.0 and metrics.hd95(truth, truth, (3.0, 1.0, 1.0)) == 0.0
    for variant in (np.asfortranarray(pred), pred.astype(np.float32), pred.astype(np.uint8) * 255):
        check(variant, truth, (3.0, 1.0, 1.0))
    empty = np.zeros_like(truth)
    assert metrics.dice(empty, empty) == 1.0 and metrics.assd(empty, empty, 2.0) == 0.0
    assert metrics.dice(truth, empty) == 0.0 and math.isnan(metrics.hd95(truth, empty, (3.0, 1.0, 1.0)))


@pytest.mark.parametrize(
    ("spacing", "error"), [((1.0, 1.0), ValueError), ((1.0, -1.0, 1.0), ValueError), ((1.0, "a", 1.0), TypeError)]
)
def test_bad_volume_spacing(spacing, error):
    a = np.ones((2, 3, 3), bool)
    with pytest.raises(error, match="spacing must be a positive number or 3 positive numbers"):
        metrics.assd(a, a, spacing)


def test_volume_shape_mismatch():
    with pytest.raises(ValueError, match=r"truth must have the shape of pred \(2, 3, 3\), got \(3, 3, 3\)"):
        metrics.hd95(np.ones((2, 3, 3)), np.ones((3, 3, 3)))
