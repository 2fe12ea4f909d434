"""``samedenhancer stream``: refine a coarse mask per frame of a video, DICOM cine loop, folder of
frames or device."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import io, runner
from ..core import as_label_map
from ..enhancer import Enhancer
from ..streaming import coarse_source, default_drop, frame_source, stream
from . import flags

NAME = "stream"
SUMMARY = "refine a coarse mask per video frame; writes OUT/frame_NNNNNN.png"
OVERLAY_VIDEO = "overlay.avi"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Refine a coarse mask per frame of a video, a DICOM cine loop, a folder of frames or a "
                          "capture device, pipelined. Writes OUT/frame_NNNNNN.png per refined frame and, with "
                          f"--overlay, OUT/{OVERLAY_VIDEO} (MJPG) with the coarse (yellow) and refined (cyan) outlines; "
                          f"a rerun rewrites OUT/{OVERLAY_VIDEO} (or removes the previous run's).")
    p.add_argument("video", help="video file, DICOM cine loop (.dcm), folder of frames (in name order), or a capture "
                                 "device index (0, 1, ...)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--coarse", metavar="DIR", help="folder of coarse masks, one per frame in file-name order")
    source.add_argument("--coarse-video", metavar="FILE",
                        help="video or multi-frame DICOM of coarse masks (first channel), one frame per frame")
    flags.add(p, "out", "overlay", out="output folder: frame_NNNNNN.png per frame",
              overlay=f"also write OUT/{OVERLAY_VIDEO} (MJPG) with the coarse and refined outlines")
    p.add_argument("--max-latency-ms", type=float, default=None, help="drop frames older than this (live sources)")
    p.add_argument("--drop", choices=("oldest", "none"), default=None,
                   help="what a full queue does (default: keep every frame of a file, drop the oldest of a live device "
                        "or with --max-latency-ms)")
    flags.add(p, "model", "providers", "threads", quiet="no live fps / latency line, only the end summary")
    p.add_argument("--embeddings", default=None, metavar="DIR",
                   help="refused: a stream never reuses an embedding (no two frames are the same), so a store would "
                        "only fill the disk")
    flags.add_method(p, threshold="threshold of soft coarse maps (default: 127 for a --coarse-video video file, whose "
                                  "frames are lossy)")
    p.set_defaults(func=run)


def _check_first_mask(source: str, threshold: float | None) -> None:
    """Soft masks without a threshold are one clear error before the stream starts, not one per frame."""
    path = Path(source)
    try:
        if path.is_dir():
            files = io.readable_files(path, io.IMAGE_SUFFIXES)
            first, name = (io.read_mask(files[0]), files[0].name) if files else (None, "")
        else:
            first, name = next(iter(io.open_frames(path, as_mask=True)), None), f"frame 0 of {path.name}"
    except (OSError, ValueError):
        return  # an unreadable first mask is that frame's error
    if isinstance(first, np.ndarray):  # (a frame the source could not decode is that frame's error)
        try:
            as_label_map(first, threshold)
        except ValueError as error:
            raise ValueError(f"the first coarse mask ({name}): {error}") from None


def _percentile_ms(values: list[float], q: float) -> float:
    return 1e3 * float(np.percentile(values, q))


def _latency(latencies: list[float]) -> str:
    if not latencies:
        return "no latency yet"
    return f"latency p50 {_percentile_ms(latencies, 50):.0f} ms, p95 {_percentile_ms(latencies, 95):.0f} ms"


def run(args: argparse.Namespace) -> int:
    if args.embeddings is not None:
        raise ValueError("--embeddings does not apply to stream: no two video frames are the same, so a stored "
                         "embedding would never be reused; leave it out")
    video = int(args.video) if args.video.isdigit() else args.video
    masks_path = args.coarse if args.coarse is not None else args.coarse_video
    options = flags.enhance_options(args)
    if args.threshold is None and args.coarse_video is not None and not io.is_dicom(args.coarse_video):
        options = options.replace(threshold=127)  # a lossy mask video: DICOM masks keep their labels
    drop = args.drop or default_drop(video, args.max_latency_ms)
    inputs = {"video": None if isinstance(video, int) else video, "coarse": args.coarse, "coarse-video": args.coarse_video}
    listed = {name: io.readable_files(path, io.IMAGE_SUFFIXES) for name, path in inputs.items()
              if path is not None and Path(path).is_dir()}
    frames, masks = frame_source(video), coarse_source(masks_path)
    out = io.prepare_output_folder(args.out, inputs, files=listed, outputs=[Path(args.out) / OVERLAY_VIDEO])
    io.remove_partial_files(out)
    _check_first_mask(masks_path, options.threshold)
    (out / OVERLAY_VIDEO).unlink(missing_ok=True)  # the previous run's: it would not match the new masks
    enhancer = Enhancer(args.model, options, providers=args.providers, threads=args.threads)
    shown: dict[int, dict] = {}  # the frames and masks in flight, for the overlay

    def tap(source, role: str):
        for index, item in enumerate(source):
            if args.overlay and isinstance(item, np.ndarray):
                shown.setdefault(index, {})[role] = item
            yield item

    results = stream(tap(frames, "frame"), tap(masks, "coarse"), enhancer=enhancer,
                     max_latency_ms=args.max_latency_ms, drop=drop)
    overlay = _Overlay(out / OVERLAY_VIDEO, getattr(frames, "fps", 0.0), options.threshold) if args.overlay else None
    outcome, detail = _consume(results, out, shown, overlay, args.quiet)
    print(("\n" if not args.quiet else "") + outcome.summary(out, detail), file=sys.stderr)
    return outcome.exit_code


class _Overlay:
    """The overlay video, written under a temporary name and renamed when the stream ends well."""

    def __init__(self, path: Path, fps: float, threshold: float | None) -> None:
        self.path, self.fps, self.threshold = path, fps if fps > 0 else 25.0, threshold
        self.temporary = io.temporary_file(path, path.suffix)
        self.writer = None

    def add(self, index: int, shown: dict, refined: np.ndarray) -> None:
        import cv2

        from ..drawing import outlines

        masks = {"coarse": as_label_map(shown["coarse"], self.threshold), "refined": refined}
        panel = outlines(shown["frame"], masks, f"frame {index}")
        if self.writer is None:
            self.writer = cv2.VideoWriter(os.fspath(self.temporary), cv2.VideoWriter_fourcc(*"MJPG"), self.fps,
                                          (panel.shape[1], panel.shape[0]))
        self.writer.write(np.ascontiguousarray(panel[..., ::-1]))

    def close(self, keep: bool) -> None:
        if self.writer is not None:
            self.writer.release()
        if keep and self.writer is not None:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def _consume(results, out: Path, shown: dict, overlay: _Overlay | None, quiet: bool) -> tuple[runner.Outcome, str]:
    """Write each refined frame (a frame that cannot be written is that frame's error; a full disk
    stops the stream), with the live line unless ``quiet``; the outcome and the summary's detail."""
    outcome = runner.Outcome(NAME, 0, unit="frames")
    latencies: list[float] = []
    dropped, interrupted = 0, False
    start = time.perf_counter()
    try:
        for result in results:
            frame = shown.pop(result.index, {})
            outcome.total += 1
            if result.ok:
                try:
                    io.write_mask(out / f"frame_{result.index:06d}.png", result.mask)
                    if overlay is not None and len(frame) == 2:
                        overlay.add(result.index, frame, result.mask)
                    outcome.done += 1
                    latencies.append(result.latency)
                except (OSError, ValueError, TypeError) as error:
                    outcome.failures.append(runner.Failure(f"frame {result.index}", runner.describe(error)))
                    if isinstance(error, OSError) and error.errno in runner.STOP_ERRNOS:
                        outcome.stopped = f"stopped at frame {result.index}: {os.strerror(error.errno).lower()}"
                        break
            elif result.status == "error":
                outcome.failures.append(runner.Failure(f"frame {result.index}", result.error))
            else:
                dropped += 1
            if not quiet:  # refined frames per second, latency over the last 100 frames
                rate = outcome.done / max(time.perf_counter() - start, 1e-9)
                print(f"\rframe {result.index:6d}: {rate:5.2f} fps refined, {_latency(latencies[-100:])}; "
                      f"ok {outcome.done}, dropped {dropped}, errors {len(outcome.failures)}",
                      end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # how a live device's stream ends
        interrupted = True
    finally:
        results.close()
        if overlay is not None:
            overlay.close(keep=outcome.stopped is None)
    outcome.seconds = time.perf_counter() - start
    detail = f"{dropped} dropped, {_latency(latencies)}" + ("; stopped with Ctrl+C" if interrupted else "")
    return outcome, detail
