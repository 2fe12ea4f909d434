"""``samedenhancer stream``: refine a coarse mask per frame of a video, DICOM cine loop or device."""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np

from .. import io


def add_parser(sub) -> None:
    p = sub.add_parser(
        "stream",
        help="refine a coarse mask per video frame",
        description="Refine a coarse mask per video frame: writes OUT/frame_NNNNNN.png (and OUT/overlay.avi with --overlay).",
    )
    p.add_argument("video", help="video file, DICOM cine loop (.dcm), or a capture device index (0, 1, ...)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--coarse", help="folder of coarse masks, one per frame in file-name order")
    source.add_argument("--coarse-video", help="video or multi-frame DICOM of coarse masks (first channel), one frame per frame")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overlay", action="store_true", help="also write OUT/overlay.avi (MJPG) with the refined outline")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--threshold", type=float, default=None,
                   help="threshold for soft coarse maps (default: 127 for a --coarse-video video file, whose frames are lossy)")
    p.add_argument("--max-latency-ms", type=float, default=None, help="drop frames older than this (live sources)")
    p.add_argument("--drop", choices=("oldest", "none"), default=None,
                   help="what a full queue does (default: keep every frame of a file, drop the oldest of a live device "
                        "or with --max-latency-ms)")
    p.add_argument("--threads", type=int, default=0,
                   help="ONNX Runtime threads per operator (default 0: one per core, the fastest on an idle "
                        "2-core machine; 1 helps only when other jobs load the cores)")
    p.add_argument("--quiet", action="store_true", help="no live fps/latency line")
    p.set_defaults(func=run)


def _percentile_ms(values: list[float], q: float) -> float:
    return 1e3 * float(np.percentile(values, q)) if values else float("nan")


def _status(counts: collections.Counter, latencies: list[float], elapsed: float) -> str:
    """fps, latency p50/p95 and frame counts of the stream so far (the live line and the summary)."""
    fps = sum(counts.values()) / max(elapsed, 1e-9)
    return (
        f"{fps:5.2f} fps, latency p50 {_percentile_ms(latencies, 50):5.0f} ms, p95 {_percentile_ms(latencies, 95):5.0f} ms; "
        f"ok {counts['ok']}, dropped {counts['dropped']}, errors {counts['error']}"
    )


def run(args: argparse.Namespace) -> int:
    from ..drawing import outlines
    from ..enhancer import Enhancer
    from ..predictor import Predictor
    from ..streaming import coarse_source, default_drop, stream

    video = int(args.video) if args.video.isdigit() else args.video
    lossy = args.coarse_video is not None and not io.is_dicom(args.coarse_video)  # DICOM masks keep their labels
    threshold = 127 if args.threshold is None and lossy else args.threshold
    drop = args.drop or default_drop(video, args.max_latency_ms)
    try:
        inputs = {"video": None if isinstance(video, int) else video, "coarse": args.coarse, "coarse-video": args.coarse_video}
        out = io.prepare_output_folder(args.out, inputs)  # before any work: a bad --out costs nothing
        io.remove_partial_files(out)
        frames = io.open_frames(video)
        masks = coarse_source(args.coarse if args.coarse is not None else args.coarse_video)
        enhancer = Enhancer(Predictor(args.model, intra_op_threads=args.threads), threshold=threshold)
        kept: dict[int, np.ndarray] = {}  # frames in flight, for the overlay

        def tapped():
            for index, frame in enumerate(frames):
                if args.overlay:
                    kept[index] = frame
                yield frame

        results = stream(tapped(), masks, enhancer=enhancer, max_latency_ms=args.max_latency_ms, drop=drop)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"samedenhancer stream: {error}", file=sys.stderr)
        return 2

    writer = None
    counts = collections.Counter()
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    try:
        import cv2

        for result in results:
            frame = kept.pop(result.index, None)
            counts[result.status] += 1
            if result.ok:
                latencies.append(result.latency)
                io.write_mask(out / f"frame_{result.index:06d}.png", result.mask)
                if args.overlay and frame is not None:
                    panel = outlines(frame, {"refined": result.mask}, f"frame {result.index}")
                    if writer is None:
                        fps = frames.fps if frames.fps > 0 else 25.0
                        writer = cv2.VideoWriter(os.fspath(out / "overlay.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                                                 (panel.shape[1], panel.shape[0]))
                    writer.write(np.ascontiguousarray(panel[..., ::-1]))
            elif result.status == "error":
                errors.append(f"frame {result.index}: {result.error}")
            if not args.quiet:  # latency over the last 100 frames
                status = _status(counts, latencies[-100:], time.perf_counter() - start)
                print(f"\rframe {result.index:6d}: {status}", end="", file=sys.stderr, flush=True)
    finally:
        results.close()
        if writer is not None:
            writer.release()
    elapsed = time.perf_counter() - start
    status = _status(counts, latencies, elapsed)
    print(f"\n{sum(counts.values())} frames in {elapsed:.1f} s: {status}; masks in {out}", file=sys.stderr)
    for line in errors:
        print(f"  {line}", file=sys.stderr)
    return 1 if errors else 0
