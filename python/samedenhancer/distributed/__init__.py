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

The rooms: :mod:`.manifest` (rows and the report), :mod:`.cluster` (the actor, the connection,
the driver loop); nothing else in the package imports ray.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import runner
from .cluster import EnhanceWorker, on_cluster
from .manifest import COLUMNS, MANIFEST_FORMATS, STATUSES, DistributedReport

__all__ = ["COLUMNS", "MANIFEST_FORMATS", "STATUSES", "DistributedReport", "EnhanceWorker", "embed_dataset",
           "enhance_dataset"]


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
    from ..enhancer import EnhanceOptions

    if options is not None and not isinstance(options, EnhanceOptions):
        raise TypeError(f"options must be a samedenhancer.EnhanceOptions, got {type(options).__name__}")
    options = (options or EnhanceOptions()).replace(**option_fields)  # checked here, before any actor starts
    _check_cluster(num_workers, threads_per_worker, batch_size, num_gpus_per_worker, embeddings,
                   {"images": images, "coarse": coarse, "out": out})
    work = runner.enhance_plan(images, coarse, out, format=format, details=details, overlay=overlay, resume=resume,
                               also_writes=[Path(out) / f"manifest.{manifest}"], out_name="out")
    worker = {"task": "enhance", "model": os.fspath(model), "providers": providers, "options": options,
              "embeddings": embeddings}
    return on_cluster(address, work, Path(out) / f"manifest.{manifest}", worker, num_workers, num_gpus_per_worker,
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
    from ..embeddings import EmbeddingStore

    if not isinstance(embeddings, EmbeddingStore):
        raise TypeError(f"embeddings must be a samedenhancer.EmbeddingStore, got {type(embeddings).__name__}")
    _check_cluster(num_workers, threads_per_worker, batch_size, num_gpus_per_worker, embeddings,
                   {"images": images, "embeddings": embeddings.path})
    work = runner.plan(runner.embed_sources(images), None)
    worker = {"task": "embed", "model": os.fspath(model), "providers": providers, "options": None,
              "embeddings": embeddings}
    return on_cluster(address, work, None, worker, num_workers, num_gpus_per_worker, threads_per_worker, batch_size)


def _check_cluster(num_workers, threads_per_worker, batch_size, gpus, embeddings, paths: dict) -> None:
    """The arguments every Ray run shares, named in the errors, before any actor starts."""
    from ..embeddings import check_store

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


