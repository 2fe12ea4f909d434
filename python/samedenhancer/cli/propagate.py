"""``samedenhancer propagate``: segment structures through a volume from annotated slices."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .. import io, runner
from ..predictor import as_predictor
from ..volumes import propagate
from . import flags
from ._volumes import output_path, read_labels, read_scan, write_labels

NAME = "propagate"
SUMMARY = "segment through a volume from annotated slices; writes NIfTI or DICOM SEG"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Segment the structures of one or a few annotated slices through the whole volume. Writes "
                          "OUT/<scan>.nii.gz (with the scan's geometry) or, for a DICOM scan, OUT/<scan>.dcm (a DICOM "
                          "SEG referencing the series); --out may also name that file. Prints a JSON line with the "
                          "output and the status of every slice.")
    p.add_argument("scan", help="NIfTI volume, DICOM series folder or multi-frame DICOM file")
    p.add_argument("seed", help="a 2-D label map of slice --slice (png/npy/...), or a label volume (NIfTI, or a "
                                "DICOM SEG of the series) whose non-empty slices are the annotated ones")
    p.add_argument("--slice", type=int, default=None, help="index of the annotated slice (2-D seed)")
    flags.add(p, "out", out="output file (.nii.gz / .dcm) or folder")
    p.add_argument("--format", choices=("nifti", "seg"), default=None,
                   help="output format (default: seg for a DICOM scan, nifti otherwise)")
    p.add_argument("--iou-threshold", type=float, default=0.5,
                   help="stop a direction when the hull overlap of the previous and the new mask < this (see se.propagate)")
    flags.add(p, "model", "providers", "threads")
    flags.add_store(p)
    p.set_defaults(func=run)


def _seeds(args: argparse.Namespace, volume: np.ndarray, reference) -> dict[int, np.ndarray]:
    seed_path = Path(args.seed)
    if args.slice is not None:
        return {args.slice: io.read_mask(seed_path)}
    labels = read_labels(seed_path, reference)
    if labels.shape != volume.shape:
        raise ValueError(f"seed volume shape {labels.shape} does not match the scan's {volume.shape}")
    seeds = {int(z): labels[:, :, z] for z in np.flatnonzero(labels.reshape(-1, labels.shape[2]).any(0))}
    if not seeds:
        raise ValueError(f"{seed_path}: the seed volume has no annotated slice")
    return seeds


def run(args: argparse.Namespace) -> int:
    scan_path, out = Path(args.scan), Path(args.out)
    fmt = args.format or ("nifti" if io.is_volume(scan_path) else "seg")
    name = io.stem(scan_path) if scan_path.is_file() else scan_path.name
    target = output_path(out, name, fmt)
    inputs = {"scan": scan_path, "seed": Path(args.seed)}
    if target == out:  # --out names the output file
        io.prepare_output_file(target, inputs)
    else:
        io.prepare_output_folder(out, inputs, outputs=[target])
    store = flags.open_store(args, inputs, out=out)
    volume, reference = read_scan(scan_path)
    if fmt == "seg" and not isinstance(reference, io.DicomSeries):
        raise ValueError("--format seg needs a DICOM series as the scan (a SEG references its images)")
    seeds = _seeds(args, volume, reference)
    predictor = as_predictor(args.model, providers=args.providers, threads=args.threads, embeddings=store)
    result = propagate(volume, seeds=seeds, model=predictor, iou_threshold=args.iou_threshold, axis=2)
    item = runner.Item(name, inputs, {"labels": target})
    outcome = runner.run(runner.Plan([item], [], [], out), lambda item: write_labels(target, result.mask, reference, fmt),
                         command=NAME, quiet=True, unit="volumes", resumable=False)
    if outcome.results:
        print(json.dumps({"output": str(outcome.results[0]), "status": list(result.status), "encodes": result.encodes}))
    detail = "; ".join(filter(None, [f"propagated {result.status.count('propagated')} slices from {len(seeds)} "
                                     "annotated", flags.store_detail(store)]))
    print(outcome.summary(target, detail=detail), file=sys.stderr)
    return outcome.exit_code
