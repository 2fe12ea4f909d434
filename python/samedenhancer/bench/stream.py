"""``python -m samedenhancer.bench stream [--json] [--frames N] [--size HxW]``: sustained fps and
p50/p95/p99 end-to-end latency of ``Enhancer.stream`` on a sequence assembled from real Kvasir frames
with their PraNet maps (resized to one frame size, cycled), pipelined against not pipelined, for
several ONNX Runtime thread settings, all measured in the same run.

Latency is from a frame being taken from the source to its result reaching the consumer
(``FrameResult.latency``); the source is read as fast as the pipeline takes frames and
``drop="none"`` keeps every frame, so fps is the sustained throughput.

Target (issue 6): pipelining raises throughput by >= 1.5x on 2 cores at unchanged p50.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from samedenhancer import stream

from .report import Row, report

#: (ONNX Runtime intra-op threads of the encoder and decoder sessions, pipelined) per measured
#: configuration; the first is the competitor (the stages one after the other, all cores per operator).
CONFIGS = ((2, False), (2, True), (1, True))


def load_clip(size: tuple[int, int], images: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``images`` Kvasir frames and PraNet maps resized to ``size = (H, W)``."""
    from samedenhancer.bench import datasets

    frames, maps = [], []
    height, width = size
    for sample in datasets.samples("kvasir")[:images]:
        frames.append(cv2.resize(sample.image(), (width, height), interpolation=cv2.INTER_AREA))
        maps.append(cv2.resize(sample.coarse("pranet"), (width, height), interpolation=cv2.INTER_LINEAR))
    return frames, maps


def run(enhancer, frames, maps, count: int, pipelined: bool) -> tuple[float, np.ndarray, dict]:
    """fps, per-frame latencies (s) and mean stage times (ms) of ``count`` frames: through
    :func:`samedenhancer.stream` (``pipelined``), or one ``Enhancer.enhance`` after the other, the
    way a caller without the stream refines frames (the competitor)."""
    n = len(frames)
    start = time.perf_counter()
    if pipelined:
        source = (frames[i % n] for i in range(count))
        masks = (maps[i % n] for i in range(count))
        results = list(stream(source, masks, drop="none", enhancer=enhancer))
        bad = [r for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"{len(bad)} frames failed, first: {bad[0].error}")
        timings, latencies = [r.timings for r in results], [r.latency for r in results]
    else:
        timings, latencies = [], []
        for i in range(count):
            taken = time.perf_counter()
            timings.append(enhancer.enhance(frames[i % n], maps[i % n]).timings)
            latencies.append(time.perf_counter() - taken)
    elapsed = time.perf_counter() - start
    stages = {k: 1e3 * float(np.mean([getattr(t, k) for t in timings])) for k in ("preprocess", "encode", "mine", "decode", "paste")}
    return count / elapsed, np.array(latencies), stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--frames", type=int, default=100, help="frames per stream (the issue's reference run: 300)")
    parser.add_argument("--size", default="512x640", help="frame size HxW (default 512x640)")
    parser.add_argument("--images", type=int, default=100, help="distinct Kvasir frames cycled through (default all 100)")
    parser.add_argument("--model", default="litemedsam", help="model name or export folder (e.g. litemedsam-int8)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))

    from samedenhancer import Enhancer, Predictor

    frames, maps = load_clip((height, width), args.images)
    rows: list[Row] = []
    notes = [
        f"{args.frames} frames of {height}x{width} cycled from {len(frames)} real Kvasir frames with PraNet maps (> 127); "
        f"model {args.model}; drop='none'; latency = frame taken from the source -> result handed to the consumer."
    ]
    measured = {}
    enhancers = {}
    for threads, pipelined in CONFIGS:
        if threads not in enhancers:
            enhancers[threads] = Enhancer(Predictor(args.model, intra_op_threads=threads), threshold=127)
            list(stream(frames[:3], maps[:3], drop="none", enhancer=enhancers[threads]))  # warm-up
        fps, latency, stages = run(enhancers[threads], frames, maps, args.frames, pipelined)
        measured[threads, pipelined] = fps, latency
        mode = "pipelined" if pipelined else "not pipelined"
        notes.append(
            f"{mode}, ORT {threads} thread(s): {fps:.2f} fps, latency p50/p95/p99 "
            + "/".join(f"{1e3 * np.percentile(latency, q):.0f}" for q in (50, 95, 99))
            + " ms; mean stage ms " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        )
    base_fps, base_lat = measured[CONFIGS[0]]
    competitor = f"not pipelined, ORT {CONFIGS[0][0]} threads"
    for threads, pipelined in CONFIGS[1:]:
        fps, latency = measured[threads, pipelined]
        mode = f"{'pipelined' if pipelined else 'not pipelined'}, ORT {threads} thread(s)"
        rows.append(Row(f"throughput, {mode}", fps, base_fps, competitor, unit="fps", target=">= 1.5x" if pipelined else ""))
        for q in (50, 95, 99):
            rows.append(Row(f"p{q} latency, {mode}", 1e3 * float(np.percentile(latency, q)),
                            1e3 * float(np.percentile(base_lat, q)), competitor, target="p50 unchanged (~1x)" if q == 50 else ""))
    report("Stream: pipelined against not pipelined", rows, as_json=args.json, notes=notes)
    return 0
