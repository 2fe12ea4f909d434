"""The Ray side of a run: the actor that holds one model and does the per-file work, the
connection to a cluster, and the driver loop that streams the actors' rows into the manifest.

Nothing else in the package imports ray.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from pathlib import Path

from .. import io, runner
from ..runner import Failure
from .manifest import STATUSES, DistributedReport, from_job, row, table_schema, tally, to_job

def ray_module():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError("samedenhancer.distributed needs Ray Data: pip install 'samedenhancer[ray]'") from None
    with warnings.catch_warnings():  # Ray 2.60's DataContext() sets its own deprecated fields
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
        ray.data.DataContext.get_current()
    return ray


def _is_tensorrt_export(model) -> bool:
    """Whether ``model`` names an existing TensorRT export (which takes no ONNX Runtime providers);
    a model not exported yet is exported as ONNX on first use."""
    from ..engines import Manifest
    from ..registry import model_dir

    try:
        return Manifest.load(model_dir(model)).format == "engine"
    except FileNotFoundError:
        return False


class EnhanceWorker:
    """The Ray Data actor: one :class:`~samedenhancer.Enhancer` per actor, one row per file.

    Parameters
    ----------
    model : str or path
    providers : list or None
        ONNX Runtime execution providers; ``None`` on a GPU actor means ``["cuda"]`` (none for a
        TensorRT export, which runs natively).
    gpu : bool
        Whether this actor holds a GPU.
    threads : int
        ONNX Runtime intra-op threads of this actor's sessions.
    options : EnhanceOptions
        How to refine, validated on the driver.
    embeddings : EmbeddingStore or None
        The store (pickled as its folder, reopened in the actor).
    task : {"enhance", "embed"}
        The per-file work: :func:`samedenhancer.runner.enhance_file`, or
        :func:`samedenhancer.runner.embed_file` on the Enhancer's predictor.
    """

    def __init__(self, model, providers, gpu: bool, threads: int, options, embeddings=None,
                 task: str = "enhance") -> None:
        from ..enhancer import Enhancer

        if gpu and providers is None and not _is_tensorrt_export(model):
            providers = ["cuda"]
        self.enhancer = Enhancer(model, options, providers=providers, threads=threads, embeddings=embeddings)
        self.work = runner.enhance_file if task == "enhance" else lambda enhancer, item: runner.embed_file(
            enhancer.predictor, item)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, jobs):
        import pyarrow as pa

        rows = []
        for job in jobs.to_pylist():
            item = from_job(job)
            try:
                timings, status, error = self.work(self.enhancer, item), "ok", ""
            except Exception as failure:  # noqa: BLE001 - a bad file is this file's row, not a failed job
                timings, status, error = runner.Timings(0.0, 0.0, 0.0), "failed", runner.describe(failure)
            rows.append(row(item, status, error, timings, self.name))
        return pa.Table.from_pylist(rows, schema=table_schema())


def on_cluster(address, work: runner.Plan, manifest: Path | None, worker: dict, num_workers, gpus, threads,
                batch_size) -> DistributedReport:
    """Connect (or start a local cluster), run ``work`` on it, disconnect what this call connected."""
    ray = ray_module()
    started_here = not ray.is_initialized()
    if address is not None and not started_here:
        raise ValueError(f"address={address!r} was given but this process is already connected to a Ray cluster: "
                         "pass address=None to use that one, or call ray.shutdown() first")
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        return _run(ray, work, manifest, worker, num_workers, gpus, threads, batch_size)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray, work: runner.Plan, manifest: Path | None, worker: dict, num_workers, gpus: float, threads,
         batch_size: int) -> DistributedReport:
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pa_parquet

    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    if gpus > 0:
        if resources.get("GPU", 0) < gpus:
            raise ValueError(f"num_gpus_per_worker={gpus} needs GPUs, the cluster has {resources.get('GPU', 0)}")
        num_workers = num_workers or max(1, int(resources["GPU"] // gpus))
    num_workers = num_workers or max(1, cpus // 2)
    # a short work list is spread over all workers (batches shrink), and no actor waits without work
    batch_size = max(1, min(batch_size, math.ceil(len(work.todo) / num_workers)))
    num_workers = max(1, min(num_workers, math.ceil(len(work.todo) / batch_size)))
    threads = threads or max(1, cpus // num_workers)
    extra_rows = ([row(item, "skipped", "") for item in work.skipped]
                  + [row(None, "missing", f.error, stem=f.stem) for f in work.failures])
    counts = dict.fromkeys(STATUSES, 0)
    failures: list[Failure] = []
    timing = {"first": math.nan, "seconds": 0.0}
    worker = {**worker, "gpu": gpus > 0, "threads": threads}
    schema = table_schema()

    def collect(writer=None) -> None:
        start = time.perf_counter()
        for rows in _results(ray, work.todo, num_workers, gpus, threads, batch_size, worker):
            if math.isnan(timing["first"]) and rows.num_rows:
                timing["first"] = time.perf_counter() - start
            tally(rows.to_pylist(), counts, failures)
            if writer is not None:
                writer.write_table(rows.cast(schema))
        timing["seconds"] = time.perf_counter() - start
        tally(extra_rows, counts, failures)
        if writer is not None:
            writer.write_table(pa.Table.from_pylist(extra_rows, schema=schema))

    def write_manifest(path: str) -> None:
        parquet = manifest.suffix == ".parquet"
        with pa_parquet.ParquetWriter(path, schema) if parquet else pa_csv.CSVWriter(path, schema) as writer:
            collect(writer)

    path = None if manifest is None else io.write_atomically(manifest, manifest.suffix, write_manifest)
    if manifest is None:
        collect()
    seconds = timing["seconds"]
    return DistributedReport(
        total=work.total, enhanced=counts["ok"], failed=counts["failed"], skipped=counts["skipped"],
        missing=counts["missing"], failures=tuple(sorted(failures, key=lambda f: f.stem)), seconds=seconds,
        images_per_s=counts["ok"] / seconds if seconds > 0 else 0.0, first_output_s=timing["first"],
        workers=num_workers, threads_per_worker=threads, gpus_per_worker=float(gpus), manifest=path,
        command=worker["task"])


def _results(ray, items: list[runner.Item], workers: int, gpus: float, threads: int, batch_size: int, worker: dict):
    """The manifest rows of ``items`` as pyarrow tables, in the order Ray Data finishes them
    (``worker``: the :class:`EnhanceWorker` arguments)."""
    if not items:
        return
    import pyarrow as pa

    table = pa.Table.from_pylist([to_job(item) for item in items],
                                 schema=pa.schema([(name, pa.string()) for name in ("stem", "inputs", "outputs")]))
    blocks = [table.slice(i, batch_size) for i in range(0, len(items), batch_size)]
    dataset = ray.data.from_arrow(blocks).map_batches(
        EnhanceWorker,
        fn_constructor_kwargs=worker,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2),
        num_cpus=threads,
        num_gpus=gpus or None,
    )
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")
