"""The manifest of a Ray run: one row per file (:data:`COLUMNS`), the work list's rows as Ray Data
sees them, and the :class:`DistributedReport` the driver sums the rows into."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .. import runner
from ..runner import Failure

#: Manifest formats (``OUT/manifest.<format>``).
MANIFEST_FORMATS = ("parquet", "csv")
#: Manifest columns: the file, what happened, seconds per stage, which actor, when it finished.
COLUMNS = ("stem", "image", "coarse", "output", "status", "error", "read_s", "enhance_s", "write_s",
           "worker", "finished_at")
#: ``status`` values: refined and written, failed (``error`` says why), skipped on resume (output
#: existed), missing (an image without a coarse mask or the other way round).
STATUSES = ("ok", "failed", "skipped", "missing")


def table_schema():
    import pyarrow as pa

    text = {"stem", "image", "coarse", "output", "status", "error", "worker"}
    return pa.schema([(name, pa.string() if name in text else pa.float64()) for name in COLUMNS])


def to_job(item: runner.Item) -> dict:
    """An item of the work list as a dataset row (its paths as text)."""
    return {"stem": item.stem, "inputs": json.dumps({k: os.fspath(v) for k, v in item.inputs.items()}),
            "outputs": json.dumps({k: os.fspath(v) for k, v in item.outputs.items()})}


def from_job(job: dict) -> runner.Item:
    return runner.Item(job["stem"], {k: Path(v) for k, v in json.loads(job["inputs"]).items()},
                       {k: Path(v) for k, v in json.loads(job["outputs"]).items()})


def row(item: runner.Item | None, status: str, error: str, timings=runner.Timings(0.0, 0.0, 0.0), worker: str = "",
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


def tally(rows: list[dict], counts: dict, failures: list[Failure]) -> None:
    for row in rows:
        counts[row["status"]] += 1
        if row["status"] in ("failed", "missing"):
            failures.append(Failure(row["stem"], row["error"]))


