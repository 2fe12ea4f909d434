"""The Enhancer's own logic (batching, paste-back, overlaps, gate, dropped classes) with a
deterministic test double for the model, so every expectation is exact."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Gate
from samedenhancer.enhancer import Enhancer


class _Manifest:
    name = "double"
    input_size = 64
    default_policy = "box"
    trained_prompts = ("box",)


class DoublePredictor:
    """Returns, for each box, logits that are +`height` inside the box and -1 outside, and an IoU
    prediction from `ious`; records every call."""

    manifest = _Manifest()

    def __init__(self, heights=None, ious=None, grow=0):
        self.heights, self.ious, self.grow = heights, ious, grow
        self.calls = []

    def encode(self, image):
        self.calls.append(("encode", image.shape))
        return image.shape[:2]

    def decode(self, embedding, point_coords=None, point_labels=None, boxes=None, multimask_output=False):
        h, w = embedding
        n = len(boxes) if boxes is not None else len(point_coords)
        c = 3 if multimask_output else 1
        self.calls.append(("decode", n, boxes is not None, point_coords is not None, multimask_output))
        logits = -np.ones((n, c, h, w), np.float32)
        for i in range(n):
            if boxes is not None:
                x0, y0, x1, y1 = boxes[i].astype(int)
            else:
                (x0, y0) = (x1, y1) = point_coords[i, 0].astype(int)
            g = self.grow
            height = 1.0 if self.heights is None else self.heights[i]
            logits[i, :, max(y0 - g, 0) : y1 + 1 + g, max(x0 - g, 0) : x1 + 1 + g] = height
        iou = np.full((n, c), 0.9, np.float32) if self.ious is None else np.repeat(np.asarray(self.ious, np.float32)[:, None], c, 1)
        return logits, iou

    def upscale(self, embedding, low_res_logits, roi=None):
        return low_res_logits


def _blob(shape, y0, y1, x0, x1, value=1, out=None):
    out = np.zeros(shape, np.uint8) if out is None else out
    out[y0:y1, x0:x1] = value
    return out


def test_one_encode_and_one_batched_decode_for_all_regions_of_all_classes():
    coarse = _blob((64, 64), 5, 15, 5, 15, 1)
    _blob((64, 64), 40, 50, 40, 50, 1, coarse)
    _blob((64, 64), 5, 20, 40, 60, 2, coarse)
    double = DoublePredictor()
    result = Enhancer(double, policy="box").enhance(np.zeros((64, 64), np.uint8), coarse, return_details=True)
    assert [c[0] for c in double.calls] == ["encode", "decode"]
    assert double.calls[1][1] == 3  # three regions, one decoder call
    assert sorted(r.class_id for r in result.regions) == [1, 1, 2]
    assert result.mask.dtype == coarse.dtype and result.mask.shape == coarse.shape


def test_hierarchical_policy_decodes_points_then_points_and_box():
    coarse = _blob((64, 64), 5, 15, 5, 15)
    double = DoublePredictor()
    result = Enhancer(double, policy="hierarchical").enhance(np.zeros((64, 64)), coarse, return_details=True)
    decodes = [c for c in double.calls if c[0] == "decode"]
    assert decodes == [("decode", 1, False, True, True), ("decode", 1, True, True, False)]
    assert result.regions[0].stage1_mask is not None and not np.isnan(result.regions[0].stage1_iou)


def test_empty_coarse_mask_costs_no_model_call():
    double = DoublePredictor()
    coarse = np.zeros((32, 48), np.uint16)
    result = Enhancer(double).enhance(np.zeros((32, 48)), coarse, return_details=True)
    assert double.calls == []
    assert result.mask.dtype == np.uint16 and not result.mask.any() and result.regions == ()


def test_overlapping_classes_go_to_the_higher_logit():
    coarse = _blob((64, 64), 10, 30, 10, 30, 1)
    _blob((64, 64), 25, 45, 25, 45, 2, coarse)
    # class 1's region gets the lower logit: where the boxes overlap, class 2 wins
    double = DoublePredictor()
    enhancer = Enhancer(double, policy="box", box_margin=0)
    prompts = enhancer.mine(coarse)
    double.heights = [1.0 if c == 1 else 2.0 for c in prompts.class_ids]
    mask = enhancer.enhance(np.zeros((64, 64)), coarse)
    assert (mask[25:30, 25:30] == 2).all()
    assert (mask[10:25, 10:25] == 1).all()


def test_gate_falls_back_to_the_coarse_region_exactly_where_it_fires():
    coarse = _blob((64, 64), 5, 15, 5, 15)
    _blob((64, 64), 40, 50, 40, 50, 1, coarse)
    double = DoublePredictor(grow=6)
    enhancer = Enhancer(double, policy="box", box_margin=0, gate=Gate(min_iou=0.5, min_agreement=0.0))
    prompts = enhancer.mine(coarse)
    first = int(np.argmin(prompts.boxes[:, 0]))
    double.ious = [0.1 if i == first else 0.9 for i in range(len(prompts.class_ids))]
    result = enhancer.enhance(np.zeros((64, 64)), coarse, return_details=True)
    assert result.gate_fired == 1 and result.regions[first].fell_back
    # the gated region keeps exactly its coarse pixels; the other grew by the double's 6 px
    assert np.array_equal(result.mask[:25, :25], coarse[:25, :25])
    assert result.mask[34:56, 34:56].all()


def test_a_class_with_no_surviving_region_is_returned_unchanged_and_reported():
    coarse = _blob((64, 64), 5, 25, 5, 25, 1)
    coarse[50, 50] = 2  # one pixel: below min_area, class 2 has no region
    double = DoublePredictor()
    result = Enhancer(double, policy="box").enhance(np.zeros((64, 64)), coarse, return_details=True)
    assert result.dropped_classes.tolist() == [2]
    assert result.mask[50, 50] == 2


def test_bad_input_names_the_problem():
    enhancer = Enhancer(DoublePredictor())
    coarse = _blob((64, 64), 5, 15, 5, 15)
    with pytest.raises(ValueError, match="does not match"):
        enhancer.enhance(np.zeros((60, 64)), coarse)
    with pytest.raises(ValueError, match="shape"):
        enhancer.enhance(np.zeros((1, 64, 64, 3)), coarse)
    with pytest.raises(ValueError, match="policy"):
        Enhancer(DoublePredictor(), policy="clicks")
    with pytest.raises(TypeError, match="gate"):
        Enhancer(DoublePredictor(), gate=0.5)


def test_batch_reports_bad_items_and_keeps_every_good_result():
    coarse = _blob((64, 64), 5, 15, 5, 15)
    images = [np.zeros((64, 64)), np.zeros((10, 10)), np.zeros((64, 64))]
    masks = [coarse, coarse, np.full((64, 64), -1, np.int32)]
    items = Enhancer(DoublePredictor()).enhance_batch(images + [np.zeros((64, 64))], masks + [coarse])
    assert [item.ok for item in items] == [True, False, False, True]
    assert "does not match" in str(items[1].error)
    assert items[3].result.mask.any()
