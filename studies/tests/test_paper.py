"""``python -m studies paper``: the target checks and scatter plot of Table 2, and the
split and Dice of the pseudo-label loop (Table 3), on made-up per-image scores."""

from __future__ import annotations

import numpy as np
import pytest
from studies import paper, selftrain
from samedenhancer.metrics import dice


def _result(dataset, coarse, default):
    rows = {name: {"dice": list(values), "hd95": [10.0] * len(values), "gated": 0, "regions": len(values)}
            for name, values in (("coarse", coarse), ("default", default), ("box only", default), ("hierarchical", coarse))}
    rows["default"]["hd95"] = [5.0] * len(default)
    return {"dataset": dataset, "stems": [str(i) for i in range(len(coarse))], "rows": rows,
            "unet_minutes": 1.0, "refine_minutes": 2.0, "encode_s": 0.5}


def test_met_targets_need_no_plot(tmp_path):
    lines = paper.format_table2(_result("kvasir", [0.6, 0.7], [0.65, 0.75]), tmp_path)
    text = "\n".join(lines)
    assert "Δ Dice >= +1.5: +5.00 — **met**" in text and "**missed**" not in text
    assert "| coarse | 65.00 | +0.00 |" in text and "84.71 / 58.73" in text
    assert not list(tmp_path.iterdir())


def test_a_missed_target_writes_the_per_image_scatter(tmp_path):
    lines = paper.format_table2(_result("busi", [0.6, 0.7, 0.8], [0.62, 0.5, 0.83]), tmp_path)
    text = "\n".join(lines)
    assert "Δ Dice >= +4.0: -5.00 — **missed**" in text and "33 %" in text
    assert (tmp_path / "paper_scatter_busi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "paper_scatter_busi.png" in text


def test_the_gate_row_is_reported_beside_the_default(tmp_path):
    result = _result("cvc_clinicdb", [0.6, 0.7, 0.8, 0.5], [0.62, 0.5, 0.83, 0.6])
    result["rows"]["default + gate"] = {"dice": [0.62, 0.7, 0.83, 0.6], "hd95": [5.0] * 4, "gated": 1, "regions": 4}
    text = "\n".join(paper.format_table2(result, tmp_path))
    assert "| default + gate | 68.75 | +3.75 |" in text
    assert "Δ Dice +3.75, 0 % of images worse; the gate fired on 1 of 4 regions" in text
    assert "<= 10 % images worse: 25 % — **missed**" in text  # the target stays the default's


def _table3(seed, a, b, b_post, kept=None):
    rows = {"labelled only": 0.50, "labelled only + Post": 0.52, "labelled + pseudo, raw (a)": a,
            "labelled + pseudo, raw (a) + Post": a + 0.01, "labelled + pseudo, refined (b)": b,
            "labelled + pseudo, refined (b) + Post": b_post}
    if kept is not None:
        rows.update({selftrain.KEPT: kept, f"{selftrain.KEPT} + Post": kept + 0.01})
    quality = {"raw": 0.4, "refined": 0.45, "kept": 9, "of": 10, "refined_kept": 0.5, "refined_flagged": None}
    return {"dataset": "busi", "seed": seed, "split": {"labelled": 1, "unlabelled": 2, "test": 3, "seed": seed},
            "images": {"labelled": 1, "unlabelled": 2, "test": 3}, "pseudo_quality": quality, "rows": rows,
            "minutes": 1.0}


def test_table3_averages_the_seeds_and_judges_the_targets_on_the_means(tmp_path, monkeypatch):
    """Seed 0 alone misses both targets, seed 1 alone meets them; the report gives each seed and
    judges the mean: (b) - (a) = +2.5 (met), (b) + Post the best row (met)."""
    runs = [_table3(1, a=0.40, b=0.48, b_post=0.60), _table3(0, a=0.50, b=0.47, b_post=0.51)]
    text = "\n".join(selftrain.format_table3(runs))
    assert "seeds [0, 1]" in text and "| test Dice % (mean) | seed 0 | seed 1 |" in text
    assert "| labelled + pseudo, refined (b) | 47.50 | 47.00 | 48.00 | — |" in text
    assert "`labelled + pseudo, refined (b)`: >= (a) + 2.0: +2.50 — **met** (per seed -3.00, +8.00)" in text
    assert "best is `labelled + pseudo, refined (b) + Post` — **met**" in text
    acdc = "\n".join(selftrain.format_table3([dict(runs[0], dataset="acdc")]))
    assert "| labelled + pseudo, raw (a) + Post | 41.00 | 41.00 | 72.01 |" in acdc  # the paper's + Post rows too
    assert "QA-kept" not in text.split("## Table 3")[1].split("### busi")[1]  # no such row in these runs
    # the report reads every cached seed of a dataset, and names the seeds of SEEDS not run
    import json

    monkeypatch.setattr(paper, "cache", lambda: tmp_path)
    paper.table3_path("busi", 1).write_text(json.dumps(runs[0]))
    paper.render(tmp_path / "PAPER.md", "test")
    report = (tmp_path / "PAPER.md").read_text()
    assert "seeds [1]" in report and "busi seed 0" in report and "acdc seed 0" in report


def test_table3_judges_the_qa_kept_retraining_too_and_skips_rows_a_seed_lacks():
    runs = [_table3(0, a=0.40, b=0.41, b_post=0.45, kept=0.55), _table3(1, a=0.40, b=0.41, b_post=0.45, kept=0.53),
            _table3(2, a=0.40, b=0.41, b_post=0.45)]
    text = "\n".join(selftrain.format_table3(runs[:2]))
    assert f"`{selftrain.KEPT}`: >= (a) + 2.0: +14.00 — **met**" in text
    assert "`labelled + pseudo, refined (b)`: >= (a) + 2.0: +1.00 — **missed**" in text
    assert f"best is `{selftrain.KEPT} + Post`" in text
    text = "\n".join(selftrain.format_table3(runs))  # seed 2 was cached before the row existed
    assert selftrain.KEPT not in text.split("| training labels")[1]


def test_split_deals_groups_to_disjoint_parts():
    items = [(f"p{g}_f_slice{z}", f"p{g}", np.zeros((4, 4)), np.zeros((4, 4), np.uint8)) for g in range(8) for z in range(2)]
    parts = selftrain.split(items, selftrain.Split(labelled=2, unlabelled=3, test=2, seed=1))
    groups = {name: set(part.groups) for name, part in parts.items()}
    assert [len(groups[n]) for n in ("labelled", "unlabelled", "test")] == [2, 3, 2]
    assert not (groups["labelled"] & groups["unlabelled"] or groups["labelled"] & groups["test"])
    assert all(len(part.stems) == 2 * len(groups[name]) for name, part in parts.items())
    with pytest.raises(ValueError, match="split needs 9 groups"):
        selftrain.split(items, selftrain.Split(labelled=3, unlabelled=4, test=2))


def test_volume_dice_is_3d_per_volume_and_per_image_for_one_class():
    rng = np.random.default_rng(0)
    truth = [rng.integers(0, 4, (6, 5)).astype(np.uint8) for _ in range(4)]
    pred = [np.where(rng.random((6, 5)) < 0.8, t, 0).astype(np.uint8) for t in truth]
    stems = ["a_slice00", "a_slice01", "b_slice00", "b_slice01"]
    expected = []
    for members in ((0, 1), (2, 3)):
        p, t = np.stack([pred[i] for i in members]), np.stack([truth[i] for i in members])
        expected.append(np.mean([2 * ((p == c) & (t == c)).sum() / ((p == c).sum() + (t == c).sum()) for c in (1, 2, 3)]))
    assert selftrain.volume_dice(stems, pred, truth, 3) == pytest.approx(np.mean(expected))
    binary_p, binary_t = [(p > 0).astype(np.uint8) for p in pred], [(t > 0).astype(np.uint8) for t in truth]
    assert selftrain.volume_dice(stems, binary_p, binary_t, 1) == pytest.approx(
        np.mean([dice(p, t) for p, t in zip(binary_p, binary_t)]))


def test_refine_all_encodes_once_per_image_and_keeps_item_order(litemedsam_dir, data_root):
    from samedenhancer.bench import datasets

    samples = datasets.samples("cvc_clinicdb", data_root)[:2]
    items = []
    for sample in samples:
        truth = sample.ground_truth()
        # an 8-bit probability map of at most 1/255 (a U-Net sure there is nothing) is empty at 127,
        # not refused as a 0/1 label mask
        faint = (truth > 0).astype(np.uint8)
        items.append((sample.image(), [(255 * truth).astype(np.uint8), np.zeros_like(truth), faint]))
    rows = selftrain.refine_all("litemedsam", 127, items, classes=1, workers=1)
    assert len(rows) == 2 and all(len(row) == 3 for row in rows)
    for (image, maps), row in zip(items, rows):
        (refined, verdict), (empty, empty_verdict), (faint, faint_verdict) = row
        assert refined.shape == maps[0].shape and dice(refined, maps[0]) > 0.5 and verdict in ("keep", "flag")
        # Table 3's QA rule flags empty pseudo-labels (selftrain.QA_RULE)
        assert not empty.any() and empty_verdict == "flag"
        assert not faint.any() and faint_verdict == "flag"


def test_fit_predict_gives_native_size_maps(monkeypatch):
    pytest.importorskip("torch", reason="the U-Net bench needs torch (the export extra)")
    from studies import unet

    monkeypatch.setattr(selftrain, "MIN_STEPS", 4)  # the benchmark's floor of optimiser steps, kept small here

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (20 + i, 24)).astype(np.uint8) for i in range(4)]
    labels = [(im > 128).astype(np.uint8) for im in images]
    config = unet.UNetConfig(size=16, width=2, depth=2, epochs=1, batch_size=2)
    maps = selftrain._fit_predict((images, labels, 1, config, images[:2]))
    assert [m.shape for m in maps] == [(20, 24), (21, 24)] and all(m.dtype == np.uint8 for m in maps)
