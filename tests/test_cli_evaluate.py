"""``samedenhancer evaluate`` scores masks as the masks they are (issue 30 item 15): a soft or 0/255
prediction against a 0/1 truth, a lossy JPEG truth, strict JSON; per-image overlays and the figure of
the per-image change (issue 29); a reader that goes away (``| head``) ends it quietly (item 23)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.cli import BROKEN_PIPE, main


def _blob(value=1, dtype=np.uint8, grow=0, shape=(48, 64)):
    mask = np.zeros(shape, dtype)
    mask[10 - grow:30 + grow, 15 - grow:45 + grow] = value
    return mask


def _summary(out: str) -> dict:
    return json.loads(out[out.index("{"):], parse_constant=lambda token: pytest.fail(f"non-standard JSON: {token}"))


@pytest.mark.parametrize("pred", [_blob(0.9, np.float32), _blob(255), _blob(1), _blob(True, bool)],
                         ids=["float 0/0.9", "0/255", "0/1", "bool"])
def test_a_binary_prediction_scores_1_against_its_own_truth_whatever_marks_the_foreground(tmp_path, capsys, pred):
    io.write_mask(tmp_path / "gt" / "a.png", _blob())
    np.save(tmp_path / "pred.npy", pred)
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred.npy").rename(tmp_path / "pred" / "a.npy")
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--quiet"]) == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["mean_dice"] == 1.0 and summary["mean_hd95"] == 0.0


def test_label_maps_with_several_classes_are_scored_by_their_labels(tmp_path, capsys):
    truth = _blob()
    truth[35:45, 5:15] = 2
    swapped = np.where(truth == 1, 2, np.where(truth == 2, 1, 0)).astype(np.uint8)
    io.write_mask(tmp_path / "gt" / "a.png", truth)
    io.write_mask(tmp_path / "pred" / "a.png", swapped)  # the right regions with the wrong classes
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--quiet"]) == 0
    assert _summary(capsys.readouterr().out)["mean_dice"] == 0.0


def test_a_soft_prediction_without_threshold_is_that_files_error_and_says_how(tmp_path, capsys):
    io.write_mask(tmp_path / "gt" / "a.png", _blob())
    io.write_mask(tmp_path / "pred" / "a.png", np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1)))  # 0..252 ramp
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "a: ValueError: pred a.png:" in err and "--pred-threshold" in err


def test_a_jpeg_truth_scores_as_the_binary_mask_it_stores(tmp_path, capsys):
    truth = _blob(255, shape=(96, 128), grow=6)
    (tmp_path / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "gt" / "a.jpg"), truth, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert len(np.unique(cv2.imread(str(tmp_path / "gt" / "a.jpg"), cv2.IMREAD_UNCHANGED))) > 2  # lossy: grey values
    io.write_mask(tmp_path / "pred" / "a.png", (truth > 0).astype(np.uint8))
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--quiet"]) == 0
    assert _summary(capsys.readouterr().out)["mean_dice"] > 0.98


def test_undefined_scores_are_null_in_strict_json(tmp_path, capsys):
    io.write_mask(tmp_path / "gt" / "a.png", _blob())
    io.write_mask(tmp_path / "pred" / "a.png", np.zeros((48, 64), np.uint8))  # empty: HD95 undefined
    io.write_mask(tmp_path / "coarse" / "a.png", np.zeros((48, 64), np.uint8))
    code = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--coarse", str(tmp_path / "coarse"),
                 "--json", str(tmp_path / "scores.json"), "--quiet"])
    assert code == 0
    summary = _summary(capsys.readouterr().out)
    assert summary["mean_dice"] == 0.0 and summary["mean_hd95"] is None and summary["hd95_undefined"] == 1
    document = json.loads((tmp_path / "scores.json").read_text(),
                          parse_constant=lambda token: pytest.fail(f"non-standard JSON: {token}"))
    assert document["images"][0]["hd95"] is None and document["images"][0]["delta_hd95"] is None


@pytest.fixture
def scored(tmp_path):
    """Three images with truth, coarse masks (too small) and predictions (right)."""
    rng = np.random.default_rng(0)
    for i in range(3):
        io.write_mask(tmp_path / "images" / f"c{i}.png", rng.integers(0, 255, (48, 64, 3), np.uint8))
        io.write_mask(tmp_path / "gt" / f"c{i}.png", _blob(grow=3))
        io.write_mask(tmp_path / "coarse" / f"c{i}.png", _blob(grow=-i - 1))
        io.write_mask(tmp_path / "pred" / f"c{i}.png", _blob(grow=3))
    return tmp_path


def test_overlays_show_truth_coarse_and_prediction_with_the_scores(scored, capsys):
    code = main(["evaluate", str(scored / "pred"), str(scored / "gt"), "--coarse", str(scored / "coarse"),
                 "--images", str(scored / "images"), "--overlay", str(scored / "overlays"), "--quiet"])
    assert code == 0 and "outputs in" in capsys.readouterr().err
    assert sorted(p.name for p in (scored / "overlays").iterdir()) == ["c0.png", "c1.png", "c2.png"]
    panel = io.read_image(scored / "overlays" / "c1.png")
    for colour in ((255, 220, 0), (0, 230, 255)):  # coarse (yellow) and prediction (cyan) outlines
        assert (panel == colour).all(axis=2).any()


@pytest.mark.parametrize("matplotlib", [True, False], ids=["matplotlib", "opencv"])
def test_the_figure_of_the_per_image_change(scored, capsys, monkeypatch, matplotlib):
    if matplotlib:
        pytest.importorskip("matplotlib", reason="the figure's matplotlib drawing needs matplotlib (bench/test extras)")
    else:
        monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # as if it were not installed
    figure = scored / "change.png"
    code = main(["evaluate", str(scored / "pred"), str(scored / "gt"), "--coarse", str(scored / "coarse"),
                 "--figure", str(figure), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and ("matplotlib is not installed" in err) != matplotlib
    picture = io.read_image(figure)
    assert picture.ndim == 3 and min(picture.shape[:2]) >= 300 and (picture != 255).any()


def test_overlays_and_figures_need_their_inputs(scored, capsys):
    assert main(["evaluate", str(scored / "pred"), str(scored / "gt"), "--figure", str(scored / "f.png")]) == 2
    assert "give --coarse too" in capsys.readouterr().err
    assert main(["evaluate", str(scored / "pred"), str(scored / "gt"), "--overlay", str(scored / "o")]) == 2
    assert "give --images and --overlay together" in capsys.readouterr().err
    assert main(["evaluate", str(scored / "pred"), str(scored / "gt"), "--csv", str(scored / "gt" / "c0.png")]) == 2
    assert "--csv" in capsys.readouterr().err and io.read_mask(scored / "gt" / "c0.png").max() == 1


def test_a_reader_that_goes_away_ends_evaluate_quietly(scored):
    command = [sys.executable, "-c", "import sys; from samedenhancer.cli import main; sys.exit(main())",
               "evaluate", str(scored / "pred"), str(scored / "gt")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # `| head -0`: the reader is gone before the first line
    _, err = process.communicate(timeout=120)
    assert process.returncode == BROKEN_PIPE and b"Traceback" not in err and b"Exception ignored" not in err, err
