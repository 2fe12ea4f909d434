"""Thresholds never turn into plausible wrong output (issue 12, defect 6), and bad ones are named
at once (defect 11)."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Enhancer, as_label_map

from fakes import DoublePredictor


def _soft_uint8():
    """A 0..255 probability map as a segmenter writes it (a blurred disc)."""
    y, x = np.mgrid[:64, :80]
    return np.clip(255 * np.exp(-((x - 40) ** 2 + (y - 32) ** 2) / 300.0), 0, 255).astype(np.uint8)


def test_a_uint8_probability_map_without_threshold_is_refused():
    soft = _soft_uint8()
    with pytest.raises(ValueError, match=r"looks like a 0..255 probability map.*give threshold"):
        as_label_map(soft)
    with pytest.raises(ValueError, match="probability map"):
        Enhancer(DoublePredictor()).enhance(np.zeros((64, 80), np.uint8), soft).mask
    assert as_label_map(soft, threshold=127).max() == 1


def test_uint8_label_maps_and_0_255_masks_stay_label_maps():  # up to 32 classes (the documented limit)
    labels = (np.arange(64 * 80).reshape(64, 80) % 33).astype(np.uint8)
    assert np.array_equal(as_label_map(labels), labels)
    binary = np.zeros((8, 8), np.uint8)
    binary[2:5, 2:5] = 255
    assert np.array_equal(as_label_map(binary), binary)  # one class, label 255


def test_a_uint8_threshold_on_a_0_1_mask_is_refused():
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 1
    with pytest.raises(ValueError, match="only 0 and 1.*would make it empty"):
        as_label_map(mask, threshold=127)
    assert as_label_map(mask, threshold=0.5).sum() == 9  # a threshold below 1 is meaningful


def test_nan_in_a_float_map_is_named_before_the_threshold():
    soft = np.full((8, 8), 0.2)
    soft[3, 3] = np.nan
    with pytest.raises(ValueError, match="without NaN"):
        as_label_map(soft, threshold=127)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\], got 127: a float soft map.*uint8 0..255"):
        as_label_map(np.full((8, 8), 0.2), threshold=127)


@pytest.mark.parametrize(("threshold", "error"), [(300, ValueError), (-1, ValueError), ("127", TypeError)])
def test_a_bad_threshold_is_rejected_by_the_constructor(threshold, error):
    with pytest.raises(error, match="threshold"):
        Enhancer(DoublePredictor(), threshold=threshold)
