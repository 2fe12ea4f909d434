"""``samedenhancer stream`` as the docs promise it (issue 30 items 9 and 22): a folder of frames is a
stream, soft masks without a threshold are one clear error, the rate counts refined frames only, a
rerun leaves no stale overlay video, and a frame that cannot be written is that frame's error. The
model is not the subject: the command runs on the fake model of ``fakes.py``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.cli import main

from fakes import record_fake_models


@pytest.fixture
def built(monkeypatch):
    return record_fake_models(monkeypatch)


@pytest.fixture
def frames(tmp_path):
    """Four grey frames in a folder, with one 0/1 coarse mask per frame."""
    rng = np.random.default_rng(3)
    for i in range(4):
        io.write_mask(tmp_path / "frames" / f"f{i:02d}.png", rng.integers(0, 255, (40, 56), np.uint8))
        mask = np.zeros((40, 56), np.uint8)
        mask[8:30, 10 + i:40 + i] = 1
        io.write_mask(tmp_path / "masks" / f"m{i:02d}.png", mask)
    return tmp_path


def _stream(base, out, *extra):
    return main(["stream", str(base / "frames"), "--coarse", str(base / "masks"), "--out", str(out), "--quiet", *extra])


def _rate(err: str) -> tuple[int, float, float]:
    """(done, seconds, frames/s) of the end summary."""
    found = re.search(r"stream: (\d+) done, .* in ([\d.]+) s \(([\d.]+) frames/s\)", err)
    return int(found[1]), float(found[2]), float(found[3])


def test_a_folder_of_frames_is_a_stream(frames, built, capsys):
    assert _stream(frames, frames / "out") == 0
    assert sorted(p.name for p in (frames / "out").iterdir()) == [f"frame_{i:06d}.png" for i in range(4)]
    assert _rate(capsys.readouterr().err)[0] == 4
    assert io.read_mask(frames / "out" / "frame_000002.png")[8:30, 12:42].all()


def test_an_unreadable_frame_in_the_folder_is_that_frames_error(frames, built, capsys):
    (frames / "frames" / "f01.png").write_bytes(b"not an image")
    assert _stream(frames, frames / "out") == 1
    err = capsys.readouterr().err
    assert "frame 1: ValueError: cannot read" in err and "f01.png" in err
    assert sorted(p.name for p in (frames / "out").iterdir()) == ["frame_000000.png", "frame_000002.png",
                                                                  "frame_000003.png"]


def test_soft_masks_without_a_threshold_are_one_error_before_the_stream(frames, built, capsys):
    ramp = np.tile(np.arange(56, dtype=np.uint8) * 4, (40, 1))  # a 0..220 probability map
    for i in range(4):
        io.write_mask(frames / "masks" / f"m{i:02d}.png", ramp)
    assert _stream(frames, frames / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("samedenhancer stream: the first coarse mask (m00.png)")
    assert "threshold" in err and not built and not list((frames / "out").iterdir())
    assert _stream(frames, frames / "out", "--threshold", "127") == 0


def test_the_rate_counts_refined_frames_only(frames, built, capsys):
    for i in range(4):
        io.write_mask(frames / "masks" / f"m{i:02d}.png", np.ones((20, 20), np.uint8))  # the wrong size: all fail
    assert _stream(frames, frames / "out") == 1
    err = capsys.readouterr().err
    assert _rate(err)[0] == 0 and _rate(err)[2] == 0.0 and err.count("does not match image shape") == 4


def test_a_rerun_leaves_no_stale_overlay_video(frames, built, capsys):
    out = frames / "out"
    assert _stream(frames, out, "--overlay") == 0
    assert len(list(io.VideoFrames(out / "overlay.avi"))) == 4
    assert _stream(frames, out) == 0
    assert not (out / "overlay.avi").exists()  # the previous run's video would not match these masks
    assert _stream(frames, out, "--overlay") == 0 and (out / "overlay.avi").exists()
    for i in range(4):
        io.write_mask(frames / "masks" / f"m{i:02d}.png", np.ones((20, 20), np.uint8))
    assert _stream(frames, out, "--overlay") == 1
    assert not (out / "overlay.avi").exists() and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_frame_whose_labels_a_png_cannot_hold_is_that_frames_error(frames, built, capsys):
    labels = np.zeros((40, 56), np.int32)
    labels[8:30, 10:40] = 70000  # above 65535: no PNG holds it
    np.save(frames / "masks" / "m01.npy", labels)
    (frames / "masks" / "m01.png").unlink()
    assert _stream(frames, frames / "out") == 1
    err = capsys.readouterr().err
    assert "frame 1: ValueError: .png stores labels 0..65535" in err and "Traceback" not in err
    assert sorted(p.name for p in (frames / "out").iterdir()) == ["frame_000000.png", "frame_000002.png",
                                                                  "frame_000003.png"]
