"""The Enhancer with the embedded LiteMedSAM on real images of the shared data sets."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Enhancer, Gate, metrics
from samedenhancer.bench import datasets


@pytest.fixture(scope="module")
def enhancer(litemedsam_dir):
    return Enhancer("litemedsam", threshold=127)


def test_default_policy_follows_the_manifest(enhancer):
    assert enhancer.options.policy == enhancer.predictor.manifest.default_policy == "box"


def test_refines_real_polyps_from_pranet_probability_maps(enhancer, data_root):
    gains = []
    for sample in datasets.samples("kvasir", data_root)[:4]:
        image, truth, coarse = sample.image(), sample.ground_truth(), sample.coarse("pranet")
        result = enhancer.enhance(image, coarse)
        assert result.mask.shape == coarse.shape and result.mask.dtype == np.uint8
        assert set(np.unique(result.mask).tolist()) <= {0, 255}  # a thresholded 0..255 map comes back 0/255
        assert np.array_equal(result.labels, (result.mask > 0).astype(np.uint8))
        assert len(result.regions) >= 1 and all(0.0 <= r.iou <= 1.5 for r in result.regions)
        assert not np.array_equal(result.labels, (coarse > 127).astype(np.uint8))
        gains.append(metrics.dice(result.mask, truth) - metrics.dice(coarse > 127, truth))
    # LiteMedSAM's box refinement gains on Kvasir on average (benchmarks/QUALITY.md)
    assert np.mean(gains) > -0.02 and max(gains) > 0


def test_multi_class_label_map_keeps_its_classes_and_dtype(enhancer, data_root):
    sample = next(s for s in datasets.samples("acdc", data_root) if len(np.unique(s.ground_truth())) == 4)
    truth = sample.ground_truth().astype(np.uint16)
    result = Enhancer(enhancer.predictor).enhance(sample.image(), truth)
    assert result.mask.dtype == np.uint16
    assert set(np.unique(result.mask).tolist()) <= {0, 1, 2, 3}
    assert sorted({r.class_id for r in result.regions}) == [1, 2, 3]
    # A solid structure refined from its expert mask stays close to it. (The myocardium is a ring:
    # LiteMedSAM's box prompt segments the cavity inside it instead — see benchmarks/QUALITY.md.)
    assert metrics.dice(result.mask == 1, truth == 1) > 0.8


def test_every_policy_runs_and_reports_its_stages(enhancer, data_root):
    sample = datasets.samples("busi", data_root)[0]
    image, truth = sample.image(), sample.ground_truth()
    for policy in ("box", "points", "points+box", "hierarchical"):
        result = Enhancer(enhancer.predictor, policy=policy).enhance(image, truth)
        assert result.policy == policy
        has_stage1 = policy in ("points", "hierarchical")
        assert all((r.stage1_mask is not None) == has_stage1 for r in result.regions)


def test_gate_fires_on_a_region_the_model_cannot_agree_with(enhancer, data_root):
    sample = datasets.samples("kvasir", data_root)[0]
    image = sample.image()
    coarse = np.zeros(image.shape[:2], np.uint8)
    coarse[5:60, 5:60] = 1  # a square in the black corner: no polyp there
    gated = Enhancer(enhancer.predictor, gate=Gate(min_iou=0.99, min_agreement=0.99))
    result = gated.enhance(image, coarse)
    assert result.gate_fired == len(result.regions) == 1
    assert np.array_equal(result.mask, coarse)


def test_constant_image_is_valid_input(enhancer):
    coarse = np.zeros((100, 120), np.uint8)
    coarse[30:60, 40:80] = 255  # a 0/255 map: the fixture thresholds at 127
    for image in (np.zeros((100, 120), np.uint8), np.full((100, 120, 3), 7.5, np.float32)):
        mask = enhancer.enhance(image, coarse).mask
        assert mask.shape == coarse.shape


def test_bad_images_raise_clear_errors(enhancer):
    coarse = np.zeros((50, 50), np.uint8)
    coarse[10:30, 10:30] = 255  # a 0/255 map: the fixture thresholds at 127
    bad = np.zeros((50, 50), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        enhancer.enhance(bad, coarse).mask
    with pytest.raises(ValueError, match="shape"):
        enhancer.enhance(np.zeros((50, 50, 3, 1)), coarse).mask
    with pytest.raises(ValueError):
        enhancer.enhance(np.zeros((0, 50)), coarse[:0]).mask
    with pytest.raises(ValueError, match="coarse"):
        enhancer.enhance(np.zeros((50, 50)), np.full((50, 50), -2, np.int32)).mask


def test_default_is_the_plain_box_policy_on_a_label_map_and_fuses_a_probability_map(enhancer, data_root):
    busi = datasets.samples("busi", data_root)[0]
    image, truth = busi.image(), busi.ground_truth()
    embedding = enhancer.predictor.encode(image)
    plain = Enhancer(enhancer.predictor, fusion=False, box_rounds=0)
    default = Enhancer(enhancer.predictor)
    fused = default.refine(default.encode(image, truth, embedding=embedding))
    assert not fused.fused and all(r.rounds == 1 for r in fused.regions)
    assert np.array_equal(fused.mask, plain.refine(plain.encode(image, truth, embedding=embedding)).mask)

    kvasir = datasets.samples("kvasir", data_root)[0]
    result = enhancer.enhance(kvasir.image(), kvasir.coarse("pranet"))
    assert result.fused and all(1 <= r.rounds <= 3 for r in result.regions)
