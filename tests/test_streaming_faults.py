"""A stream outlives its bad inputs (issue 12, defect 5): a corrupt file in a coarse-mask folder
is that frame's error result and the frames after it come out. The model is not the subject."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Enhancer, io, stream
from samedenhancer.cli import main

from fakes import DoublePredictor, use_fake_model


@pytest.fixture
def masks(tmp_path):
    for i in range(4):
        mask = np.zeros((40, 56), np.uint8)
        mask[8:30, 10 + i : 40 + i] = 1
        io.write_mask(tmp_path / "masks" / f"m{i}.png", mask)
    good = (tmp_path / "masks" / "m1.png").read_bytes()
    (tmp_path / "masks" / "m1.png").write_bytes(good[: len(good) // 2])  # truncated
    return tmp_path / "masks"


def test_a_corrupt_mask_in_a_coarse_folder_is_that_frames_error(masks):
    frames = [np.full((40, 56), 100, np.uint8)] * 4
    enhancer = Enhancer(DoublePredictor(), box_margin=0, box_rounds=0)
    results = list(stream(frames, masks, drop="none", enhancer=enhancer))
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.status for r in results] == ["ok", "error", "ok", "ok"]
    assert "m1.png" in results[1].error and "ValueError" in results[1].error
    assert np.array_equal(results[3].mask, enhancer.enhance(frames[3], io.read_mask(masks / "m3.png")).mask)


def test_the_stream_command_goes_on_after_a_corrupt_mask(masks, tmp_path, monkeypatch, capsys):
    import cv2

    use_fake_model(monkeypatch)
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (56, 40), True)
    for _ in range(4):
        writer.write(np.full((40, 56, 3), 90, np.uint8))
    writer.release()
    out = tmp_path / "out"
    code = main(["stream", str(tmp_path / "clip.avi"), "--coarse", str(masks), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "frame 1: ValueError" in err
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000002.png", "frame_000003.png"]
