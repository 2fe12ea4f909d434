import cv2
import numpy as np
import pytest
from scipy import ndimage

from studies.baselines import morphology_op


def _reference(mask, radius):
    """Independent oracle: SciPy binary closing (zero border) and SciPy labelling."""
    footprint = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)).astype(bool)
    pad = 2 * radius + 1
    padded = np.pad(mask != 0, pad)
    closed = ndimage.binary_closing(padded, structure=footprint)[pad:-pad, pad:-pad]
    labels, count = ndimage.label(closed, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros(mask.shape, bool)
    sizes = ndimage.sum(closed, labels, range(1, count + 1))
    return labels == 1 + int(np.argmax(sizes))


def test_closes_gaps_and_keeps_only_the_largest_component():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:20, 5:20] = 1
    mask[12, 5:20] = 0  # a one-pixel crack the closing must fill
    mask[30:33, 30:33] = 1  # a smaller detached blob to drop
    out = morphology_op(mask)
    assert out.dtype == np.uint8
    assert out[12, 10] == 1
    assert not out[30:33, 30:33].any()
    assert out.sum() == 15 * 15


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("radius", [1, 2, 4])
def test_matches_scipy_on_random_masks(seed, radius):
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((60, 80)), 2.0)
    mask = (noise > 0.1).astype(np.uint8)
    assert np.array_equal(morphology_op(mask, radius) != 0, _reference(mask, radius))


def test_label_map_is_processed_per_class_without_stealing_pixels():
    labels = np.zeros((30, 30), np.uint8)
    labels[2:12, 2:12] = 1
    labels[2:12, 13:25] = 2  # separated from class 1 by a one-pixel gap at column 12
    labels[20:22, 20:22] = 2  # small extra component of class 2
    out = morphology_op(labels)
    assert set(np.unique(out)) == {0, 1, 2}
    assert not (out[20:22, 20:22] == 2).any()
    assert np.array_equal(out[labels == 1], np.ones(100, np.uint8))
    assert (out[(labels == 2)] != 1).all()


def test_bool_empty_and_bad_input():
    assert morphology_op(np.zeros((5, 5), bool)).dtype == bool
    assert not morphology_op(np.zeros((5, 5), np.uint8)).any()
    with pytest.raises(ValueError, match="2-D"):
        morphology_op(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="radius"):
        morphology_op(np.zeros((5, 5), np.uint8), -1)
    with pytest.raises(TypeError, match="dtype"):
        morphology_op(np.zeros((5, 5), np.float64))


def test_closing_keeps_every_pixel_at_the_border():
    mask = np.zeros((10, 10), np.uint8)
    mask[0, :] = 1
    mask[:, 0] = 1
    out = morphology_op(mask, 3)
    assert out[mask == 1].all()  # extensive: nothing of the input is lost at the border
    assert out[1, 1] == 1 and out[9, 9] == 0  # the inner corner is closed, the far corner is not
