"""Refining a folder of images and coarse masks on a Ray cluster (the ``ray`` extra).

Ray Data schedules the work: the driver lists the folders, pairs files by stem and checks the
outputs against the inputs (:func:`samedenhancer.runner.enhance_plan`, exactly as ``samedenhancer
enhance`` does), the work list of file paths becomes a dataset, and ``map_batches`` runs it through
a pool of actors, each holding one :class:`~samedenhancer.Enhancer` (one ONNX Runtime session pair).
Each actor reads its files where it runs, refines and writes them with the command's own per-file
work (:func:`samedenhancer.runner.enhance_file`) and returns one row per file. The driver streams
the rows into ``OUT/manifest.parquet`` (pyarrow) and sums them up in a :class:`DistributedReport`.
:func:`embed_dataset` fills an embedding store the same way, with ``samedenhancer embed``'s per-file
work (:func:`samedenhancer.runner.embed_file`) and no manifest.

Reliability comes from Ray: a killed actor is restarted and its unfinished batch retried (Ray
Data's defaults for actor pools, ``max_restarts=-1`` and ``max_task_retries=-1``); rewriting a mask is idempotent
(same bytes, atomic rename), and a retried batch returns its rows once, so the manifest has exactly
one row per file. A bad file is a ``"failed"`` row, never a failed job.

Nothing else in the package imports ray.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import io, runner
from .runner import Failure

#: Manifest formats (``OUT/manifest.<format>``).
MANIFEST_FORMATS = ("parquet", "csv")
#: Manifest columns: the file, what happened, seconds per stage, which actor, when it finished.
COLUMNS = ("stem", "image", "coarse", "output", "status", "error", "read_s", "enhance_s", "write_s",
           "worker", "finished_at")
#: ``status`` values: refined and written, failed (``error`` says why), skipped on resume (output
#: existed), missing (an image without a coarse mask or the other way round).
STATUSES = ("ok", "failed", "skipped", "missing")


def _schema():
    import pyarrow as pa

    text = {"stem", "image", "coarse", "output", "status", "error", "worker"}
    return pa.schema([(name, pa.string() if name in text else pa.float64()) for name in COLUMNS])


def _is_tensorrt_export(model) -> bool:
    """Whether ``model`` names an existing TensorRT export (which takes no ONNX Runtime providers);
    a model not exported yet is exported as ONNX on first use."""
    from .engines import Manifest
    from .registry import model_dir

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
        from .enhancer import Enhancer

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
            item = _item(job)
            try:
                timings, status, error = self.work(self.enhancer, item), "ok", ""
            except Exception as failure:  # noqa: BLE001 - a bad file is this file's row, not a failed job
                timings, status, error = runner.Timings(0.0, 0.0, 0.0), "failed", runner.describe(failure)
            rows.append(_row(item, status, error, timings, self.name))
        return pa.Table.from_pylist(rows, schema=_schema())


def _job(item: runner.Item) -> dict:
    """An item of the work list as a dataset row (its paths as text)."""
    return {"stem": item.stem, "inputs": json.dumps({k: os.fspath(v) for k, v in item.inputs.items()}),
            "outputs": json.dumps({k: os.fspath(v) for k, v in item.outputs.items()})}


def _item(job: dict) -> runner.Item:
    return runner.Item(job["stem"], {k: Path(v) for k, v in json.loads(job["inputs"]).items()},
                       {k: Path(v) for k, v in json.loads(job["outputs"]).items()})


def _row(item: runner.Item | None, status: str, error: str, timings=runner.Timings(0.0, 0.0, 0.0), worker: str = "",
         stem: str = "") -> dict:
    """One manifest row (:data:`COLUMNS`); ``item`` is None for a stem without a pair."""
    paths = {} if item is None else {"image": item.inputs["images"], "coarse": item.inputs.get("coarse", ""),
                                     "output": item.outputs.get("mask", "")}
    return {"stem": stem if item is None else item.stem,
            **{column: os.fspath(paths.get(column, "")) for column in ("image", "coarse", "output")},
            "status": status, "error": error, **timings._asdict(), "worker": worker, "finished_at": time.time()}


@dataclass(frozen=True)
class DistributedReport:
    """The outcome of :func:`enhance_dataset`.

    Attributes
    ----------
    total : int
        Stems seen in either input folder (= rows of the manifest).
    enhanced, failed, skipped, missing : int
        Rows per status (see :data:`STATUSES`).
    failures : tuple of Failure
        The ``failed`` and ``missing`` rows.
    seconds : float
        Wall time from submitting the work list to the last row (cluster start-up excluded).
    images_per_s : float
        ``enhanced / seconds``.
    first_output_s : float
        Seconds from submitting the work list to the first row reaching the driver (actor start-up
        and the first batch included); ``nan`` when nothing was submitted.
    workers, threads_per_worker : int
        Actors and ONNX Runtime threads per actor.
    gpus_per_worker : float
    manifest : Path or None
        ``OUT/manifest.parquet`` (or ``.csv``); ``None`` for :func:`embed_dataset`.
    command : str
        ``"enhance"`` or ``"embed"``.
    """

    total: int
    enhanced: int
    failed: int
    skipped: int
    missing: int
    failures: tuple[Failure, ...]
    seconds: float
    images_per_s: float
    first_output_s: float
    workers: int
    threads_per_worker: int
    gpus_per_worker: float
    manifest: Path | None
    command: str = "enhance"

    def summary(self) -> str:
        """The end line of the folder runner (:meth:`samedenhancer.runner.Outcome.summary`), with
        the workers and the manifest, then one line per failure."""
        outcome = runner.Outcome(self.command, self.total, done=self.enhanced, skipped=self.skipped,
                                 failures=list(self.failures), seconds=self.seconds)
        detail = f"Ray: {self.workers} workers x {self.threads_per_worker} threads"
        if self.manifest is None:
            return outcome.summary(detail=detail)
        return outcome.summary(self.manifest.parent, detail=f"{detail}, {self.manifest.name}")


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError("samedenhancer.distributed needs Ray Data: pip install 'samedenhancer[ray]'") from None
    with warnings.catch_warnings():  # Ray 2.60's DataContext() sets its own deprecated fields
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
        ray.data.DataContext.get_current()
    return ray


def _check_count(name: str, value, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1{' or None' if allow_none else ''}, got {value!r}")


def enhance_dataset(
    images: str | os.PathLike,
    coarse: str | os.PathLike,
    out: str | os.PathLike,
    *,
    address: str | None = None,
    num_workers: int | None = None,
    num_gpus_per_worker: float = 0,
    threads_per_worker: int | None = None,
    batch_size: int = 8,
    resume: bool = True,
    format: str = "png",
    details: bool = False,
    overlay: bool = False,
    manifest: str = "parquet",
    model: str | os.PathLike = "litemedsam",
    providers=None,
    options=None,
    embeddings=None,
    **option_fields,
) -> DistributedReport:
    """Refine every image / coarse-mask pair of two folders on a Ray cluster.

    The outputs are those of ``samedenhancer enhance IMAGES COARSE --out OUT`` with the same
    options, byte for byte: same pairing by stem, same names (``<stem>.<format>``, ``<stem>.nii.gz``
    for volumes), same per-file work, same atomic writer.

    Parameters
    ----------
    images, coarse : path
        Image and coarse-mask folders (or single files). Every worker must see them at the same
        path (a local folder on one machine, a shared file system such as NFS or a mounted bucket on
        a cluster).
    out : path
        Output folder (the same for every worker); also gets ``manifest.parquet``.
    address : str, optional
        Address of a running cluster (``"ray://head:10001"``, ``"auto"``, ``"10.0.0.5:6379"``). By
        default the cluster this process is already connected to, else ``$RAY_ADDRESS``, else a new
        local one (shut down at the end). A cluster this function connects to is disconnected at
        the end; giving ``address`` while already connected is an error.
    num_workers : int, optional
        Actors, each holding one model session. Default: one per 2 cluster CPUs (CPU workers) or one
        per ``num_gpus_per_worker`` cluster GPUs; never more than there are batches.
    num_gpus_per_worker : float
        GPUs reserved per actor; > 0 makes the actors' sessions CUDA ones (``providers`` default
        ``["cuda"]``; pass ``["tensorrt"]`` for ONNX Runtime's TensorRT provider; a TensorRT export
        as ``model`` runs natively on the actor's GPU).
    threads_per_worker : int, optional
        ONNX Runtime intra-op threads (and CPUs reserved) per actor; default cluster CPUs //
        ``num_workers``, so that actors x threads = the cores.
    batch_size : int
        Files per Ray Data batch, the unit of retry after a worker dies (at most: a work list shorter
        than ``num_workers x batch_size`` is cut into smaller batches so that every worker gets some).
    resume : bool
        Skip pairs whose outputs exist and read back (the rule of ``samedenhancer enhance --resume``).
    format : {"png", "npy", "tif"}
        Format of 2-D outputs.
    details : bool
        Also write ``<stem>.json`` with the per-region details.
    overlay : bool
        Also write ``overlay/<stem>.png``: the coarse and refined outlines over the image.
    manifest : {"parquet", "csv"}
        Format of ``OUT/manifest.*``: one row per stem, columns :data:`COLUMNS`.
    model, providers
        As for :class:`~samedenhancer.Enhancer`.
    options : EnhanceOptions, optional
        How to refine (the same object the Python API and the command line use); its fields may
        also be given as keywords (``threshold=127``, ``policy=``, ``gate=``, ...).
    embeddings : EmbeddingStore, optional
        Read each image's embedding from this store (or encode and store it); each actor reopens
        it from its folder, which every worker must see at the same path.

    Returns
    -------
    DistributedReport

    Raises
    ------
    ImportError
        Without the ``ray`` extra.
    FileNotFoundError
        If ``images`` or ``coarse`` does not exist.
    ValueError, TypeError
        On a bad argument (named in the message), or an ``out`` whose outputs could overwrite an
        input (checked before any work, as the command does).
    """
    if manifest not in MANIFEST_FORMATS:
        raise ValueError(f"manifest must be one of {MANIFEST_FORMATS}, got {manifest!r}")
    from .enhancer import EnhanceOptions

    if options is not None and not isinstance(options, EnhanceOptions):
        raise TypeError(f"options must be a samedenhancer.EnhanceOptions, got {type(options).__name__}")
    options = (options or EnhanceOptions()).replace(**option_fields)  # checked here, before any actor starts
    _check_cluster(num_workers, threads_per_worker, batch_size, num_gpus_per_worker, embeddings,
                   {"images": images, "coarse": coarse, "out": out})
    work = runner.enhance_plan(images, coarse, out, format=format, details=details, overlay=overlay, resume=resume,
                               also_writes=[Path(out) / f"manifest.{manifest}"], out_name="out")
    worker = {"task": "enhance", "model": os.fspath(model), "providers": providers, "options": options,
              "embeddings": embeddings}
    return _on_cluster(address, work, Path(out) / f"manifest.{manifest}", worker, num_workers, num_gpus_per_worker,
                       threads_per_worker, batch_size)


def embed_dataset(images: str | os.PathLike, embeddings, *, address: str | None = None, num_workers: int | None = None,
                  num_gpus_per_worker: float = 0, threads_per_worker: int | None = None, batch_size: int = 8,
                  model: str | os.PathLike = "litemedsam", providers=None) -> DistributedReport:
    """Fill the store ``embeddings`` with every image of ``images`` on a Ray cluster: what
    ``samedenhancer embed IMAGES --embeddings DIR --ray`` does.

    Each actor reopens the store (entries are written atomically: actors need no lock) and encodes
    its images exactly as :func:`enhance_dataset` and ``samedenhancer enhance`` would
    (:func:`samedenhancer.runner.embed_file`); an image already stored costs its hash. No manifest
    is written (the store is the output): the report's ``manifest`` is ``None``.

    Parameters
    ----------
    images : path
        An image folder (or file) every worker sees at the same path.
    embeddings : EmbeddingStore
        The store, in a folder every worker sees at the same path.
    address, num_workers, num_gpus_per_worker, threads_per_worker, batch_size, model, providers
        As for :func:`enhance_dataset`.

    Returns
    -------
    DistributedReport
        ``enhanced`` counts the images encoded or found in the store.
    """
    from .embeddings import EmbeddingStore

    if not isinstance(embeddings, EmbeddingStore):
        raise TypeError(f"embeddings must be a samedenhancer.EmbeddingStore, got {type(embeddings).__name__}")
    _check_cluster(num_workers, threads_per_worker, batch_size, num_gpus_per_worker, embeddings,
                   {"images": images, "embeddings": embeddings.path})
    work = runner.plan(runner.embed_sources(images), None)
    worker = {"task": "embed", "model": os.fspath(model), "providers": providers, "options": None,
              "embeddings": embeddings}
    return _on_cluster(address, work, None, worker, num_workers, num_gpus_per_worker, threads_per_worker, batch_size)


def _check_cluster(num_workers, threads_per_worker, batch_size, gpus, embeddings, paths: dict) -> None:
    """The arguments every Ray run shares, named in the errors, before any actor starts."""
    from .embeddings import check_store

    _check_count("num_workers", num_workers)
    _check_count("threads_per_worker", threads_per_worker)
    _check_count("batch_size", batch_size, allow_none=False)
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not gpus >= 0:
        raise ValueError(f"num_gpus_per_worker must be a number >= 0, got {gpus!r}")
    check_store(embeddings)
    for name, value in paths.items():
        if "://" in os.fspath(value):
            raise ValueError(f"{name} must be a folder every worker sees (local or a shared/mounted file system); "
                             f"URLs are not read directly yet: mount the bucket (e.g. mountpoint-s3, s3fs), got {os.fspath(value)!r}")


def _on_cluster(address, work: runner.Plan, manifest: Path | None, worker: dict, num_workers, gpus, threads,
                batch_size) -> DistributedReport:
    """Connect (or start a local cluster), run ``work`` on it, disconnect what this call connected."""
    ray = _ray()
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
    extra_rows = ([_row(item, "skipped", "") for item in work.skipped]
                  + [_row(None, "missing", f.error, stem=f.stem) for f in work.failures])
    counts = dict.fromkeys(STATUSES, 0)
    failures: list[Failure] = []
    timing = {"first": math.nan, "seconds": 0.0}
    worker = {**worker, "gpu": gpus > 0, "threads": threads}
    schema = _schema()

    def collect(writer=None) -> None:
        start = time.perf_counter()
        for rows in _results(ray, work.todo, num_workers, gpus, threads, batch_size, worker):
            if math.isnan(timing["first"]) and rows.num_rows:
                timing["first"] = time.perf_counter() - start
            _tally(rows.to_pylist(), counts, failures)
            if writer is not None:
                writer.write_table(rows.cast(schema))
        timing["seconds"] = time.perf_counter() - start
        _tally(extra_rows, counts, failures)
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


def _tally(rows: list[dict], counts: dict, failures: list[Failure]) -> None:
    for row in rows:
        counts[row["status"]] += 1
        if row["status"] in ("failed", "missing"):
            failures.append(Failure(row["stem"], row["error"]))


def _results(ray, items: list[runner.Item], workers: int, gpus: float, threads: int, batch_size: int, worker: dict):
    """The manifest rows of ``items`` as pyarrow tables, in the order Ray Data finishes them
    (``worker``: the :class:`EnhanceWorker` arguments)."""
    if not items:
        return
    import pyarrow as pa

    table = pa.Table.from_pylist([_job(item) for item in items],
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
