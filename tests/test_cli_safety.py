"""The command line as a careless user and a reliability engineer meet it (issue 12): inputs never
overwritten, bad output folders found before any work, one bad file is that file's error, resume
rewrites what is missing, and every message says what to do. The model is not the subject: the
commands run on the fake model of ``fakes.py``."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.cli import build_parser, main

from fakes import FailingPredictor, record_fake_models, use_fake_model


def _blob(shape=(48, 64), value=1, dtype=np.uint8):
    mask = np.zeros(shape, dtype)
    mask[10:30, 15:45] = value
    return mask


@pytest.fixture
def folders(tmp_path):
    """Three grey images with their coarse label maps, as a user's folders hold them."""
    images, coarse = tmp_path / "images", tmp_path / "coarse"
    rng = np.random.default_rng(0)
    for i in range(3):
        io.write_mask(images / f"case{i}.png", rng.integers(0, 255, (48, 64), np.uint8))
        io.write_mask(coarse / f"case{i}.png", _blob())
    return tmp_path


@pytest.fixture
def fake_model(monkeypatch):
    """Every model the CLI builds is a DoublePredictor; the list of those built."""
    return record_fake_models(monkeypatch)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _enhance(folders, out, *extra):
    return main(["enhance", str(folders / "images"), str(folders / "coarse"), "--out", str(out), "--quiet", *extra])


# -- defect 1: inputs are never overwritten ---------------------------------------------------------
@pytest.mark.parametrize("where", ["coarse", "images", "images/sub", "link-to-coarse"])
def test_enhance_refuses_an_out_folder_that_is_or_lies_in_an_input_folder(folders, fake_model, capsys, where):
    (folders / "link-to-coarse").symlink_to(folders / "coarse", target_is_directory=True)
    before = {name: _snapshot(folders / name) for name in ("images", "coarse")}
    code = _enhance(folders, folders / where)
    err = capsys.readouterr().err
    assert code == 2
    folder = "coarse" if "coarse" in where else "images"
    assert f"{folder} folder {(folders / folder).resolve()}" in err  # names the folder, links resolved
    assert {name: _snapshot(folders / name) for name in ("images", "coarse")} == before
    assert not fake_model  # refused before any work: no model built
    assert not (folders / "images" / "sub").exists()


def test_enhance_refuses_the_folder_holding_a_single_input_file(folders, fake_model, capsys):
    code = main(["enhance", str(folders / "images" / "case0.png"), str(folders / "coarse" / "case0.png"),
                 "--out", str(folders / "coarse"), "--quiet"])
    assert code == 2 and "coarse file" in capsys.readouterr().err
    assert io.read_mask(folders / "coarse" / "case0.png").max() == 1


def _write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, frames[0].shape[1::-1], True)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def clip(tmp_path):
    """A 3-frame MJPG video and a folder with one coarse mask per frame."""
    rng = np.random.default_rng(1)
    video = _write_video(tmp_path / "clip.avi", [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(3)])
    for i in range(3):
        io.write_mask(tmp_path / "masks" / f"m{i}.png", _blob())
    return video, tmp_path / "masks"


def test_stream_refuses_an_out_folder_inside_the_coarse_folder(clip, fake_model, capsys):
    video, masks = clip
    before = _snapshot(masks)
    code = main(["stream", str(video), "--coarse", str(masks), "--out", str(masks), "--quiet"])
    assert code == 2 and f"coarse folder {masks.resolve()}" in capsys.readouterr().err
    assert _snapshot(masks) == before and not fake_model


# -- defect 8: a bad --out is found first, with a clear error ---------------------------------------
def test_enhance_checks_the_out_folder_before_running_the_model(folders, fake_model, capsys):
    (folders / "afile").write_text("not a folder")
    code = _enhance(folders, folders / "afile" / "out")
    err = capsys.readouterr().err
    assert code == 2 and "is not a writable folder" in err and "afile" in err
    assert not fake_model


def test_stream_reports_a_bad_out_folder_without_a_traceback(clip, fake_model, tmp_path, capsys):
    video, masks = clip
    (tmp_path / "afile").write_text("x")
    code = main(["stream", str(video), "--coarse", str(masks), "--out", str(tmp_path / "afile"), "--quiet"])
    assert code == 2 and "exists and is not a folder" in capsys.readouterr().err
    code = main(["stream", str(video), "--coarse", str(masks), "--out", str(tmp_path / "afile" / "sub"), "--quiet"])
    assert code == 2 and "is not a writable folder" in capsys.readouterr().err


def test_demo_reports_bad_arguments_without_a_traceback(fake_model, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(["demo", "--out", str(tmp_path / "afile" / "demo.png")])
    assert code == 2 and "afile exists and is not a folder" in capsys.readouterr().err
    code = main(["demo", "--image", str(tmp_path / "afile"), "--out", str(tmp_path / "demo.png")])
    assert code == 2 and "give --image and --coarse together" in capsys.readouterr().err
    assert not fake_model
    assert main(["demo", "--out", str(tmp_path / "demo.png")]) == 0
    assert io.read_image(tmp_path / "demo.png").ndim == 3


# -- defect 4 (CLI side): any failure of one file is that file's error ------------------------------
def test_an_unexpected_error_on_one_file_is_reported_and_the_batch_goes_on(folders, monkeypatch, capsys):
    io.write_mask(folders / "images" / "case1.png", np.zeros((37, 64), np.uint8))  # the one that fails
    io.write_mask(folders / "coarse" / "case1.png", _blob((37, 64)))
    use_fake_model(monkeypatch, lambda: FailingPredictor(37, cv2.error("inv_scale_x > 0 (from deep inside)")))
    out = folders / "out"
    code = _enhance(folders, out)
    err = capsys.readouterr().err
    assert code == 1 and "case1: error: " in err and "inv_scale_x" in err
    assert sorted(p.name for p in out.iterdir()) == ["case0.png", "case2.png"]


# -- defect 10: --resume --details rewrites a missing .json, atomically -----------------------------
def test_resume_with_details_rewrites_a_missing_json(folders, fake_model):
    out = folders / "out"
    assert _enhance(folders, out, "--details") == 0
    first = json.loads((out / "case1.json").read_text())
    (out / "case1.json").unlink()
    mask_before = (out / "case1.png").read_bytes()
    assert _enhance(folders, out, "--details", "--resume") == 0
    assert json.loads((out / "case1.json").read_text())["regions"] == first["regions"]
    assert (out / "case1.png").read_bytes() == mask_before


def test_details_are_written_through_the_atomic_writer(folders, fake_model, monkeypatch):
    renamed = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append((os.fspath(src), os.fspath(dst))), replace(src, dst))[1])
    out = folders / "out"
    assert _enhance(folders, out, "--details") == 0
    json_targets = [(src, dst) for src, dst in renamed if dst.endswith(".json")]
    assert sorted(os.path.basename(dst) for _, dst in json_targets) == ["case0.json", "case1.json", "case2.json"]
    assert all(os.path.basename(src).startswith(".") and io.atomic.PARTIAL_MARK in src for src, _ in json_targets)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# -- defect 2 end to end: int32 .npy labels above 255 ------------------------------------------------
def test_int32_npy_labels_above_255_survive_enhance_to_png(folders, fake_model):
    labels = np.zeros((48, 64), np.int32)
    labels[5:20, 5:25], labels[28:44, 30:60] = 300, 70
    for stem in ("case0", "case1", "case2"):
        (folders / "coarse" / f"{stem}.png").unlink()
        np.save(folders / "coarse" / f"{stem}.npy", labels)
    out = folders / "out"
    assert _enhance(folders, out) == 0
    refined = io.read_mask(out / "case0.png")
    assert refined.dtype == np.uint16 and set(np.unique(refined)) == {0, 70, 300}


# -- defect 6: thresholds never give plausible wrong output -----------------------------------------
def test_a_uint8_probability_map_without_threshold_is_that_files_error(folders, fake_model, capsys):
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))  # a 0..252 soft map
    io.write_mask(folders / "coarse" / "case1.png", ramp)
    out = folders / "out"
    code = _enhance(folders, out)
    err = capsys.readouterr().err
    assert code == 1 and "case1" in err and "probability map" in err and "threshold" in err
    assert not (out / "case1.png").exists()
    assert _enhance(folders, out, "--threshold", "127", "--resume") == 0  # with the threshold it is enhanced
    assert io.read_mask(out / "case1.png").max() == 255  # a thresholded map is written 0/255 (issue 30, item 13)


def test_evaluate_scores_0_255_ground_truth_as_binary(tmp_path, capsys):
    truth = _blob(value=255)
    io.write_mask(tmp_path / "gt" / "a.png", truth)
    io.write_mask(tmp_path / "pred" / "a.png", _blob(value=1))
    code = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["mean_dice"] == pytest.approx(1.0)


def test_a_uint8_threshold_on_a_0_1_mask_is_refused_in_the_cli(folders, fake_model, capsys):
    code = _enhance(folders, folders / "out", "--threshold", "127")
    err = capsys.readouterr().err
    assert code == 1 and "only 0 and 1" in err and not (folders / "out" / "case0.png").exists()


# -- defect 11: messages say what happened and what to do -------------------------------------------
def test_a_missing_coarse_folder_is_not_called_a_video_file(clip, fake_model, tmp_path, capsys):
    video, _ = clip
    code = main(["stream", str(video), "--coarse", str(tmp_path / "no-such-masks"), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "no-such-masks" in err and "video file" not in err


def test_an_empty_input_folder_is_an_error(folders, fake_model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["enhance", str(tmp_path / "empty"), str(folders / "coarse"), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2 and "holds no readable file" in capsys.readouterr().err
    code = main(["evaluate", str(folders / "coarse"), str(tmp_path / "empty")])
    assert code == 2 and "holds no readable file" in capsys.readouterr().err


def test_top_level_help_lists_every_command_by_task_with_an_example(capsys):
    from samedenhancer import __version__
    from samedenhancer.cli import GROUPS

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "Segment-Anything" in out and "example:" in out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and not line.startswith("  -")
              and "writes" in line]
    assert listed == ["enhance", "stream", "propagate", "pseudolabel", "embed", "annotate", "evaluate", "prior-maps",
                      "demo", "export"]
    assert all(f"{title}:" in out for title in GROUPS)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"samedenhancer {__version__}"


def test_every_subcommand_help_says_what_it_writes():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert sorted(commands) == sorted(["enhance", "stream", "propagate", "pseudolabel", "embed", "annotate", "evaluate",
                                       "prior-maps", "demo", "export"])
    assert not [name for name, sub in commands.items() if "Writes" not in (sub.description or "")]


def test_every_argument_of_every_command_has_help():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    missing = [
        f"{name} {action.dest}"
        for name, sub in commands.items()
        for action in sub._actions
        if action.dest != "help" and not action.help
    ]
    assert not missing


def test_a_damaged_model_cache_says_what_to_run(litemedsam_dir, tmp_path):
    from samedenhancer import Enhancer

    damaged = tmp_path / "model"
    shutil.copytree(litemedsam_dir, damaged, ignore=shutil.ignore_patterns("trt_cache"))
    (damaged / "encoder.onnx").write_bytes(b"\x00garbage" * 100)
    manifest = json.loads((damaged / "manifest.json").read_text())
    assert manifest["files"]["encoder"] == "encoder.onnx"
    with pytest.raises(ValueError, match=r"damaged.*samedenhancer export litemedsam --out"):
        Enhancer(damaged)
    (damaged / "manifest.json").write_text('{"schema": 3, "name": "litem')  # truncated
    with pytest.raises(ValueError, match=r"manifest.json is damaged .*samedenhancer export"):
        Enhancer(damaged)


def test_a_garbage_checkpoint_never_advises_unsafe_loading(tmp_path):
    pytest.importorskip("torch", reason="checkpoints are read by the export extra (torch)")
    from samedenhancer.export.torch_models import _state_dict

    for i, garbage in enumerate((b"not a checkpoint" * 10, b"", b"PK\x03\x04" + b"x" * 40)):
        path = tmp_path / f"bad{i}.pt"
        path.write_bytes(garbage)
        with pytest.raises(ValueError, match="not a readable PyTorch state dict") as error:
            _state_dict(path)
        assert "weights_only=False" not in str(error.value) and error.value.__cause__ is None


# -- issue 30 items 16, 21, 26: pairing says what it does -------------------------------------------
def test_two_files_given_explicitly_are_a_pair_whatever_their_names(tmp_path, fake_model, capsys):
    nibabel = pytest.importorskip("nibabel", reason="NIfTI volumes need the nifti extra (nibabel)")
    rng = np.random.default_rng(2)
    volume = rng.integers(0, 255, (48, 64, 3)).astype(np.uint8)
    coarse = np.zeros((48, 64, 3), np.uint8)
    coarse[10:30, 15:45, :] = 1
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / "case.nii.gz")
    nibabel.save(nibabel.Nifti1Image(coarse, np.eye(4)), tmp_path / "case_coarse.nii.gz")
    code = main(["enhance", str(tmp_path / "case.nii.gz"), str(tmp_path / "case_coarse.nii.gz"),
                 "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0 and "enhance: 1 done, 0 failed of 1" in capsys.readouterr().err
    refined, _ = io.read_volume(tmp_path / "o" / "case.nii.gz", as_mask=True)
    assert refined.shape == (48, 64, 3) and refined[12:28, 17:43, :].all()


def test_two_files_with_one_stem_are_refused_before_any_work_naming_both(folders, fake_model, capsys):
    np.save(folders / "coarse" / "case1.npy", np.zeros((48, 64), np.uint8))  # an empty x.npy beside x.png
    assert _enhance(folders, folders / "out") == 2
    err = capsys.readouterr().err
    assert "two files with the stem 'case1': case1.npy and case1.png" in err
    assert not fake_model and not (folders / "out").exists()


def test_a_broken_link_or_a_folder_named_like_an_image_is_reported_as_what_it_is(folders, fake_model, capsys):
    (folders / "images" / "case1.png").unlink()
    (folders / "images" / "case1.png").symlink_to(folders / "moved-away.png")
    (folders / "images" / "case2.png").unlink()
    (folders / "images" / "case2.png").mkdir()
    assert _enhance(folders, folders / "out") == 1
    err = capsys.readouterr().err
    assert "case1: no image (case1.png is a broken symbolic link (to " in err
    assert "case2: no image (case2.png is a folder, not a file)" in err


# -- issue 29: overlays, one options object, one flag style -----------------------------------------
def test_enhance_and_pseudolabel_write_small_overlays(folders, fake_model):
    big = np.random.default_rng(4).integers(0, 255, (700, 1000), np.uint8)
    io.write_mask(folders / "images" / "case0.png", big)
    mask = np.zeros((700, 1000), np.uint8)
    mask[100:500, 200:800] = 1
    io.write_mask(folders / "coarse" / "case0.png", mask)
    for command in ("enhance", "pseudolabel"):
        out = folders / command
        assert main([command, str(folders / "images"), str(folders / "coarse"), "--out", str(out), "--overlay",
                     "--quiet"]) == 0
        assert sorted(p.name for p in (out / "overlay").iterdir()) == ["case0.png", "case1.png", "case2.png"]
        panel = io.read_image(out / "overlay" / "case0.png")
        assert panel.shape == (358, 512, 3)  # small: the longer side at most 512 px
        for colour in ((255, 220, 0), (0, 230, 255)):  # coarse yellow, refined cyan
            assert (panel == colour).all(axis=2).any()


def test_the_refinement_flags_become_one_enhance_options():
    from samedenhancer import EnhanceOptions
    from samedenhancer.cli.flags import enhance_options

    parser = build_parser()
    for command in (["enhance", "i", "c", "--out", "o"], ["pseudolabel", "i", "c", "--out", "o"],
                    ["stream", "v", "--coarse", "c", "--out", "o"]):
        args = parser.parse_args(command + ["--threshold", "127", "--no-gate", "--no-fusion", "--box-rounds", "1",
                                            "--prior", "single", "--policy", "box"])
        assert enhance_options(args) == EnhanceOptions(threshold=127, gate=False, fusion=False, box_rounds=1,
                                                       prior="single", policy="box")
        assert enhance_options(parser.parse_args(command)) == EnhanceOptions()


def test_every_on_off_flag_has_a_no_form_and_shared_flags_read_alike():
    from samedenhancer.cli.flags import SHARED

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    seen = {}
    for name, sub in commands.items():
        for action in sub._actions:
            if action.dest == "help":
                continue
            if action.nargs == 0:
                assert isinstance(action, argparse.BooleanOptionalAction), f"{name} {action.option_strings}"
            if action.option_strings and action.dest in ("model", "providers", "threads"):
                seen.setdefault(action.dest, set()).add((action.default, action.help, action.type))
    assert all(len(variants) == 1 for name, variants in seen.items() if name != "threads"), seen
    assert {option for option, *_ in seen["threads"]} == {None} and {t for *_, t in seen["threads"]} == {SHARED["threads"][1]["type"]}


# -- issue 30 item 3: propagate never writes over its scan or seed ----------------------------------
def test_propagate_refuses_the_seed_file_and_the_scans_folder_as_out(tmp_path, fake_model, capsys):
    pytest.importorskip("nibabel", reason="NIfTI volumes need the nifti extra (nibabel)")
    rng = np.random.default_rng(5)
    io.write_volume(tmp_path / "case.nii.gz", rng.integers(0, 255, (48, 64, 3)).astype(np.uint8), affine=np.eye(4))
    io.write_mask(tmp_path / "seed.png", _blob())
    seed_volume = np.zeros((48, 64, 3), np.uint8)
    seed_volume[10:30, 15:45, 1] = 1
    io.write_volume(tmp_path / "seeds" / "seed.nii.gz", seed_volume, affine=np.eye(4))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for seed, extra, out, says in [
        ("seed.png", ["--slice", "1"], "seed.png", "is the seed file"),
        ("seeds/seed.nii.gz", [], "seeds/seed.nii.gz", "is the seed file"),
        ("seed.png", ["--slice", "1"], ".", "is the folder holding the scan file"),
        ("seeds/seed.nii.gz", [], "seeds", "is the folder holding the seed file"),
    ]:
        code = main(["propagate", str(tmp_path / "case.nii.gz"), str(tmp_path / seed), *extra, "--out", str(tmp_path / out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("samedenhancer propagate: ") and says in err, (out, err)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before and not fake_model
