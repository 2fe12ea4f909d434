"""One undecodable frame is that frame's error, and the frames after it arrive (issue 30, items 8 and
26): a real DICOM ultrasound loop with one frame's JPEG damaged, an MJPG video with one frame's JPEG
damaged, through the frame readers, ``se.stream`` and ``samedenhancer stream``. The model is not
the subject (a fake one runs)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from samedenhancer import Enhancer, io, stream
from samedenhancer.cli import main

from fakes import DoublePredictor, use_fake_model

SIZE = (48, 64)  # H, W of the video
BAD_VIDEO_FRAME, BAD_DICOM_FRAME = 3, 5


def damage_jpeg(data: bytes) -> bytes:
    """``data`` (one JPEG) with the 200 bytes after its start marker zeroed: no decoder reads it."""
    damaged = bytearray(data)
    damaged[2:202] = bytes(200)
    return bytes(damaged)


@pytest.fixture
def videos(tmp_path) -> tuple[Path, Path]:
    """An 8-frame MJPG AVI and a copy with frame 3's JPEG damaged."""
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SIZE[::-1], True)
    for i in range(8):
        frame = np.full((*SIZE, 3), 20 + 25 * i, np.uint8)
        frame[10:30, 12:40] = 250
        writer.write(frame)
    writer.release()
    data = (tmp_path / "clip.avi").read_bytes()
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]  # each frame's JPEG
    assert len(starts) == 8
    start, end = starts[BAD_VIDEO_FRAME], starts[BAD_VIDEO_FRAME + 1]
    (tmp_path / "bad.avi").write_bytes(data[:start] + damage_jpeg(data[start:end]) + data[end:])
    return tmp_path / "clip.avi", tmp_path / "bad.avi"


@pytest.fixture
def loops(tmp_path) -> tuple[Path, Path]:
    """The first 8 frames of pydicom's real ultrasound loop (JPEG baseline), and a copy with frame
    5's JPEG damaged."""
    pydicom = pytest.importorskip("pydicom", reason="DICOM loops need the dicom extra (pydicom)")
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(Path(pydicom.__file__).parent / "data" / "test_files" / "examples_ybr_color.dcm")
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))[:8]
    ds.NumberOfFrames = 8
    ds.PixelData = encapsulate(frames)
    ds.save_as(tmp_path / "loop.dcm")
    frames[BAD_DICOM_FRAME] = damage_jpeg(frames[BAD_DICOM_FRAME])
    ds.PixelData = encapsulate(frames)
    ds.save_as(tmp_path / "bad.dcm")
    return tmp_path / "loop.dcm", tmp_path / "bad.dcm"


def coarse_masks(count: int, size) -> list[np.ndarray]:
    masks = []
    for i in range(count):
        mask = np.zeros(size, np.uint8)
        mask[size[0] // 5 : size[0] // 2, size[1] // 5 + i : size[1] // 2 + i] = 1
        masks.append(mask)
    return masks


def test_a_damaged_mjpg_frame_is_that_frames_error_and_the_rest_arrive(videos):
    clean, bad = videos
    assert cv2.VideoCapture(str(bad)).get(cv2.CAP_PROP_FRAME_COUNT) == 8
    expected = list(io.open_frames(clean))
    read = list(io.open_frames(bad))
    assert len(read) == 8
    error = read[BAD_VIDEO_FRAME]
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"frame {BAD_VIDEO_FRAME} of {bad} cannot be decoded") and "declares 8 frames" in str(error)
    for i in (0, 1, 2, 4, 5, 6, 7):
        assert np.array_equal(read[i], expected[i]), i  # the frames after it, as OpenCV decodes them


def test_a_damaged_dicom_frame_is_that_frames_error_and_the_rest_arrive(loops):
    clean, bad = loops
    expected = list(io.DicomFrames(clean))
    read = list(io.DicomFrames(bad))
    assert len(read) == 8
    error = read[BAD_DICOM_FRAME]
    assert isinstance(error, ValueError) and f"cannot decode frame {BAD_DICOM_FRAME} of {bad} (JPEG Baseline" in str(error)
    assert all(np.array_equal(read[i], expected[i]) for i in range(8) if i != BAD_DICOM_FRAME)
    masks = list(io.DicomFrames(bad, as_mask=True))  # a loop of masks: the same, frame by frame
    assert isinstance(masks[BAD_DICOM_FRAME], ValueError) and masks[BAD_DICOM_FRAME + 1].shape == (240, 320)


@pytest.mark.parametrize("source", ["videos", "loops"])
def test_the_stream_goes_on_after_a_damaged_frame(source, request):
    clean, bad = request.getfixturevalue(source)
    bad_index = BAD_VIDEO_FRAME if source == "videos" else BAD_DICOM_FRAME
    size = io.open_frames(bad).size
    masks = coarse_masks(8, size)
    enhancer = Enhancer(DoublePredictor(grow=1), box_margin=0, box_rounds=0)
    results = list(stream(bad, masks, enhancer=enhancer))
    assert [r.index for r in results] == list(range(8))
    assert [r.status for r in results] == ["error" if i == bad_index else "ok" for i in range(8)]
    assert "ValueError: " in results[bad_index].error and f"frame {bad_index} of {bad}" in results[bad_index].error
    expected = list(stream(clean, masks, enhancer=enhancer))
    for i in range(bad_index + 1, 8):
        assert np.array_equal(results[i].mask, expected[i].mask), i


@pytest.mark.parametrize("source", ["videos", "loops"])
def test_the_stream_command_reports_the_damaged_frame_and_writes_the_others(source, request, tmp_path, monkeypatch,
                                                                           capsys):
    _, bad = request.getfixturevalue(source)
    bad_index = BAD_VIDEO_FRAME if source == "videos" else BAD_DICOM_FRAME
    use_fake_model(monkeypatch)
    for i, mask in enumerate(coarse_masks(8, io.open_frames(bad).size)):
        io.write_mask(tmp_path / "masks" / f"m{i}.png", mask)
    out = tmp_path / "out"
    code = main(["stream", str(bad), "--coarse", str(tmp_path / "masks"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err  # a frame failed; the stream did not end (exit 2)
    assert f"frame {bad_index}: ValueError: " in err and "has no frame" not in err
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(8) if i != bad_index]
