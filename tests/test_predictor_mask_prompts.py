"""Mask prompts (``mask_input``) on the cached LiteMedSAM export: the accepted shapes, one mask shared
by N prompts, chunked decoder calls, a mask alone, and the errors. Parity of the graphs with the
PyTorch prompt encoder's ``masks=`` path is in test_export_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Predictor
from samedenhancer.bench import datasets
from samedenhancer.metrics import dice


@pytest.fixture(scope="module")
def predictor(litemedsam_dir):
    return Predictor(litemedsam_dir)


@pytest.fixture(scope="module")
def busi(predictor, data_root):
    sample = datasets.samples("busi")[1]
    truth = sample.ground_truth() > 0
    ys, xs = np.nonzero(truth)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float64)
    predictor.set_image(sample.image())
    return predictor.embedding, truth, box


def test_manifest_declares_the_mask_inputs(predictor):
    assert list(predictor.manifest.raw["decoder"]["inputs"])[-2:] == ["mask_input", "has_mask_input"]
    assert predictor.manifest.raw["decoder"]["inputs"]["mask_input"] == ["num_masks", 1, 256, 256]
    assert "mask" not in predictor.manifest.trained_prompts


def test_previous_logits_as_mask_prompt(predictor, busi):
    embedding, truth, box = busi
    low, _ = predictor.decode(embedding, box=box)
    again, iou = predictor.decode(embedding, box=box, mask_input=low)
    assert again.shape == low.shape == (1, 1, 256, 256) and iou.shape == (1, 1)
    assert np.abs(again - low).max() > 1.0  # the mask prompt reaches the decoder
    masks = predictor.upscale(embedding, again) > 0
    assert dice(masks[0, 0], truth) > 0.8


@pytest.mark.parametrize("shape", [(256, 256), (1, 256, 256), (1, 1, 256, 256)])
def test_mask_shapes_are_equivalent(predictor, busi, shape):
    embedding, _, box = busi
    low, _ = predictor.decode(embedding, box=box)
    expected, _ = predictor.decode(embedding, box=box, mask_input=low)
    got, _ = predictor.decode(embedding, box=box, mask_input=low.reshape(shape))
    np.testing.assert_array_equal(got, expected)


def test_one_mask_is_shared_by_all_prompts(predictor, busi):
    embedding, _, box = busi
    boxes = np.stack([box, box + [-6, -4, 5, 3], box + [4, 2, -3, -5]])
    low, _ = predictor.decode(embedding, box=box)
    shared, _ = predictor.decode(embedding, box=boxes, mask_input=low)
    repeated, _ = predictor.decode(embedding, box=boxes, mask_input=np.repeat(low, 3, axis=0))
    np.testing.assert_allclose(shared, repeated, atol=1e-4)
    for i in range(3):
        single, _ = predictor.decode(embedding, box=boxes[i], mask_input=low)
        np.testing.assert_allclose(shared[i : i + 1], single, atol=1e-4)


def test_chunked_decoder_calls_slice_the_masks(predictor, busi, monkeypatch):
    embedding, _, box = busi
    boxes = np.stack([box + k for k in range(-4, 5, 2)])
    masks = np.stack([predictor.decode(embedding, box=b)[0][0] for b in boxes])
    whole, whole_iou = predictor.decode(embedding, box=boxes, mask_input=masks)
    monkeypatch.setattr(predictor._model.decoder, "max_prompts", 2)
    chunked, chunked_iou = predictor.decode(embedding, box=boxes, mask_input=masks)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    np.testing.assert_allclose(chunked_iou, whole_iou, atol=1e-5)


def test_mask_prompt_alone(predictor, busi):
    embedding, _, box = busi
    low, _ = predictor.decode(embedding, box=box)
    alone, iou = predictor.decode(embedding, mask_input=low, multimask_output=True)
    assert alone.shape == (1, 3, 256, 256) and iou.shape == (1, 3)
    prediction = predictor.predict(mask_input=low)
    assert prediction.masks.shape == (1, 1) + embedding.original_size


@pytest.mark.parametrize(
    "mask,error,match",
    [
        (np.zeros((128, 128), np.float32), ValueError, r"mask_input must be \(256, 256\)"),
        (np.zeros((2, 256, 256), np.float32), ValueError, "mask_input must be"),
        (np.zeros((2, 1, 256, 256), np.float32), ValueError, "1 mask or one per prompt"),
        (np.zeros((1, 1, 256, 256), bool), TypeError, "float low-resolution logits"),
        (np.full((256, 256), np.nan, np.float32), ValueError, "finite"),
    ],
)
def test_bad_mask_inputs_are_rejected(predictor, busi, mask, error, match):
    embedding, _, box = busi
    with pytest.raises(error, match=match):
        predictor.decode(embedding, box=np.stack([box, box, box]), mask_input=mask)
