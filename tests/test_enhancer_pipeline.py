"""The Enhancer's own logic (batching, paste-back, overlaps, gate, dropped classes) with a
deterministic test double for the model, so every expectation is exact."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Gate
from samedenhancer.core import coarse_log_odds
from samedenhancer.enhancer import Enhancer

from fakes import DoublePredictor


def _blob(shape, y0, y1, x0, x1, value=1, out=None):
    out = np.zeros(shape, np.uint8) if out is None else out
    out[y0:y1, x0:x1] = value
    return out


def test_one_encode_and_one_batched_decode_for_all_regions_of_all_classes():
    coarse = _blob((64, 64), 5, 15, 5, 15, 1)
    _blob((64, 64), 40, 50, 40, 50, 1, coarse)
    _blob((64, 64), 5, 20, 40, 60, 2, coarse)
    double = DoublePredictor()
    result = Enhancer(double, policy="box", box_rounds=0).enhance(np.zeros((64, 64), np.uint8), coarse)
    assert [c[0] for c in double.calls] == ["encode", "decode"]
    assert double.calls[1][1] == 3  # three regions, one decoder call
    assert sorted(r.class_id for r in result.regions) == [1, 1, 2]
    assert result.mask.dtype == coarse.dtype and result.mask.shape == coarse.shape


def test_hierarchical_policy_decodes_points_then_points_and_box():
    coarse = _blob((64, 64), 5, 15, 5, 15)
    double = DoublePredictor()
    result = Enhancer(double, policy="hierarchical").enhance(np.zeros((64, 64)), coarse)
    decodes = [c for c in double.calls if c[0] == "decode"]
    assert decodes == [("decode", 1, False, True, True), ("decode", 1, True, True, False)]
    assert result.regions[0].stage1_mask is not None and not np.isnan(result.regions[0].stage1_iou)


def test_empty_coarse_mask_costs_no_model_call():
    double = DoublePredictor()
    coarse = np.zeros((32, 48), np.uint16)
    result = Enhancer(double).enhance(np.zeros((32, 48)), coarse)
    assert double.calls == []
    assert result.mask.dtype == np.uint16 and not result.mask.any() and result.regions == ()


def test_overlapping_classes_go_to_the_higher_logit():
    coarse = _blob((64, 64), 10, 30, 10, 30, 1)
    _blob((64, 64), 25, 45, 25, 45, 2, coarse)
    # class 1's region gets the lower logit: where the boxes overlap, class 2 wins
    double = DoublePredictor()
    enhancer = Enhancer(double, policy="box", box_margin=0, box_rounds=0)
    prompts = enhancer.mine(coarse)
    double.heights = [1.0 if c == 1 else 2.0 for c in prompts.class_ids]
    mask = enhancer.enhance(np.zeros((64, 64)), coarse).mask
    assert (mask[25:30, 25:30] == 2).all()
    assert (mask[10:25, 10:25] == 1).all()


def test_gate_falls_back_to_the_coarse_region_exactly_where_it_fires():
    coarse = _blob((64, 64), 5, 15, 5, 15)
    _blob((64, 64), 40, 50, 40, 50, 1, coarse)
    double = DoublePredictor(grow=6)
    enhancer = Enhancer(double, policy="box", box_margin=0, box_rounds=0, gate=Gate(min_iou=0.5, min_agreement=0.0))
    prompts = enhancer.mine(coarse)
    first = int(np.argmin(prompts.boxes[:, 0]))
    double.ious = [0.1 if i == first else 0.9 for i in range(len(prompts.class_ids))]
    result = enhancer.enhance(np.zeros((64, 64)), coarse)
    assert result.gate_fired == 1 and result.regions[first].fell_back
    # the gated region keeps exactly its coarse pixels; the other grew by the double's 6 px
    assert np.array_equal(result.mask[:25, :25], coarse[:25, :25])
    assert result.mask[34:56, 34:56].all()


def test_a_class_with_no_surviving_region_is_returned_unchanged_and_reported():
    coarse = _blob((64, 64), 5, 25, 5, 25, 1)
    coarse[50, 50] = 2  # one pixel: below min_area, class 2 has no region
    double = DoublePredictor()
    result = Enhancer(double, policy="box").enhance(np.zeros((64, 64)), coarse)
    assert result.dropped_classes.tolist() == [2]
    assert result.mask[50, 50] == 2


def test_bad_input_names_the_problem():
    enhancer = Enhancer(DoublePredictor())
    coarse = _blob((64, 64), 5, 15, 5, 15)
    with pytest.raises(ValueError, match="does not match"):
        enhancer.enhance(np.zeros((60, 64)), coarse).mask
    with pytest.raises(ValueError, match="shape"):
        enhancer.enhance(np.zeros((1, 64, 64, 3)), coarse).mask
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


def test_batch_keeps_an_unexpected_engine_error_in_its_item():
    from fakes import FailingPredictor

    class EngineError(Exception):  # e.g. cv2.error or an ONNX Runtime failure: not a ValueError
        pass

    coarse = _blob((64, 64), 5, 15, 5, 15)
    enhancer = Enhancer(FailingPredictor(48, EngineError("inv_scale_x > 0")))
    items = enhancer.enhance_batch([np.zeros((64, 64)), np.zeros((48, 64)), np.zeros((64, 64))],
                                   [coarse, coarse[:48], coarse])
    assert [item.ok for item in items] == [True, False, True]
    assert isinstance(items[1].error, EngineError) and items[2].result.mask.any()


# -- soft fusion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "coarse, threshold",
    [
        (_blob((64, 64), 10, 30, 10, 30), None),  # label map
        (_blob((64, 64), 10, 30, 10, 30).astype(bool), None),
        (_blob((64, 64), 10, 30, 10, 30, 255), 127),  # a 0..255 map holding two values
        (_blob((64, 64), 10, 30, 10, 30).astype(np.float32), None),  # a float map holding 0 and 1
    ],
)
def test_fusion_is_inert_on_binary_input(coarse, threshold):
    assert coarse_log_odds(coarse, threshold) is None
    results = [
        Enhancer(DoublePredictor(grow=3), box_rounds=0, fusion=fusion, threshold=threshold).enhance(
            np.zeros((64, 64)), coarse
        )
        for fusion in (True, False)
    ]
    assert not results[0].fused and not results[1].fused
    assert np.array_equal(results[0].mask, results[1].mask)
    assert results[0].mask[7:33, 7:33].all()  # the double's box grown by 3 px: the model decided


def test_log_odds_are_signed_by_the_threshold_and_bounded():
    soft = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    evidence = coarse_log_odds(soft, threshold=127)
    assert evidence.dtype == np.float32
    assert np.array_equal(evidence > 0, soft > 127)
    assert np.all(np.abs(evidence) < 6.3)
    assert coarse_log_odds(soft) is None  # uint8 without a threshold is a label map
    assert np.allclose(coarse_log_odds(np.array([[0.25, 0.5, 0.75]]), threshold=0.25), [0.0, np.log(3), np.log(9)], atol=1e-5)


def test_fusion_with_weight_one_is_the_mean_of_the_two_probabilities():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, (32, 32))
    logits = rng.normal(0, 4, (32, 32)).astype(np.float32)
    fused = logits + coarse_log_odds(p) > 0
    assert np.array_equal(fused, (1 / (1 + np.exp(-logits)) + p) / 2 > 0.5)


def test_fusion_lets_the_coarse_map_decide_where_the_model_is_unsure():
    coarse = np.zeros((64, 64), np.float32)
    coarse[10:30, 10:30] = 0.95
    coarse[30:32, 10:30] = 0.4  # below the threshold but uncertain
    coarse[10:30, 30:32] = 0.01  # confident background inside the model's box
    double = DoublePredictor(heights=[1.0])  # +1 inside the box (8..31 with the margin), -1 outside
    fused = Enhancer(double, box_rounds=0).enhance(np.zeros((64, 64)), coarse)
    plain = Enhancer(double, box_rounds=0, fusion=False).enhance(np.zeros((64, 64)), coarse).mask
    assert fused.fused and plain[8:32, 8:32].all() and not plain[33:].any()
    expected = np.zeros((64, 64), np.uint8)
    expected[10:32, 10:30] = 1  # coarse foreground + the uncertain band the model supports
    assert np.array_equal(fused.labels, expected) and np.array_equal(fused.mask, 255 * expected)


# -- box iteration ----------------------------------------------------------------------------


def _decodes(double):
    return [c for c in double.calls if c[0] == "decode"]


def test_iteration_stops_when_the_box_is_stable():
    coarse = _blob((64, 64), 20, 40, 20, 40)
    double = DoublePredictor()  # the refined mask is the box itself: re-boxing gives the same box
    result = Enhancer(double, box_margin=0, box_rounds=5).enhance(np.zeros((64, 64)), coarse)
    assert len(_decodes(double)) == 1 and result.regions[0].rounds == 1


def test_iteration_follows_a_growing_mask_for_at_most_box_rounds():
    coarse = _blob((64, 64), 28, 36, 28, 36)
    double = DoublePredictor(grow=2)  # every decode grows its box by 2 px per side
    result = Enhancer(double, box_margin=0, box_rounds=2).enhance(np.zeros((64, 64)), coarse)
    assert len(_decodes(double)) == 3 and result.regions[0].rounds == 3
    assert result.regions[0].box.tolist() == [24, 24, 39, 39]  # 28..35 grown twice by 2 px
    assert result.mask[22:42, 22:42].all() and result.mask.sum() == 20 * 20


def test_iteration_only_decodes_the_regions_whose_box_moved():
    coarse = _blob((64, 64), 5, 15, 5, 15)
    _blob((64, 64), 40, 50, 40, 50, 1, coarse)
    double = DoublePredictor(grow=2, grow_where=lambda box: box[0] < 32)  # only the top-left one grows
    result = Enhancer(double, box_margin=0, box_rounds=1).enhance(np.zeros((64, 64)), coarse)
    assert [c[1] for c in _decodes(double)] == [2, 1]
    rounds = {int(r.box[0] < 32): r.rounds for r in result.regions}
    assert rounds == {1: 2, 0: 1}


def test_quality_options_are_checked():
    with pytest.raises(ValueError, match="fusion_weight"):
        Enhancer(DoublePredictor(), fusion_weight=0)
    with pytest.raises(TypeError, match="fusion"):
        Enhancer(DoublePredictor(), fusion="yes")
    with pytest.raises(ValueError, match="box_rounds"):
        Enhancer(DoublePredictor(), box_rounds=-1)
    with pytest.raises(ValueError, match="box_rounds"):
        Enhancer(DoublePredictor(), policy="hierarchical", box_rounds=1)
    with pytest.raises(ValueError, match="box_tolerance"):
        Enhancer(DoublePredictor(), box_tolerance=2.0)
    assert not Enhancer(DoublePredictor(), policy="hierarchical").options.fusion


@pytest.mark.parametrize("policy", ["box", "hierarchical"])
def test_default_iteration_runs_only_on_soft_maps_with_the_box_policy(policy):
    soft = np.zeros((64, 64), np.float32)
    soft[28:36, 28:36] = 0.9
    soft[27, 28:36] = 0.3  # a soft map: more than two values
    for coarse, iterated in ((soft, policy == "box"), ((soft > 0.5).astype(np.uint8), False)):
        double = DoublePredictor(grow=2, heights=[20.0] * 3)  # the model outweighs the coarse map
        result = Enhancer(double, policy=policy, box_margin=0).enhance(np.zeros((64, 64)), coarse)
        assert result.fused == (policy == "box" and coarse.dtype.kind == "f")
        assert (result.regions[0].rounds > 1) == iterated


def test_gate_falls_back_to_the_coarse_labels_of_a_fused_region():
    coarse = np.zeros((64, 64), np.float32)
    coarse[5:15, 5:15] = 0.9
    coarse[40:50, 40:50] = 0.8
    coarse[15, 5:15] = 0.3  # soft: more than two values
    double = DoublePredictor(grow=6, heights=[20.0, 20.0])
    enhancer = Enhancer(double, box_margin=0, box_rounds=0, gate=Gate(min_iou=0.5, min_agreement=0.0))
    first = int(np.argmin(enhancer.mine(coarse).boxes[:, 0]))
    double.ious = [0.1 if i == first else 0.9 for i in range(2)]
    result = enhancer.enhance(np.zeros((64, 64)), coarse)
    assert result.fused and [r.fell_back for r in result.regions] == [i == first for i in range(2)]
    assert np.array_equal(result.labels[:25, :25], (coarse[:25, :25] > 0.5).astype(np.uint8))
    assert result.mask[34:56, 34:56].all()  # the other region: the model's grown box wins


def test_the_default_gate_runs_on_multi_class_maps_only():
    # A region the model grows far past its coarse pixels (agreement < 0.5) is kept coarse by the
    # default gate when the map holds two classes, and refined when it holds one.
    grown = lambda box: box[2] - box[0] < 6  # noqa: E731 - the 5 px blob's box
    two = _blob((64, 64), 5, 10, 5, 10, 1)
    _blob((64, 64), 30, 50, 30, 50, 2, two)
    one = (two == 1).astype(np.uint8)  # the small blob alone (with the large one they would merge)
    image = np.zeros((64, 64))
    default = Enhancer(DoublePredictor(grow=8, grow_where=grown), box_margin=0, box_rounds=0)
    multi = default.enhance(image, two)
    single = default.enhance(image, one)
    assert multi.gate_fired == 1 and np.array_equal(multi.mask[:20, :20], two[:20, :20])
    assert single.gate_fired == 0 and single.mask[:18, :18].all()
    off = Enhancer(DoublePredictor(grow=8, grow_where=grown), box_margin=0, box_rounds=0, gate=False)
    assert off.enhance(image, two).gate_fired == 0
    on = Enhancer(DoublePredictor(grow=8, grow_where=grown), box_margin=0, box_rounds=0, gate=True)
    assert on.options.gate == Gate() and on.enhance(image, one).gate_fired == 1


def test_region_results_keep_their_masks_inside_small_windows():
    # 36 small regions of a large frame: per-region work stays inside each region's window
    coarse = np.zeros((600, 600), np.uint8)
    for k in range(36):
        y, x = 20 + (k // 6) * 100, 20 + (k % 6) * 100
        coarse[y : y + 30, x : x + 30] = 1
    enhancer = Enhancer(DoublePredictor(grow=2), min_fraction=0.0, box_rounds=0)
    result = enhancer.enhance(np.zeros(coarse.shape, np.uint8), coarse)
    assert len(result.regions) == 36
    areas = [r.window_mask.size for r in result.regions]
    assert sum(areas) < 0.2 * coarse.size  # O(sum of box areas), not O(regions x pixels)
    union = np.zeros(coarse.shape, bool)
    for r in result.regions:
        full = r.mask
        x0, y0, x1, y1 = r.window
        assert full.sum() == r.window_mask.sum() and full[y0 : y1 + 1, x0 : x1 + 1].all() == r.window_mask.all()
        union |= full
    np.testing.assert_array_equal(union, result.mask > 0)


@pytest.mark.parametrize("margin", [None, 0, 15, 40])
def test_box_iteration_reboxes_a_mask_exactly_as_the_coarse_mask_is_mined(margin):
    from samedenhancer import MiningOptions, mine_prompts
    from samedenhancer.enhancer.decoding import box_of

    mask = np.zeros((120, 160), bool)
    mask[30:70, 50:100] = True
    mask[75:78, 60:62] = True  # a speck MSFF drops
    options = MiningOptions(box_margin=margin)
    expected = mine_prompts(mask.view(np.uint8), options, prior="single").boxes[0]
    window = mask[20:90, 40:110]  # the region's window at offset (40, 20)
    np.testing.assert_array_equal(box_of(window, (40, 20), mask.shape, options), expected)


# -- the output encoding (issue 30, item 13) --------------------------------------------------


def _soft(shape=(64, 64)):
    """A 0..255 probability map: a square of 230 with a soft edge of 140 and a faint halo of 40."""
    soft = np.zeros(shape, np.uint8)
    soft[18:42, 18:42] = 40
    soft[19:41, 19:41] = 140
    soft[20:40, 20:40] = 230
    return soft


@pytest.mark.parametrize(
    "coarse, threshold, dtype, values",
    [
        (_blob((64, 64), 20, 40, 20, 40), None, np.uint8, [0, 1]),  # a 0/1 label map stays 0/1
        (_blob((64, 64), 20, 40, 20, 40, 255), None, np.uint8, [0, 255]),  # 0/255 stays 0/255 ...
        (_blob((64, 64), 20, 40, 20, 40, 255), 127, np.uint8, [0, 255]),  # ... with a threshold too
        (_soft(), 127, np.uint8, [0, 255]),  # a thresholded 0..255 probability map gives 0/255
        (_soft().astype(np.float32) / 255, None, np.uint8, [0, 255]),  # a float probability map too
        (_soft().astype(np.float64) / 255, 0.5, np.uint8, [0, 255]),
        (_blob((64, 64), 20, 40, 20, 40).astype(bool), None, np.bool_, [False, True]),  # bool stays bool
        (_blob((64, 64), 20, 40, 20, 40, 7).astype(np.uint16), None, np.uint16, [0, 7]),  # labels keep their values
    ],
)
def test_the_output_keeps_the_encoding_the_coarse_mask_came_in(coarse, threshold, dtype, values):
    for box_rounds in (0, 1):
        result = Enhancer(DoublePredictor(), threshold=threshold, box_rounds=box_rounds).enhance(np.zeros((64, 64)), coarse)
        assert result.mask.dtype == dtype and sorted(np.unique(result.mask).tolist()) == values
        assert np.array_equal(result.mask != 0, result.labels != 0)
        assert result.labels.max() == (1 if threshold is not None or coarse.dtype.kind in "fb" else values[-1])
    empty = Enhancer(DoublePredictor(), threshold=threshold).enhance(np.zeros((64, 64)), np.zeros_like(coarse))
    assert empty.mask.dtype == dtype and not empty.mask.any()  # no region: no model call, same encoding


def test_regions_the_gate_sends_back_are_written_in_the_encoding_too():
    coarse = np.zeros((64, 64), np.uint8)
    coarse[5:25, 5:25] = 255
    coarse[40:60, 40:60] = 255
    double = DoublePredictor(ious=[0.1, 0.9])
    result = Enhancer(double, threshold=127, gate=Gate(min_iou=0.5), box_rounds=0).enhance(np.zeros((64, 64)), coarse)
    assert [r.fell_back for r in result.regions] == [True, False]
    assert np.array_equal(result.mask[:32, :32], coarse[:32, :32])  # the coarse pixels, as 255


def test_the_enhance_command_writes_a_0_255_mask_as_0_255_with_or_without_threshold(tmp_path, monkeypatch):
    from samedenhancer import io
    from samedenhancer.cli import main

    from fakes import use_fake_model

    use_fake_model(monkeypatch)
    for name, coarse in (("binary", _blob((64, 64), 20, 40, 20, 40, 255)), ("soft", _soft())):
        (tmp_path / name).mkdir()
        io.write_mask(tmp_path / name / "a.png", coarse)
    (tmp_path / "images").mkdir()
    io.write_mask(tmp_path / "images" / "a.png", np.full((64, 64), 90, np.uint8))
    for name, threshold in (("binary", []), ("binary", ["--threshold", "127"]), ("soft", ["--threshold", "127"])):
        out = tmp_path / f"out-{name}-{len(threshold)}"
        assert main(["enhance", str(tmp_path / "images"), str(tmp_path / name), "--out", str(out), "--quiet", *threshold]) == 0
        assert sorted(np.unique(io.read_mask(out / "a.png")).tolist()) == [0, 255]


# -- rings (issue 30, item 19) ----------------------------------------------------------------


def _ring(shape=(80, 80), outer=20, inner=12, value=1):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - shape[0] // 2, xx - shape[1] // 2)
    return ((r < outer) & (r >= inner)).astype(np.uint8) * value, r < inner


class CavityPredictor(DoublePredictor):
    """Answers every box with the box shrunk by ``shrink`` px per side: a ring's box asked for the
    disc, and the model found the cavity."""

    def __init__(self, shrink):
        super().__init__()
        self.shrink = shrink

    def decode(self, embedding, point_coords=None, point_labels=None, box=None, multimask_output=False):
        boxes = None if box is None else np.asarray(box, np.float32) + np.array([1, 1, -1, -1]) * self.shrink
        return super().decode(embedding, point_coords, point_labels, boxes, multimask_output)


def test_a_ring_whose_hole_is_background_stays_a_ring():
    ring, hole = _ring()
    result = Enhancer(DoublePredictor(), box_rounds=0).enhance(np.zeros((80, 80)), ring)
    assert not result.mask[hole].any()  # the model's answer is the filled box: the hole stays open
    assert result.mask[ring > 0].all() and not result.regions[0].fell_back
    cavity = Enhancer(CavityPredictor(shrink=11), box_rounds=0).enhance(np.zeros((80, 80)), ring)
    assert cavity.regions[0].fell_back and np.array_equal(cavity.mask, ring)  # the cavity is no answer
    labelled = ring + hole.astype(np.uint8) * 2  # the hole labelled: class 2's own region, as before
    both = Enhancer(DoublePredictor(), box_rounds=0, gate=False).enhance(np.zeros((80, 80)), labelled)
    assert (both.mask[hole] == 2).all()


def test_a_speck_in_a_blob_is_no_ring():
    blob = _blob((64, 64), 10, 40, 10, 40)
    blob[24:26, 24:26] = 0  # 4 px of 900: the model may fill it
    result = Enhancer(DoublePredictor(), box_rounds=0).enhance(np.zeros((64, 64)), blob)
    assert result.mask[10:40, 10:40].all()


# -- size guards (issue 30, item 27) ----------------------------------------------------------


def test_images_and_maps_above_the_size_limits_are_refused_before_any_work():
    double = DoublePredictor()
    big = np.zeros((8193, 8192), np.uint8)  # calloc'd pages: nothing is touched before the refusal
    with pytest.raises(ValueError, match=r"67,117,056 pixels, more than the limit of 67,108,864.*max_pixels"):
        Enhancer(double).enhance(big, big)
    with pytest.raises(ValueError, match="max_pixels"):
        Enhancer(double, max_pixels=100).enhance(np.zeros((10, 11)), np.zeros((10, 11), np.uint8))
    many = np.zeros((64, 64), np.uint16)
    for k in range(300):
        many.flat[k * 13] = k + 1
    with pytest.raises(ValueError, match=r"300 classes, more than the limit of 256.*max_classes"):
        Enhancer(double, min_area=1).enhance(np.zeros((64, 64)), many)
    assert not [c for c in double.calls if c[0] in ("encode", "decode")]  # refused before the model ran
    result = Enhancer(double, min_area=1, min_fraction=0.0, max_classes=None, box_rounds=0).enhance(np.zeros((64, 64)), many)
    assert len(result.regions) == 300
    with pytest.raises(ValueError, match="max_pixels must be an integer >= 1"):
        Enhancer(double, max_pixels=0)
