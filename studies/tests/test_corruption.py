import numpy as np
import pytest

from samedenhancer.bench import datasets
from studies.corruption import corrupt, corrupt_label_map, image_seed, protocol_description
from samedenhancer.metrics import dice


def _square(size=96, lo=24, hi=72):
    mask = np.zeros((size, size), np.uint8)
    mask[lo:hi, lo:hi] = 1
    return mask


def test_same_seed_same_mask_and_seeds_differ():
    mask = _square()
    first = corrupt(mask, 7)
    assert np.array_equal(first, corrupt(mask.copy(), 7))
    outputs = [corrupt(mask, seed).tobytes() for seed in range(8)]
    assert len(set(outputs)) == 8


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int32, np.uint16])
def test_output_is_binary_uint8_of_the_input_shape(dtype):
    mask = np.zeros((50, 70), dtype)
    mask[10:40, 20:60] = 1 if dtype is bool else 3
    out = corrupt(mask, 1)
    assert out.shape == (50, 70) and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 1}
    assert out.any()
    assert not np.array_equal(out, mask != 0)


def test_input_is_not_modified_and_fortran_order_gives_same_result():
    mask = _square()
    before = mask.copy()
    out = corrupt(mask, 11)
    assert np.array_equal(mask, before)
    assert np.array_equal(corrupt(np.asfortranarray(mask), 11), out)


def test_empty_mask_stays_empty():
    out = corrupt(np.zeros((40, 30), np.uint8), 5)
    assert out.shape == (40, 30) and not out.any()


def test_tiny_lesion_never_vanishes():
    mask = np.zeros((64, 64), np.uint8)
    mask[30:32, 30:32] = 1
    for seed in range(30):
        assert corrupt(mask, seed).any()


def test_image_seed_is_stable_and_offsettable():
    assert image_seed("benign (1)") == image_seed("benign (1)")
    assert image_seed("benign (1)") != image_seed("benign (2)")
    assert image_seed("a", 1) != image_seed("a")
    with pytest.raises(TypeError, match="name"):
        image_seed(3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="2-D"):
        corrupt(np.zeros((4, 4, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="shape"):
        corrupt(np.zeros((0, 4), np.uint8), 0)
    with pytest.raises(TypeError, match="dtype"):
        corrupt(np.zeros((4, 4), np.float32), 0)
    with pytest.raises(TypeError, match="seed"):
        corrupt(np.zeros((4, 4), np.uint8), 1.5)
    with pytest.raises(TypeError, match="numpy array"):
        corrupt([[0, 1]], 0)


def test_description_names_every_step():
    text = protocol_description()
    for step in ("warp", "Dilation or erosion", "Missing chunk", "Leakage", "False-positive", "Holes", "empty"):
        assert step in text


@pytest.mark.parametrize("name", ["busi", "thyroid_ddti"])
def test_mean_coarse_dice_is_in_the_target_band(data_root, name):
    scores = []
    for sample in datasets.samples(name, data_root):
        truth = sample.ground_truth()
        coarse = corrupt(truth, image_seed(sample.stem))
        if not truth.any():
            assert not coarse.any()
        scores.append(dice(coarse, truth))
    scores = np.array(scores)
    assert 0.75 <= scores.mean() <= 0.85
    # a mix of errors, not one uniform degradation
    assert scores.std() > 0.05
    assert (scores < 0.999).mean() > 0.85


def test_label_map_corrupts_each_class_with_its_own_seed():
    truth = np.zeros((96, 96), np.uint8)
    truth[20:60, 20:50] = 1
    truth[30:80, 55:85] = 3
    out = corrupt_label_map(truth, "case 7")
    assert out.dtype == truth.dtype and set(np.unique(out).tolist()) == {0, 1, 3}
    # class 3 is written last, so it equals its own corruption exactly
    assert np.array_equal(out == 3, corrupt(truth == 3, image_seed("case 7", base=2)) == 1)
    # a binary mask gets the per-image seed the benchmark documents
    binary = (truth == 1).astype(np.uint8)
    assert np.array_equal(corrupt_label_map(binary, "case 7"), corrupt(binary, image_seed("case 7")))
    assert not corrupt_label_map(np.zeros((8, 8), np.uint8), "empty").any()
