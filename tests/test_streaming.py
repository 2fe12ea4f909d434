"""Streaming frames through the Enhancer: order, equality with enhance, bad frames, drops, cleanup,
video sources and the ``samedenhancer stream`` command, on real Kvasir frames with PraNet maps."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from samedenhancer import Enhancer, FrameResult, io, stream
from samedenhancer.cli import main as cli_main
from samedenhancer.bench import datasets

from fakes import CountingPredictor


@pytest.fixture(scope="module")
def enhancer(litemedsam_dir):
    return Enhancer("litemedsam", threshold=127)


@pytest.fixture(scope="module")
def clip(data_root):
    """Two real Kvasir frames with their PraNet probability maps, shrunk to 320 x 256."""
    frames, maps = [], []
    for sample in datasets.samples("kvasir", data_root)[:2]:
        frames.append(cv2.resize(sample.image(), (320, 256), interpolation=cv2.INTER_AREA))
        maps.append(cv2.resize(sample.coarse("pranet"), (320, 256), interpolation=cv2.INTER_AREA))
    return frames, maps


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("samedenhancer-stream")]


def test_order_kept_and_masks_equal_enhance(enhancer, clip):
    frames, maps = clip
    frames, maps = frames + [frames[0]], maps + [np.zeros_like(maps[0])]
    results = list(stream(frames, maps, drop="none", enhancer=enhancer))
    assert [r.index for r in results] == [0, 1, 2]
    assert all(isinstance(r, FrameResult) and r.status == "ok" and r.error is None for r in results)
    for result, expected in zip(results, _enhanced(enhancer, frames, maps)):
        np.testing.assert_array_equal(result.mask, expected)
        assert result.latency >= result.timings.total > 0
    assert all(r.timings.encode > 0 and r.timings.preprocess > 0 and r.timings.decode > 0 for r in results[:2])
    assert results[2].timings.encode == 0 and not results[2].mask.any()


_ENHANCED: dict = {}


def _enhanced(enhancer, frames, maps) -> list[np.ndarray]:
    """``enhancer.enhance`` per frame, computed once for the module (the encoder is the slow part)."""
    key = tuple(id(f) for f in frames) + tuple(id(m) for m in maps)
    if key not in _ENHANCED:
        _ENHANCED[key] = [enhancer.enhance(f, m).mask for f, m in zip(frames, maps)]
    return _ENHANCED[key]


def test_bad_frames_yield_errors_and_the_stream_goes_on(enhancer, clip):
    frames, maps = clip
    counting = CountingPredictor(enhancer.predictor, fail_decode_for=(200, 320))
    streamer = Enhancer(counting, threshold=127)
    nan_frame = frames[0].astype(np.float32)
    nan_frame[10, 10, 0] = np.nan
    cases = [
        (frames[0], maps[0], None),
        (nan_frame, maps[0], "NaN"),
        (frames[0][..., :2], maps[0], "shape"),
        (np.zeros((0, 320, 3), np.uint8), np.zeros((0, 320), np.uint8), "pixel"),
        (frames[1], maps[1][::2, ::2], "does not match"),  # the whole map at half size: a soft map of another size
        (None, maps[1], "numpy array"),
        (frames[1][:200], maps[1][:200], "decoder failed"),
        (frames[1], maps[1], None),
    ]
    results = list(stream([c[0] for c in cases], [c[1] for c in cases] + [maps[0]], drop="none", enhancer=streamer))
    assert [r.index for r in results] == list(range(len(cases) + 1))
    for result, (_, _, message) in zip(results, cases):
        if message is None:
            assert result.status == "ok" and result.mask.shape == (256, 320)
        else:
            assert result.status == "error" and result.mask is None and message in result.error
    # the mask left over at the end has no frame: an error result too
    assert results[-1].status == "error" and "no frame" in results[-1].error


def test_empty_coarse_mask_costs_no_encoder_call(enhancer, clip):
    frames, maps = clip
    counting = CountingPredictor(enhancer.predictor)
    empty = np.zeros_like(maps[0])
    speck = empty.copy()
    speck[5, 5] = 255  # one pixel: below min_area, no region survives
    results = list(stream(frames + [frames[0]], [empty, maps[1], speck], drop="none", enhancer=Enhancer(counting, threshold=127)))
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert counting.encodes == 1
    assert not results[0].mask.any() and results[1].mask.any()
    np.testing.assert_array_equal(results[2].mask, speck)  # a 0/255 mask given a threshold comes back 0/255


def _source(frames, done: threading.Event):
    """``frames`` one by one; ``done`` is set once the stream has taken every one of them."""
    yield from frames
    done.set()


def test_stale_frames_are_dropped_and_reported_when_the_consumer_is_slow(enhancer, clip):
    frames, maps = clip
    count = 8
    empty = np.zeros_like(maps[0])  # no model call: frames are ready within milliseconds
    taken = threading.Event()
    generator = stream(_source([frames[0]] * count, taken), [empty] * count, max_latency_ms=50, enhancer=enhancer)
    results = [next(generator)]
    assert taken.wait(60)  # the consumer held the stream until the source was read to its end ...
    time.sleep(0.1)  # ... and past the budget: whatever waits for it now is stale, however fast the machine
    results += list(generator)
    assert [r.index for r in results] == list(range(count))
    dropped = [r for r in results if r.status == "dropped"]
    # at most three frames fit in the pipeline (two queues and the decoder) while the consumer holds it
    assert len(dropped) >= count - 4
    assert all(r.mask is None and ("max_latency_ms" in r.error or "queue full" in r.error) for r in dropped)
    assert {r.status for r in results} <= {"ok", "dropped"}


def test_drop_oldest_without_budget_replaces_waiting_frames(enhancer, clip):
    frames, maps = clip
    count = 8
    empty = np.zeros_like(maps[0])
    taken = threading.Event()
    generator = stream(_source([frames[0]] * count, taken), [empty] * count, drop="oldest", enhancer=enhancer)
    results = [next(generator)]
    assert taken.wait(60)  # the whole source went through while the consumer held the stream
    results += list(generator)
    assert [r.index for r in results] == list(range(count))
    assert sum(r.status == "dropped" and "queue full" in r.error for r in results) >= count - 4


@pytest.mark.parametrize("source", ["list", "generator"])
def test_a_recorded_source_keeps_every_frame_by_default_whatever_the_consumer(enhancer, clip, source):
    frames, maps = clip
    count = 8
    empty = np.zeros_like(maps[0])
    taken = threading.Event()
    items = [frames[0]] * count if source == "list" else _source([frames[0]] * count, taken)
    generator = stream(items, [empty] * count, enhancer=enhancer)  # no drop policy given: it follows the source
    results = [next(generator)]
    assert not taken.wait(0.5)  # back pressure: a recorded source is not read ahead of a slow consumer
    results += list(generator)
    assert [r.status for r in results] == ["ok"] * count


def test_closing_early_leaves_no_thread_behind(enhancer, clip):
    frames, maps = clip
    generator = stream(frames * 5, maps * 5, drop="none", enhancer=enhancer)
    first = next(generator)
    assert first.index == 0 and _stream_threads()
    generator.close()
    assert _stream_threads() == []
    for result in stream(frames * 5, maps * 5, drop="none", enhancer=enhancer):
        break
    assert result.index == 0 and _stream_threads() == []


def test_a_failing_source_ends_the_stream_with_its_error(enhancer, clip):
    frames, maps = clip

    def broken():
        yield frames[0]
        raise OSError("camera unplugged")

    seen = []
    with pytest.raises(OSError, match="camera unplugged"):
        for result in stream(broken(), maps, drop="none", enhancer=enhancer):
            seen.append(result.index)
    assert seen == [0] and _stream_threads() == []


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"drop": "newest"}, ValueError, "drop must be one of"),
        ({"drop": "none", "max_latency_ms": 50}, ValueError, "max_latency_ms"),
        ({"max_latency_ms": -1}, ValueError, "max_latency_ms must be a number > 0"),
        ({"queue_size": 0}, ValueError, "queue_size must be an integer >= 1"),
    ],
)
def test_bad_options_are_rejected_by_name(enhancer, clip, options, error, match):
    frames, maps = clip
    with pytest.raises(error, match=match):
        stream(frames, maps, **options, enhancer=enhancer)


def test_a_single_array_is_not_a_stream(enhancer, clip):
    frames, maps = clip
    with pytest.raises(TypeError, match="frames must be an iterable"):
        stream(frames[0], maps, enhancer=enhancer)
    with pytest.raises(TypeError, match="coarse_masks must be an iterable"):
        stream(frames, maps[0], enhancer=enhancer)


def _write_video(path, frames, *, grey=False):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height), not grey)
    for frame in frames:
        writer.write(frame if grey else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory, clip):
    frames, maps = clip
    base = tmp_path_factory.mktemp("stream")
    masks = base / "masks"
    for i, coarse in enumerate(maps):
        io.write_mask(masks / f"m{i:03d}.png", coarse)
    return _write_video(base / "clip.avi", frames), _write_video(base / "coarse.avi", maps, grey=True), masks


def test_video_file_and_mask_video_sources(enhancer, videos, clip):
    video, coarse_video, _ = videos
    frames = list(io.VideoFrames(video))
    assert len(frames) == 2 and frames[0].shape == (256, 320, 3)
    results = list(stream(video, coarse_video, drop="none", enhancer=enhancer))
    assert [r.status for r in results] == ["ok"] * 2
    expected = enhancer.enhance(frames[1], next(m for i, m in enumerate(io.VideoFrames(coarse_video, as_mask=True)) if i == 1)).mask
    np.testing.assert_array_equal(results[1].mask, expected)
    assert all(r.mask.any() for r in results)


def test_plain_function_form(litemedsam_dir, clip):
    frames, maps = clip
    results = list(stream(frames[:1], maps[:1], threshold=127, drop="none"))
    assert len(results) == 1 and results[0].ok and results[0].mask.any()


def test_cli_writes_masks_and_an_overlay_video(videos, litemedsam_dir, tmp_path, capsys):
    video, coarse_video, masks = videos
    out = tmp_path / "out"
    code = cli_main(["stream", str(video), "--coarse", str(masks), "--out", str(out), "--threshold", "127", "--overlay"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in out.glob("frame_*.png")) == [f"frame_{i:06d}.png" for i in range(2)]
    assert "fps" in err and "ok 2" in err
    overlay = list(io.VideoFrames(out / "overlay.avi"))
    assert len(overlay) == 2 and overlay[0].shape == (256, 320, 3)
    # the mask video (lossy MJPG) is thresholded at 127 by default
    out2 = tmp_path / "out2"
    assert cli_main(["stream", str(video), "--coarse-video", str(coarse_video), "--out", str(out2), "--quiet"]) == 0
    written = io.read_mask(out2 / "frame_000001.png")
    assert set(np.unique(written).tolist()) == {0, 255}  # a thresholded map is written 0/255, as enhance writes it


def test_a_stream_writes_every_mask_in_the_encoding_it_came_in():
    from fakes import DoublePredictor

    binary = np.zeros((64, 64), np.uint8)
    binary[20:40, 20:40] = 255
    soft = binary // 255 * 200
    soft[19, 20:40] = 90
    image = np.zeros((64, 64), np.uint8)
    for threshold, masks, values in ((None, [binary, binary // 255], [[0, 255], [0, 1]]),
                                     (127, [binary, soft], [[0, 255], [0, 255]]),
                                     (None, [soft.astype(np.float32) / 255, binary > 0], [[0, 255], [False, True]])):
        results = list(stream([image, image], masks, enhancer=Enhancer(DoublePredictor(), threshold=threshold)))
        assert [np.unique(r.mask).tolist() for r in results] == values  # issue 30, item 13


def test_cli_reports_a_missing_video(tmp_path, capsys):
    (tmp_path / "coarse").mkdir()
    code = cli_main(["stream", str(tmp_path / "nope.avi"), "--coarse", str(tmp_path / "coarse"), "--out", str(tmp_path / "o")])
    assert code == 2 and "no such video file" in capsys.readouterr().err
