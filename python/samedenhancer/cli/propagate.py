"""``samedenhancer propagate``: segment structures through a volume from annotated slices."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .. import io
from ._volumes import output_path, read_labels, read_scan, write_labels


def add_parser(sub) -> None:
    p = sub.add_parser("propagate", help="segment structures through a volume from one or a few annotated slices")
    p.add_argument("scan", help="NIfTI volume, DICOM series folder or multi-frame DICOM file")
    p.add_argument("seed", help="a 2-D label map of slice --slice (png/npy/...), or a label volume (NIfTI, or a "
                                "DICOM SEG of the series) whose non-empty slices are the annotated ones")
    p.add_argument("--slice", type=int, default=None, help="index of the annotated slice (2-D seed)")
    p.add_argument("--out", required=True, help="output file (.nii.gz / .dcm) or folder")
    p.add_argument("--format", choices=("nifti", "seg"), default=None,
                   help="output format (default: seg for a DICOM scan, nifti otherwise)")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--providers", nargs="+", default=None, help="ONNX Runtime execution providers")
    p.add_argument("--iou-threshold", type=float, default=0.5, help="stop a direction when the hull overlap of the previous and the new mask < this (see se.propagate)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..volumes import propagate

    scan_path, seed_path = Path(args.scan), Path(args.seed)
    volume, reference = read_scan(scan_path)
    fmt = args.format or ("seg" if isinstance(reference, io.DicomSeries) else "nifti")
    if args.slice is not None:
        seeds = {args.slice: io.read_mask(seed_path)}
    else:
        labels = read_labels(seed_path, reference)
        if labels.shape != volume.shape:
            raise ValueError(f"seed volume shape {labels.shape} does not match the scan's {volume.shape}")
        seeds = {int(z): labels[:, :, z] for z in np.flatnonzero(labels.reshape(-1, labels.shape[2]).any(0))}
        if not seeds:
            raise ValueError(f"{seed_path}: the seed volume has no annotated slice")
    result = propagate(volume, seeds=seeds, model=args.model, providers=args.providers,
                       iou_threshold=args.iou_threshold, axis=2)
    name = io.stem(scan_path) if scan_path.is_file() else scan_path.name
    written = write_labels(output_path(Path(args.out), name, fmt), result.mask, reference, fmt)
    print(json.dumps({"output": str(written), "status": list(result.status), "encodes": result.encodes}))
    print(f"propagated {result.status.count('propagated')} slices from {len(seeds)} annotated into {written}",
          file=sys.stderr)
    return 0
