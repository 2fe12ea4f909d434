"""The one folder runner: what every file command does around its per-file work.

``samedenhancer enhance``, ``pseudolabel``, ``prior-maps``, ``evaluate`` and ``propagate``, and the
Ray path (:mod:`samedenhancer.distributed`) go through here, so that a folder is listed, paired,
checked, resumed, reported and summed up in exactly one way:

- :func:`pair` matches the inputs by stem (:func:`samedenhancer.io.list_by_stem`; two files given
  explicitly are one pair whatever their names), and says why a stem has no partner (no file, a
  broken link, a folder named like an image);
- :func:`plan` names each item's outputs, checks them against every input before any work
  (:func:`samedenhancer.io.prepare_output_folder`), clears what a killed run left behind and
  applies the resume rule (every output reads back: :func:`samedenhancer.io.reads_back`);
- :func:`run` does the work item by item with a progress bar, keeps each item's error as its
  :class:`Failure`, stops cleanly when the disk is full, and returns an :class:`Outcome` whose
  :meth:`~Outcome.summary` is the one end line (done / failed, time, images/s).

The per-file work of ``enhance`` (:func:`enhance_file`) and of ``embed`` (:func:`embed_file`) lives
here too: the command and the Ray actors call the same function, so their outputs are the same
bytes.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import io
from .core import as_label_map

#: Output formats of 2-D masks (volumes are always written as ``.nii.gz``).
FORMATS = ("png", "npy", "tif")
#: Errors that end a run: every later output would fail the same way.
STOP_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
#: The subfolder of ``--out`` for ``--overlay`` PNGs.
OVERLAY_FOLDER = "overlay"


@dataclass(frozen=True)
class Failure:
    """One input the command could not process (``stem``: the file's stem, or ``"frame 12"``), and why."""

    stem: str
    error: str


def describe(error: BaseException) -> str:
    """``"TypeName: message"``, how every per-file error is reported."""
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Source:
    """One input of a command.

    Attributes
    ----------
    name : str
        What the user calls it (``"images"``, ``"coarse"``): messages and the output check use it.
    path : Path
        A folder, or one file.
    noun : str
        What one of its files is called in messages (``"coarse mask"``).
    """

    name: str
    path: Path
    noun: str

    def __init__(self, name: str, path: str | os.PathLike, noun: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "path", Path(path))
        object.__setattr__(self, "noun", noun)


@dataclass(frozen=True)
class Item:
    """One unit of work: a stem, its input files by source name, its output files by role."""

    stem: str
    inputs: Mapping[str, Path]
    outputs: Mapping[str, Path] = field(default_factory=dict)


def pair(sources: Sequence[Source]) -> tuple[list[Item], list[Failure]]:
    """Match the files of ``sources`` by stem: ``(items, failures)``, items in stem order.

    When every source is one file, they are one item named after the first, whatever their names
    (``case.nii.gz`` with ``case_coarse.nii.gz``). Otherwise a stem missing from a source is a
    :class:`Failure` saying which file is missing and, when there is one, why its entry was unusable.

    Raises
    ------
    FileNotFoundError
        A source does not exist.
    ValueError
        A folder holds no readable file, or two files with one stem.
    """
    listings = {source.name: io.list_by_stem(source.path) for source in sources}
    for source in sources:
        if not listings[source.name].files:
            raise ValueError(f"{source.name} {source.path} holds no readable file ({', '.join(io.IMAGE_SUFFIXES)}, "
                             f"{', '.join(io.VOLUME_SUFFIXES)})")
    if all(source.path.is_file() for source in sources):
        return [Item(io.stem(sources[0].path), {source.name: source.path for source in sources})], []
    items, failures = [], []
    for stem in sorted(set().union(*(listing.files for listing in listings.values()))):
        missing = [source for source in sources if stem not in listings[source.name].files]
        if missing:
            reasons = []
            for source in missing:
                why = listings[source.name].unusable.get(stem)
                reasons.append(f"no {source.noun}" + (f" ({why})" if why else ""))
            failures.append(Failure(stem, "; ".join(reasons)))
        else:
            items.append(Item(stem, {source.name: listings[source.name].files[stem] for source in sources}))
    return items, failures


@dataclass(frozen=True)
class Plan:
    """The work list of a command.

    Attributes
    ----------
    todo : list of Item
        Items to process, in stem order.
    skipped : list of Item
        Items whose outputs all read back (only with ``resume``).
    failures : list of Failure
        Stems that cannot be processed (no partner file).
    out : Path or None
        The output folder.
    """

    todo: list[Item]
    skipped: list[Item]
    failures: list[Failure]
    out: Path | None

    @property
    def total(self) -> int:
        """Every stem seen."""
        return len(self.todo) + len(self.skipped) + len(self.failures)

    def input_files(self) -> dict[str, list[Path]]:
        """Every input file of the paired items, by source name (what an output check compares to)."""
        items = self.todo + self.skipped
        return {name: [item.inputs[name] for item in items] for name in (items[0].inputs if items else {})}


def plan(sources: Sequence[Source], out: str | os.PathLike | None,
         outputs: Callable[[Item], Mapping[str, Path]] | None = None, *, resume: bool = False,
         finished: Callable[[Item], bool] | None = None, also_writes: Sequence[Path] = (),
         out_name: str = "--out") -> Plan:
    """Pair ``sources``, name the outputs, check them against the inputs before any work, and
    apply the resume rule.

    Parameters
    ----------
    sources : sequence of Source
    out : path or None
        The output folder (``None``: the command writes no folder of outputs).
    outputs : callable, optional
        ``outputs(item) -> {role: path}``: the files an item writes.
    resume : bool
        Put items whose outputs all read back (and, with ``finished``, that it accepts) into
        ``skipped``.
    finished : callable, optional
        ``finished(item) -> bool``: what else a resumed item must show to count as done
        (``pseudolabel``: its row in the manifest).
    also_writes : sequence of Path
        Files the command writes besides the items' (a manifest), checked as theirs are.
    out_name : str
        What messages call ``out``.
    """
    items, failures = pair(sources)
    if outputs is not None:
        items = [Item(item.stem, item.inputs, dict(outputs(item))) for item in items]
    written = [path for item in items for path in item.outputs.values()] + list(also_writes)
    if out is not None:
        out = io.prepare_output_folder(
            out, {source.name: source.path for source in sources},
            files={source.name: [item.inputs[source.name] for item in items] for source in sources},
            outputs=written, name=out_name)
        for folder in {out} | {Path(path).parent for path in written}:
            io.remove_partial_files(folder)  # what a killed run left behind
    todo, skipped = [], []
    for item in items:
        done = (resume and all(io.reads_back(path) for path in item.outputs.values())
                and (finished is None or finished(item)))
        (skipped if done else todo).append(item)
    return Plan(todo, skipped, failures, None if out is None else Path(out))


@dataclass
class Outcome:
    """What a run did; :meth:`summary` is its one end line and :attr:`exit_code` its status."""

    command: str
    total: int
    done: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    results: list = field(default_factory=list)
    stopped: str | None = None
    unit: str = "images"

    @property
    def exit_code(self) -> int:
        """1 when an item failed or the run stopped early, else 0."""
        return 1 if self.failures or self.stopped else 0

    def summary(self, where: str | os.PathLike | None = None, detail: str = "") -> str:
        """``"enhance: 3 done, 1 failed of 4 in 2.0 s (1.50 images/s); outputs in OUT"`` and, one
        per line under it, each failure."""
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        line = f"{self.command}: {self.done} done, {len(self.failures)} failed"
        if self.skipped:
            line += f", {self.skipped} already done"
        line += f" of {self.total} in {self.seconds:.1f} s ({rate:.2f} {self.unit}/s)"
        line += "".join(f"; {part}" for part in (detail, f"outputs in {where}" if where else "", self.stopped) if part)
        return "\n".join([line, *(f"  {f.stem}: {f.error}" for f in self.failures)])


def run(work_plan: Plan, work: Callable[[Item], object], *, command: str, quiet: bool = False,
        unit: str = "images", resumable: bool = True) -> Outcome:
    """Call ``work(item)`` for every item to do, with a progress bar (none when ``quiet``).

    An exception is that item's :class:`Failure` and the run goes on, except when the disk is full
    or read-only (:data:`STOP_ERRNOS`): then the run stops and says so (and that ``--resume`` picks
    up where it stopped, for a ``resumable`` command). What ``work`` returns is kept in
    :attr:`Outcome.results`, in order.
    """
    from tqdm import tqdm

    outcome = Outcome(command, work_plan.total, skipped=len(work_plan.skipped), failures=list(work_plan.failures),
                      unit=unit)
    start = time.perf_counter()
    with tqdm(work_plan.todo, unit=unit[:3], disable=quiet, dynamic_ncols=True, desc=command) as bar:
        for index, item in enumerate(bar):
            try:
                outcome.results.append(work(item))
                outcome.done += 1
            except OSError as error:
                outcome.failures.append(Failure(item.stem, describe(error)))
                if error.errno in STOP_ERRNOS:
                    left = len(work_plan.todo) - index - 1
                    outcome.stopped = (f"stopped: {os.strerror(error.errno).lower()}"
                                       + (f", {left} not started" if left else "")
                                       + ("; make room and rerun with --resume" if resumable else ""))
                    break
            except Exception as error:  # noqa: BLE001 - one file's failure is that file's result; the run goes on
                outcome.failures.append(Failure(item.stem, describe(error)))
    outcome.seconds = time.perf_counter() - start
    return outcome


# -- enhance: the per-file work of the command and of the Ray actors ---------------------------------
def enhance_sources(images, coarse) -> list[Source]:
    """The two inputs of ``enhance`` (and of :func:`samedenhancer.distributed.enhance_dataset`)."""
    return [Source("images", images, "image"), Source("coarse", coarse, "coarse mask")]


def enhance_plan(images, coarse, out, *, format: str = "png", details: bool = False, overlay: bool = False,
                 resume: bool = False, also_writes: Sequence[Path] = (), out_name: str = "--out") -> Plan:
    """The work list of ``enhance``: ``OUT/<stem>.<format>`` per 2-D pair (``<stem>.nii.gz`` per
    volume pair), with ``<stem>.json`` (``details``) and ``overlay/<stem>.png`` (``overlay``, 2-D only);
    the other arguments as for :func:`plan`.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`plan`; an unknown ``format``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    out = Path(out)

    def outputs(item: Item) -> dict[str, Path]:
        volume = io.is_volume(item.inputs["coarse"])
        names = {"mask": out / (f"{item.stem}.nii.gz" if volume else f"{item.stem}.{format}")}
        if details:
            names["details"] = out / f"{item.stem}.json"
        if overlay and not volume:
            names["overlay"] = out / OVERLAY_FOLDER / f"{item.stem}.png"
        return names

    return plan(enhance_sources(images, coarse), out, outputs, resume=resume, also_writes=also_writes, out_name=out_name)


class Timings(NamedTuple):
    """Seconds one :func:`enhance_file` spent reading, refining and writing."""

    read_s: float
    enhance_s: float
    write_s: float


def details_json(result) -> dict:
    """The per-region details of an :class:`~samedenhancer.EnhanceResult` as JSON-ready values."""
    return {
        "policy": result.policy,
        "classes": result.classes.tolist(),
        "dropped_classes": result.dropped_classes.tolist(),
        "gate_fired": result.gate_fired,
        "fused": result.fused,
        "timings_s": {k: getattr(result.timings, k) for k in ("mine", "encode", "decode", "paste")},
        "regions": [
            {
                "class_id": r.class_id,
                "box_xyxy": r.box.tolist(),
                "points_xy": r.points.tolist(),
                "point_labels": r.point_labels.tolist(),
                "iou_prediction": r.iou,
                "stage1_iou_prediction": None if math.isnan(r.stage1_iou) else r.stage1_iou,
                "agreement_with_coarse": r.agreement,
                "fell_back": r.fell_back,
                "decoder_rounds": r.rounds,
            }
            for r in result.regions
        ],
    }


def write_overlay(path: Path, image: np.ndarray, masks: dict[str, np.ndarray], caption: str) -> Path:
    """An ``--overlay`` PNG: the outline of each mask (``{"coarse": ..., "refined": ...}``, label
    maps) over the image, small (:func:`samedenhancer.drawing.overlay`)."""
    from .drawing import overlay  # drawing stays off the refinement path until an overlay is asked for

    panel = overlay(image, masks, caption)
    return io.write_mask(path, np.ascontiguousarray(panel[..., ::-1]))  # OpenCV writes BGR


def enhance_file(enhancer, item: Item) -> Timings:
    """Read, refine and write one pair of :func:`enhance_plan`; raises on a bad file.

    The outputs are written atomically, so running an item twice (a retried Ray batch) rewrites
    the same bytes and never leaves a half-written file.
    """
    start = time.perf_counter()
    image_path, coarse_path, target = item.inputs["images"], item.inputs["coarse"], item.outputs["mask"]
    if io.is_volume(image_path) != io.is_volume(coarse_path):
        raise ValueError("image and coarse mask must both be NIfTI volumes or both be 2-D files")
    if io.is_volume(coarse_path):
        volume, _ = io.read_volume(image_path)
        mask, reference = io.read_volume(coarse_path, as_mask=True)
        read = time.perf_counter()
        result = enhancer.enhance_volume(volume, mask)
        refined = time.perf_counter()
        io.write_volume(target, result.mask, reference)
        details = {"axis": result.axis, "slices": [details_json(r) for r in result.slices]}
    else:
        image, mask = io.read_image(image_path), io.read_mask(coarse_path)
        read = time.perf_counter()
        result = enhancer.enhance(image, mask)
        refined = time.perf_counter()
        io.write_mask(target, result.mask)
        details = details_json(result)
        if "overlay" in item.outputs:
            coarse = as_label_map(mask, enhancer.options.threshold)
            write_overlay(item.outputs["overlay"], image, {"coarse": coarse, "refined": result.mask}, item.stem)
    if "details" in item.outputs:
        io.write_text_atomically(item.outputs["details"], json.dumps(details, indent=1))
    return Timings(read - start, refined - read, time.perf_counter() - refined)


def enhance_folder(enhancer, work_plan: Plan, *, quiet: bool = False) -> Outcome:
    """Run :func:`enhance_file` over ``work_plan`` in this process: ``samedenhancer enhance``
    (and its competitor in ``bench distributed``)."""
    return run(work_plan, lambda item: enhance_file(enhancer, item), command="enhance", quiet=quiet)


# -- embed: the per-file work of the command and of the Ray actors -----------------------------------
def embed_sources(images) -> list[Source]:
    """The one input of ``embed`` (and of :func:`samedenhancer.distributed.embed_dataset`)."""
    return [Source("images", images, "image")]


def embed_file(predictor, item: Item) -> Timings:
    """Read one image as :func:`enhance_file` reads it and encode it through ``predictor`` (which
    holds the store): a stored image is a hit and costs its hash, a new one is encoded and stored."""
    start = time.perf_counter()
    if io.is_volume(item.inputs["images"]):
        raise ValueError("embed takes 2-D images; a volume's slices are stored when enhance or propagate runs on it "
                         "with --embeddings")
    image = io.read_image(item.inputs["images"])
    read = time.perf_counter()
    predictor.encode(image)
    return Timings(read - start, time.perf_counter() - read, 0.0)
