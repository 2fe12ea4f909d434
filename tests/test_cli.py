"""The command line on real files: batch enhance with broken inputs mixed in, resume, evaluate."""

from __future__ import annotations

import json
import shutil

import pytest

from samedenhancer import io
from samedenhancer.cli import main
from samedenhancer.bench import datasets


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_root):
    base = tmp_path_factory.mktemp("cli")
    images, coarse, truth = base / "images", base / "coarse", base / "truth"
    for folder in (images, coarse, truth):
        folder.mkdir()
    for sample in datasets.samples("kvasir", data_root)[:3]:
        shutil.copy(sample.image_path, images / sample.image_path.name)
        shutil.copy(sample.coarse_paths["pranet"], coarse / f"{sample.stem}.png")
        io.write_mask(truth / f"{sample.stem}.png", sample.ground_truth())
    (images / "truncated.jpg").write_bytes(sample.image_path.read_bytes()[:2000])
    shutil.copy(sample.coarse_paths["pranet"], coarse / "truncated.png")
    shutil.copy(sample.image_path, images / "orphan.jpg")  # an image without a coarse mask
    return base


def test_batch_with_broken_files_keeps_every_good_result(folders, litemedsam_dir, capsys):
    out = folders / "out"
    code = main(["enhance", str(folders / "images"), str(folders / "coarse"), "--out", str(out),
                 "--threshold", "127", "--details", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    written = sorted(p.name for p in out.iterdir())
    good = sorted(p.stem for p in (folders / "truth").iterdir())
    assert written == sorted([f"{s}.png" for s in good] + [f"{s}.json" for s in good])
    assert "truncated" in err and "orphan: no coarse mask" in err and "3 done, 2 failed of 5" in err
    details = json.loads((out / f"{good[0]}.json").read_text())
    assert details["policy"] == "box" and details["regions"][0]["box_xyxy"]
    assert details["fused"] and details["regions"][0]["decoder_rounds"] >= 1  # PraNet maps are soft
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_resume_skips_finished_outputs(folders, litemedsam_dir, capsys):
    out = folders / "resumed"
    args = ["enhance", str(folders / "images"), str(folders / "coarse"), "--out", str(out), "--threshold", "127", "--quiet"]
    main(args)
    first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    main(args + ["--resume"])
    assert "0 done, 2 failed, 3 already done of 5" in capsys.readouterr().err  # only the broken file is retried
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == first


def test_evaluate_reports_dice_and_the_change_against_coarse(folders, tmp_path, capsys):
    table = tmp_path / "scores.csv"
    code = main(["evaluate", str(folders / "coarse"), str(folders / "truth"), "--pred-threshold", "127",
                 "--coarse", str(folders / "coarse"), "--coarse-threshold", "127", "--csv", str(table)])
    captured = capsys.readouterr()
    summary = json.loads(captured.out[captured.out.index("{"):])
    assert summary["images"] == 3 and 0.8 < summary["mean_dice"] <= 1.0
    assert summary["mean_delta_dice"] == 0.0  # coarse scored against itself
    assert len(table.read_text().splitlines()) == 4
    assert code == 1 and "truncated: no ground truth" in captured.err  # a prediction without truth is reported


def test_missing_input_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_gate_flag_is_three_way():
    from samedenhancer.cli import build_parser

    parse = lambda *extra: build_parser().parse_args(["enhance", "i", "c", "--out", "o", *extra]).gate  # noqa: E731
    assert parse() is None and parse("--gate") is True and parse("--no-gate") is False
