"""``python -m samedenhancer.bench distributed [--json] [--images N] [--workers W] [--out FILE]``:
images/s of :func:`samedenhancer.distributed.enhance_dataset` on a local Ray cluster against the
single-process ``samedenhancer enhance`` (its code path, the folder runner of
:mod:`samedenhancer.runner`, called in this process) on the same real images (Kvasir with PraNet maps
> 127), measured in the same run, with the actor start-up time and the time to the first output.

Both write the same files (checked byte for byte). The single process's time is the whole command's
work (listing, model load, refining and writing); the Ray time is from submitting the work list to
the last manifest row (actor start-up included, cluster start-up not: on a real cluster it is paid
once); Ray's workers run at the CLI's priority (``RAY_worker_niceness=0`` instead of Ray's default
15, which only matters on a machine shared with other jobs). Actor start-up is the time to the
first row minus that row's own read + refine + write time.

Target (issue 17): >= 0.9x of the CLI's images/s on this machine (Ray's overhead small next to the
encoder). Prints the report; ``--out FILE`` also writes it there (the committed one is
``benchmarks/DISTRIBUTED.md``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from .report import Row, report, write_report


def _folders(base: Path, count: int) -> tuple[Path, Path]:
    from samedenhancer.bench import datasets

    images, coarse = base / "images", base / "coarse"
    images.mkdir()
    coarse.mkdir()
    for sample in datasets.samples("kvasir")[:count]:
        shutil.copy(sample.image_path, images / sample.image_path.name)
        shutil.copy(sample.coarse_paths["pranet"], coarse / f"{sample.stem}.png")
    return images, coarse


def _first_output_watcher(out: Path, start: float, found: list[float]) -> threading.Thread:
    def watch():
        while not found:
            if out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()):
                found.append(time.perf_counter() - start)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _single_process(images: Path, coarse: Path, out: Path) -> tuple[float, float, float, float]:
    """(img/s, model load s, first output s, img/s after the first output) of ``samedenhancer enhance``'s
    code path in this process: the folder runner's plan and run with one Enhancer."""
    from samedenhancer import runner
    from samedenhancer.enhancer import Enhancer

    start = time.perf_counter()
    Enhancer("litemedsam")  # what the command pays before its first image
    load = time.perf_counter() - start
    found: list[float] = []
    start = time.perf_counter()
    watcher = _first_output_watcher(out, start, found)
    work = runner.enhance_plan(images, coarse, out)
    outcome = runner.enhance_folder(Enhancer("litemedsam", threshold=127), work, quiet=True)
    seconds = time.perf_counter() - start
    found.append(float("nan"))
    watcher.join()
    if outcome.failures:
        raise RuntimeError(f"the folder runner failed on {len(outcome.failures)} files: {outcome.failures[0]}")
    count = sum(1 for p in out.iterdir() if p.suffix == ".png")
    return count / seconds, load, found[0], (count - 1) / (seconds - found[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench distributed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--images", type=int, default=100,
                        help="Kvasir images (default 100: a job long enough that the actors' start-up, paid once per job, "
                             "is a small part of it)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="Ray actor counts to measure (threads per actor = cores / actors; default 1 2)")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("bench distributed needs the ray extra: pip install 'samedenhancer[ray]'", file=sys.stderr)
        return 2
    import pyarrow.parquet as pq

    from samedenhancer.distributed import enhance_dataset

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        base = Path(tmp)
        images, coarse = _folders(base, args.images)
        # Ray starts its workers at niceness 15; on a machine shared with other jobs that alone would
        # slow the actors against the CLI process (niceness 0), so both run at the same priority
        os.environ.setdefault("RAY_worker_niceness", "0")
        start = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 _node_ip_address="127.0.0.1")
        cluster_s = time.perf_counter() - start
        try:
            cli_rate, cli_load, cli_first, cli_steady = _single_process(images, coarse, base / "cli")
            expected = {p.name: p.read_bytes() for p in (base / "cli").iterdir()}
            for workers in args.workers:
                out = base / f"ray{workers}"
                result = enhance_dataset(images, coarse, out, num_workers=workers, batch_size=2, threshold=127)
                written = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".png"}
                if written != expected:
                    raise RuntimeError(f"Ray outputs ({workers} workers) differ from the CLI's")
                manifest = pq.read_table(result.manifest).to_pylist()
                first = min(manifest, key=lambda r: r["finished_at"])
                startup = result.first_output_s - (first["read_s"] + first["enhance_s"] + first["write_s"])
                per_file = [r["read_s"] + r["enhance_s"] + r["write_s"] for r in manifest if r["status"] == "ok"]
                per_worker = len(per_file) / sum(per_file)
                label = f"{workers} actor(s) x {result.threads_per_worker} thread(s)"
                rows.append(Row(f"enhance_dataset, Ray Data, {label}", result.images_per_s, cli_rate,
                                f"samedenhancer enhance (1 process, {cores} threads)", unit="img/s", target=">= 0.9x",
                                extra={"per_worker_img_s": per_worker, "seconds": result.seconds}))
                # the steady state: rows after the first batch, over the time after it reached the driver
                after_first = [r for r in manifest if r["finished_at"] > first["finished_at"] + 1e-3 and r["status"] == "ok"]
                if after_first:
                    span = max(r["finished_at"] for r in after_first) - first["finished_at"]
                    rows.append(Row(f"steady state after the first output, {label}", len(after_first) / span, cli_steady,
                                    "CLI after its first file", unit="img/s", target="(reported)"))
                rows.append(Row(f"actor start-up (process + model load), {label}", 1e3 * startup, 1e3 * cli_load,
                                "CLI model load in process", target="(reported)"))
                rows.append(Row(f"time to first output, {label}", 1e3 * result.first_output_s, 1e3 * cli_first,
                                "CLI, command start to first file", target="(reported)"))
                notes.append(f"{label}: one actor refines {per_worker:.3f} img/s on its own (sum of per-file read + refine "
                             f"+ write times in the manifest), {result.seconds:.1f} s for {result.enhanced} images.")
        finally:
            ray.shutdown()
    notes.insert(0, f"{args.images} real Kvasir images with PraNet maps (> 127), written as PNG; Ray and CLI outputs "
                    f"identical byte for byte. Local Ray cluster of {cores} CPUs (start-up {cluster_s:.1f} s, not counted); "
                    f"load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run on {cores} cores "
                    f"(other jobs on the machine slow both sides).")
    text = report("Distributed: Ray Data pipeline against the single-process CLI", rows, as_json=args.json, notes=notes)
    write_report(args.out, text)
    return 0
