"""Pseudo-label mode: the review and its keep/flag rule, and ``samedenhancer pseudolabel`` (manifest,
per-file failures, resume), with the deterministic model double of the pipeline tests."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from samedenhancer import io
from samedenhancer.cli import main
from samedenhancer.enhancer import Enhancer
from samedenhancer.pseudolabel import Review, Rule, pseudolabel, review
from fakes import DoublePredictor, use_fake_model


def _square(shape=(64, 64), y0=20, y1=40, x0=20, x1=40):
    mask = np.zeros(shape, np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def test_a_refinement_that_agrees_is_kept_and_one_that_moves_far_is_flagged():
    image = np.zeros((64, 64), np.uint8)
    close = pseudolabel(image, _square(), enhancer=Enhancer(DoublePredictor(), box_margin=0))
    assert close.review.verdict == "keep" and close.review.regions == 1
    assert close.review.agreement > 0.9 and close.review.min_iou_prediction == pytest.approx(0.9)
    assert close.mask.shape == (64, 64) and close.result.regions
    grown = pseudolabel(image, _square(), enhancer=Enhancer(DoublePredictor(grow=12), box_margin=0))
    assert grown.review.verdict == "flag" and grown.review.reason.startswith("agreement")
    assert grown.review.agreement < 0.7


def test_rule_thresholds_decide_and_empty_labels_are_kept():
    image = np.zeros((64, 64), np.uint8)
    enhancer = Enhancer(DoublePredictor(ious=[0.3]), box_margin=0)
    result = enhancer.enhance(image, _square())
    assert review(result, _square()).verdict == "keep"
    strict = review(result, _square(), Rule(min_iou=0.5))
    assert strict.verdict == "flag" and "IoU prediction 0.30 < 0.50" in strict.reason
    empty = pseudolabel(image, np.zeros((64, 64), np.uint8), enhancer=enhancer)
    assert empty.review.verdict == "keep" and empty.review.regions == 0 and np.isnan(empty.review.min_iou_prediction)


def test_flag_empty_flags_only_empty_pseudo_labels():
    image = np.zeros((64, 64), np.uint8)
    enhancer = Enhancer(DoublePredictor(), box_margin=0)
    rule = Rule(flag_empty=True)
    empty = pseudolabel(image, np.zeros((64, 64), np.uint8), enhancer=enhancer, rule=rule)
    assert empty.review.verdict == "flag" and "empty pseudo-label" in empty.review.reason
    assert pseudolabel(image, _square(), enhancer=enhancer, rule=rule).review.verdict == "keep"
    # a label with foreground but no region after MSFF (one speck) is still kept: it is not empty
    speck = np.zeros((64, 64), np.uint8)
    speck[5, 5] = 1
    kept = pseudolabel(image, speck, enhancer=enhancer, rule=rule)
    assert kept.review.regions == 0 and kept.review.verdict == "keep"
    assert str(rule).endswith("; flag empty labels") and "empty" not in str(Rule())


def test_gate_fired_flags_unless_the_rule_says_otherwise():
    image = np.zeros((64, 64), np.uint8)
    enhancer = Enhancer(DoublePredictor(grow=12), box_margin=0, gate=True)
    result = enhancer.enhance(image, _square())
    assert result.gate_fired == 1
    loose = Rule(min_agreement=0.0)
    assert review(result, _square(), loose).verdict == "flag"
    assert review(result, _square(), Rule(min_agreement=0.0, flag_gate=False)).verdict == "keep"


def test_a_thresholded_pseudo_label_is_read_once_and_written_as_0_255(monkeypatch):
    import samedenhancer.core.prompts

    reads = []
    as_label_map = samedenhancer.core.prompts.as_label_map
    monkeypatch.setattr(samedenhancer.core.prompts, "as_label_map", lambda *a, **k: reads.append(1) or as_label_map(*a, **k))
    soft = 200 * _square()
    soft[19, 20:40] = 90  # a soft edge below the threshold
    enhancer = Enhancer(DoublePredictor(), box_margin=0, box_rounds=0, threshold=127)  # no re-boxing of refined masks
    label = pseudolabel(np.zeros((64, 64), np.uint8), soft, enhancer=enhancer)
    assert len(reads) == 1  # the pseudo-label is validated and thresholded once (issue 29)
    assert sorted(np.unique(label.mask).tolist()) == [0, 255]  # as every command writes it (issue 30, item 13)
    assert label.review.verdict == "keep" and label.review.agreement > 0.95  # reviewed against its 0/1 labels


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="Rule min_agreement must be a number in \\[0, 1\\]"):
        Rule(min_agreement=1.5)
    with pytest.raises(TypeError, match="Rule flag_gate must be True or False"):
        Rule(flag_gate="yes")
    with pytest.raises(TypeError, match="Rule flag_empty must be True or False"):
        Rule(flag_empty=1)
    with pytest.raises(TypeError, match="Rule min_iou must be a number"):
        Rule(min_iou="0.5")
    with pytest.raises(TypeError, match="rule must be a samedenhancer.pseudolabel.Rule"):
        review(Enhancer(DoublePredictor()).enhance(np.zeros((64, 64)), _square()), _square(), rule="strict")
    with pytest.raises(TypeError, match="result must be an EnhanceResult"):
        review(np.zeros((4, 4)), np.zeros((4, 4)))
    result = Enhancer(DoublePredictor()).enhance(np.zeros((64, 64)), _square())
    with pytest.raises(ValueError, match="pseudo_labels must have the shape"):
        review(result, np.zeros((8, 8)))


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    use_fake_model(monkeypatch, lambda: DoublePredictor(grow=1))  # the CLI's model, the double
    images, pseudo = tmp_path / "images", tmp_path / "pseudo"
    images.mkdir()
    pseudo.mkdir()
    for i, shift in enumerate((0, 5, 10)):
        io.write_mask(images / f"img{i}.png", np.full((64, 64), 100, np.uint8))
        io.write_mask(pseudo / f"img{i}.png", 255 * _square(x0=10 + shift, x1=30 + shift))
    io.write_mask(images / "orphan.png", np.zeros((64, 64), np.uint8))
    (pseudo / "broken.png").write_bytes(b"not a png")
    io.write_mask(images / "broken.png", np.zeros((64, 64), np.uint8))
    return tmp_path


def _manifest(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_writes_labels_and_a_manifest_and_reports_failures(folders, capsys):
    out = folders / "out"
    code = main(["pseudolabel", str(folders / "images"), str(folders / "pseudo"), "--out", str(out),
                 "--threshold", "127", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "orphan: no pseudo-label" in err and "broken" in err and "3 done, 2 failed of 5" in err
    rows = _manifest(out / "manifest.csv")
    assert [r["stem"] for r in rows] == ["img0", "img1", "img2"]
    assert list(rows[0]) == ["stem", "input", "output", *Review.columns(), "rule"]
    assert all(r["verdict"] == "keep" and r["regions"] == "1" and float(r["agreement"]) >= 0.7 for r in rows)
    assert rows[0]["rule"] == str(Rule())
    assert sorted(p.name for p in out.glob("*.png")) == ["img0.png", "img1.png", "img2.png"]
    assert set(np.unique(io.read_mask(out / "img0.png")).tolist()) == {0, 255}  # 0/255 in, 0/255 out
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_cli_resume_skips_what_the_manifest_holds(folders, capsys):
    out = folders / "out"
    args = ["pseudolabel", str(folders / "images"), str(folders / "pseudo"), "--out", str(out), "--threshold", "127",
            "--quiet"]
    main(args)
    (out / "img1.png").unlink()  # an output lost after the run: resume redoes it
    before = (out / "img0.png").stat().st_mtime_ns
    capsys.readouterr()
    main(args + ["--resume", "--min-agreement", "0.99"])
    assert "1 done, 2 failed, 2 already done of 5" in capsys.readouterr().err  # img1 redone, the broken file retried
    rows = {r["stem"]: r for r in _manifest(out / "manifest.csv")}
    assert set(rows) == {"img0", "img1", "img2"} and (out / "img0.png").stat().st_mtime_ns == before
    assert rows["img1"]["verdict"] == "flag" and rows["img0"]["verdict"] == "keep"


def test_the_runtime_path_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, samedenhancer.cli, samedenhancer.pseudolabel; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_cli_flag_empty_flags_the_empty_pseudo_label(folders, capsys):
    io.write_mask(folders / "images" / "blank.png", np.full((64, 64), 100, np.uint8))
    io.write_mask(folders / "pseudo" / "blank.png", np.zeros((64, 64), np.uint8))
    out = folders / "out"
    main(["pseudolabel", str(folders / "images"), str(folders / "pseudo"), "--out", str(out), "--threshold", "127",
          "--quiet", "--flag-empty"])
    rows = {r["stem"]: r for r in _manifest(out / "manifest.csv")}
    assert rows["blank"]["verdict"] == "flag" and rows["blank"]["reason"].startswith("empty pseudo-label")
    assert rows["img0"]["verdict"] == "keep" and rows["img0"]["rule"] == str(Rule(flag_empty=True))
    assert not io.read_mask(out / "blank.png").any()  # the empty label is still written
