"""Refining a folder of images and coarse masks, one file at a time: the work list and the per-file work.

``samedenhancer enhance`` and :mod:`samedenhancer.distributed` (Ray Data actors) both call these, so
that a file is paired, named, skipped on resume, read, refined and written in exactly one way and the
two give byte-identical masks:

- :func:`plan` pairs images and coarse masks by stem (:func:`samedenhancer.io.files_by_stem`), names
  each output ``<stem>.<format>`` (``<stem>.nii.gz`` for volumes) and applies the resume rule (the
  output exists);
- :func:`enhance_file` reads one pair, refines it, writes the mask (and optionally ``<stem>.json``
  with the per-region details) atomically, and returns a :class:`FileResult` instead of raising on a
  bad file.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import io

#: Output formats of 2-D masks (volumes are always written as ``.nii.gz``).
FORMATS = ("png", "npy", "tif")


class Job(NamedTuple):
    """One image / coarse-mask pair to refine and where its outputs go."""

    stem: str
    image: str
    coarse: str
    target: str
    details: str | None  # ``<stem>.json`` when details are asked for


class Missing(NamedTuple):
    """A stem found in only one of the two folders."""

    stem: str
    error: str  # "no image" or "no coarse mask"


@dataclass(frozen=True)
class Plan:
    """The work list of a folder pair.

    Attributes
    ----------
    todo : list of Job
        Pairs to refine, in stem order.
    skipped : list of Job
        Pairs whose output already exists (only with ``resume=True``).
    missing : list of Missing
        Stems with an image but no coarse mask, or the other way round.
    """

    todo: list[Job]
    skipped: list[Job]
    missing: list[Missing]

    @property
    def total(self) -> int:
        """Every stem seen in either folder."""
        return len(self.todo) + len(self.skipped) + len(self.missing)


@dataclass(frozen=True)
class FileResult:
    """What happened to one :class:`Job`: ``status`` is ``"ok"`` or ``"failed"`` (then ``error`` says
    why, as ``"ExceptionType: message"``); the timings are seconds spent reading, refining and writing."""

    stem: str
    status: str
    error: str
    read_s: float
    enhance_s: float
    write_s: float


def plan(images: str | os.PathLike, coarse: str | os.PathLike, out: str | os.PathLike, *,
         format: str = "png", details: bool = False, resume: bool = False, out_name: str = "out") -> Plan:
    """Pair ``images`` and ``coarse`` (folders or single files) by stem and name the outputs in ``out``.

    Parameters
    ----------
    images, coarse : path
        Image and coarse-mask folders (or files); see :func:`samedenhancer.io.files_by_stem`.
    out : path
        Output folder: ``<stem>.<format>`` per 2-D pair, ``<stem>.nii.gz`` per volume pair.
    format : {"png", "npy", "tif"}
        Format of 2-D outputs.
    details : bool
        Also write ``<stem>.json`` with the per-region details.
    resume : bool
        Put pairs whose output exists into ``skipped`` instead of ``todo``.
    out_name : str
        What error messages call ``out`` (``"--out"`` on the command line).

    Raises
    ------
    FileNotFoundError
        If ``images`` or ``coarse`` does not exist.
    ValueError
        If ``format`` is unknown, a folder holds no readable file, or ``out`` is unusable (see
        :func:`samedenhancer.io.prepare_output_folder`: never inside an input folder).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    by_stem = {"image": io.files_by_stem(images), "coarse": io.files_by_stem(coarse)}
    for name, found, given in (("images", by_stem["image"], images), ("coarse", by_stem["coarse"], coarse)):
        if not found:
            raise ValueError(f"{name} {os.fspath(given)} holds no readable file ({', '.join(io.IMAGE_SUFFIXES)}, "
                             f"{', '.join(io.VOLUME_SUFFIXES)})")
    out = io.prepare_output_folder(out, {"images": images, "coarse": coarse}, name=out_name)
    io.remove_partial_files(out)  # what a killed run left behind
    todo, skipped, missing = [], [], []
    for stem in sorted(set(by_stem["image"]) | set(by_stem["coarse"])):
        image, mask = by_stem["image"].get(stem), by_stem["coarse"].get(stem)
        if image is None or mask is None:
            missing.append(Missing(stem, "no image" if image is None else "no coarse mask"))
            continue
        target = out / (f"{stem}.nii.gz" if io.is_volume(mask) else f"{stem}.{format}")
        job = Job(stem, os.fspath(image), os.fspath(mask), os.fspath(target),
                  os.fspath(out / f"{stem}.json") if details else None)
        # finished = the mask exists (and its .json with details: the .json is written after the mask)
        finished = target.exists() and (job.details is None or Path(job.details).exists())
        (skipped if resume and finished else todo).append(job)
    return Plan(todo, skipped, missing)


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


def enhance_file(enhancer, job: Job) -> FileResult:
    """Read, refine and write one pair; a bad file gives a ``"failed"`` result, never an exception.

    Parameters
    ----------
    enhancer : samedenhancer.Enhancer
    job : Job
        From :func:`plan`. The mask (and ``job.details``) are written atomically, so running a job
        twice (a retried batch) rewrites the same bytes and never leaves a half-written file.
    """
    start = time.perf_counter()
    read_s = enhance_s = 0.0
    try:
        if io.is_volume(job.image) != io.is_volume(job.coarse):
            raise ValueError("image and coarse mask must both be NIfTI volumes or both be 2-D files")
        if io.is_volume(job.coarse):
            volume, _ = io.read_volume(job.image)
            mask, reference = io.read_volume(job.coarse, as_mask=True)
            read_s = time.perf_counter() - start
            result = enhancer.enhance_volume(volume, mask)
            enhance_s = time.perf_counter() - start - read_s
            io.write_volume(job.target, result.mask, reference)
            details = {"axis": result.axis, "slices": [details_json(r) for r in result.slices]}
        else:
            image, mask = io.read_image(job.image), io.read_mask(job.coarse)
            read_s = time.perf_counter() - start
            result = enhancer.enhance(image, mask)
            enhance_s = time.perf_counter() - start - read_s
            io.write_mask(job.target, result.mask)
            details = details_json(result)
        if job.details is not None:
            io.write_text_atomically(Path(job.details), json.dumps(details, indent=1))
    except Exception as error:  # noqa: BLE001 - one file's failure is that file's result; the batch goes on
        return FileResult(job.stem, "failed", f"{type(error).__name__}: {error}", read_s, enhance_s, 0.0)
    return FileResult(job.stem, "ok", "", read_s, enhance_s, time.perf_counter() - start - read_s - enhance_s)
