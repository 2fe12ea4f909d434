"""``python -m samedenhancer.bench annotate [--images 12] [--threads 2] [--json] [--out FILE]``: opening
an image in the annotate page once the background pass has put its embedding in the store, against
opening it cold (encoded on open, as without a store), on real Kvasir images with their PraNet maps.

Two servers run in this process on one LiteMedSAM engine, each on a loopback socket, with the same
folder: the store's server (``precompute=True``, a temporary store) and the cold one (no store).
The store's server opens the first image, which starts the background pass, and its pass is waited
for; then each other image is opened on both servers, alternating which goes first (ABBA, so that a
shared machine's load falls on both alike), by the request the page makes
(``POST /api/images/{id}/open``), timed from the request to the whole answer. Neither server
prefetches, so every open reads, refines and starts a session; the store's opens read the
embedding back instead of encoding. Target: the median and p95 of the store's opens under 300 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .report import Row, report, write_report

#: The issue's target for an open whose embedding the background pass stored (ms).
TARGET_MS = 300.0
#: Bound of the wait for the background pass (s).
PASS_TIMEOUT_S = 1800


@contextlib.contextmanager
def serving(annotator):
    """``annotator``'s app served on a free loopback port in a thread; yields the port."""
    from samedenhancer.annotate.server import in_thread, listen

    try:
        with in_thread(*listen(annotator, "127.0.0.1", 0)) as (_, port):
            yield port
    finally:
        annotator.close()


def timed_open(port: int, image_id: str) -> float:
    """Milliseconds of the page's ``POST /api/images/{id}/open`` on ``port``, to the whole answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        start = time.perf_counter()
        connection.request("POST", f"/api/images/{image_id}/open", body=b"{}",
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        took = 1e3 * (time.perf_counter() - start)
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"opening {image_id} answered HTTP {response.status}")
    return took


def folders(samples, root: Path) -> tuple[Path, Path]:
    """``root/images`` and ``root/coarse``: copies of the samples' images and PraNet maps."""
    images, coarse = root / "images", root / "coarse"
    images.mkdir()
    coarse.mkdir()
    for sample in samples:
        shutil.copy(sample.image_path, images / sample.image_path.name)
        shutil.copy(sample.coarse_paths["pranet"], coarse / f"{sample.stem}.png")
    return images, coarse


def wait_for_pass(annotator) -> float:
    """Seconds until ``annotator``'s background pass has gone through the folder."""
    start = time.perf_counter()
    while True:
        progress = annotator.progress()
        if progress.ready + progress.failed == progress.total and not progress.running:
            if progress.failed:
                raise RuntimeError(f"the background pass failed on {progress.failed} image(s)")
            return time.perf_counter() - start
        if time.perf_counter() - start > PASS_TIMEOUT_S:
            raise RuntimeError(f"the background pass did not finish in {PASS_TIMEOUT_S} s: {progress}")
        time.sleep(0.05)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench annotate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=12, help="Kvasir images (default 12; the first starts the pass)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per operator")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    if args.images < 2:
        parser.error(f"--images must be at least 2 (one starts the pass), got {args.images}")

    from samedenhancer import EmbeddingStore, Predictor
    from samedenhancer.annotate import Annotator, Catalog
    from samedenhancer.annotate.backend import ModelBackend
    from samedenhancer.bench import datasets

    load = os.getloadavg()[0]
    samples = datasets.samples("kvasir")[: args.images]
    predictor = Predictor("litemedsam", intra_op_threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        images, coarse = folders(samples, Path(tmp))
        store = EmbeddingStore(Path(tmp) / "store")

        def annotator(out: str, model, precompute: bool):
            catalog = Catalog(images, coarse, out=Path(tmp) / out)
            return Annotator(catalog, ModelBackend(model, threshold=127), threshold=127, keep=len(samples) + 1,
                             precompute=precompute)

        warm, cold = annotator("out-store", predictor.with_embeddings(store), True), annotator("out-cold", predictor, False)
        ids = warm.catalog.ids()
        with serving(warm) as warm_port, serving(cold) as cold_port:
            first_ms = timed_open(warm_port, ids[0])  # starts the background pass (and warms the engines)
            pass_s = wait_for_pass(warm)
            timed_open(cold_port, ids[0])  # the cold server's engines warm too
            ours, competitor = [], []
            for i, image_id in enumerate(ids[1:]):
                for which in ((1, 0) if i % 4 in (1, 2) else (0, 1)):
                    took = timed_open((warm_port, cold_port)[which], image_id)
                    (ours, competitor)[which].append(took)
            encoded = warm.progress().encoded
            timings = warm.open(ids[-1]).timings_ms

    n = len(ours)
    median, worst = statistics.median(ours), p95(ours)
    verdict = "met" if max(median, worst) < TARGET_MS else "NOT met"
    rows = [
        Row(f"open, median of {n} images (POST /api/images/ID/open)", median, statistics.median(competitor),
            "cold open (encoded on open, no store)", target=f"< {TARGET_MS:.0f} ms"),
        Row(f"open, p95 of {n} images", worst, p95(competitor), "cold open (encoded on open, no store)",
            target=f"< {TARGET_MS:.0f} ms"),
    ]
    notes = [
        f"Command: `python -m samedenhancer.bench annotate --images {args.images} --threads {args.threads}`.",
        f"Kvasir, first {len(samples)} images with their PraNet maps (> 127); LiteMedSAM fp32 on ONNX Runtime CPU, "
        f"{args.threads} threads, one engine for both servers; load average {load:.1f} at the start (a shared "
        "machine: ratios, not absolute times, carry over).",
        f"Target (issue 31): opening an image the background pass has encoded answers in under {TARGET_MS:.0f} ms: "
        f"{verdict} here (median {median:.0f} ms, p95 {worst:.0f} ms).",
        f"The background pass went through the other {len(samples) - 1} images in {pass_s:.1f} s after the first open "
        f"({first_ms:.0f} ms, encoded); encoder calls through the store: {encoded} (one per image). The server's own "
        f"split of the last open with the store, ms: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + ".",
    ]
    text = report("annotate: opening an image the background pass encoded, against a cold open", rows,
                  as_json=args.json, notes=notes)
    write_report(args.out, text)
    return 0
