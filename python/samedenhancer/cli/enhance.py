"""``samedenhancer enhance``: refine a folder of coarse masks."""

from __future__ import annotations

import argparse
import sys

from pathlib import Path

from .. import batch, io
from . import _volumes
from ._failures import Failure, report_failures


def add_parser(sub) -> None:
    p = sub.add_parser("enhance", help="refine a folder (or file) of coarse masks")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm, or NIfTI volumes; matched by stem)")
    p.add_argument("coarse", help="coarse mask file or folder (label maps or soft maps)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--providers", nargs="+", default=None, help="ONNX Runtime execution providers")
    p.add_argument("--policy", choices=("box", "points", "points+box", "hierarchical"), default=None,
                   help="prompts given to the model (default: the model's own)")
    p.add_argument("--prior", choices=("multi", "single"), default="multi",
                   help="single keeps the largest region per class (default multi)")
    p.add_argument("--threshold", type=float, default=None, help="threshold for soft maps (0.5 or 127)")
    p.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None,
                   help="keep coarse regions the model disagrees with (default: on for multi-class maps "
                        "with the box policy)")
    p.add_argument("--no-fusion", action="store_true", help="do not fuse the model with a soft coarse map")
    p.add_argument("--box-rounds", type=int, default=None,
                   help="extra box rounds per region (default: 2 with the box policy on soft maps, else 0)")
    p.add_argument("--format", choices=("png", "npy", "tif", "nifti", "seg"), default="png",
                   help="format of 2-D outputs (volumes are written as .nii.gz with the coarse volume's header); "
                        "a DICOM series scan (a folder or multi-frame file, with a NIfTI or SEG coarse volume) "
                        "is written as a DICOM SEG (seg, its default) or NIfTI (nifti)")
    p.add_argument("--details", action="store_true", help="write <stem>.json with the per-region details")
    p.add_argument("--resume", action="store_true", help="skip images whose output exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster (the ray extra): ADDRESS of a running cluster, or none for a local one; "
                        "writes OUT/manifest.parquet with one row per file")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray actors, one model session each (default: one per 2 cluster CPUs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..enhancer import Enhancer

    if Path(args.coarse).is_file() and _volumes.is_series(Path(args.images)):  # one DICOM series, one coarse volume
        return _enhance_series(args, Enhancer)
    options = dict(model=args.model, providers=args.providers, prior=args.prior, policy=args.policy, gate=args.gate,
                   threshold=args.threshold, fusion=False if args.no_fusion else None, box_rounds=args.box_rounds)
    if args.ray is not None:
        from ..distributed import enhance_dataset

        try:
            report = enhance_dataset(args.images, args.coarse, args.out, address=args.ray or None, num_workers=args.workers,
                                     resume=args.resume, format=args.format, details=args.details, **options)
        except ImportError as error:  # without the ray extra
            print(f"samedenhancer enhance: {error}", file=sys.stderr)
            return 2
        print(report.summary(), file=sys.stderr)
        report_failures([Failure(r.stem, r.error) for r in report.failures], report.total)
        return 1 if report.failures else 0
    if args.workers is not None:
        raise ValueError("--workers applies to --ray runs")
    work = batch.plan(args.images, args.coarse, args.out, format=args.format, details=args.details, resume=args.resume,
                      out_name="--out")
    failures = [Failure(m.stem, m.error) for m in work.missing]
    enhancer = Enhancer(**options)
    done = 0
    with tqdm(work.todo, unit="img", disable=args.quiet, dynamic_ncols=True) as bar:
        for job in bar:
            result = batch.enhance_file(enhancer, job)
            if result.status == "ok":
                done += 1
            else:
                failures.append(Failure(result.stem, result.error))
    print(f"enhanced {done} of {len(work.todo)} images into {args.out}", file=sys.stderr)
    report_failures(failures, work.total)
    return 1 if failures else 0


def _enhance_series(args: argparse.Namespace, make_enhancer) -> int:
    """One DICOM series (folder or multi-frame file) with its coarse volume (NIfTI or SEG), refined
    with the 3-D mining and written as a SEG (default) or NIfTI."""
    scan = Path(args.images)
    fmt = args.format if args.format in ("nifti", "seg") else "seg"
    target = _volumes.output_path(Path(args.out), scan.stem, fmt)
    if target == Path(args.out):  # --out names the output file: it must not be an input
        if target.resolve() in (scan.resolve(), Path(args.coarse).resolve()):
            raise ValueError(f"--out {args.out} is an input file: choose another name")
        io.prepare_output_folder(target.parent)
    else:
        io.prepare_output_folder(target.parent, {"images": args.images, "coarse": args.coarse})
    volume, series = _volumes.read_scan(scan)
    coarse = _volumes.read_labels(Path(args.coarse), series)
    enhancer = make_enhancer(args.model, providers=args.providers, prior=args.prior, policy=args.policy,
                             gate=args.gate, threshold=args.threshold, fusion=False if args.no_fusion else None,
                             box_rounds=args.box_rounds)
    refined = enhancer.enhance_volume(volume, coarse, series.spacing).mask
    written = _volumes.write_labels(target, refined, series, fmt)
    print(f"enhanced the series {scan} into {written}", file=sys.stderr)
    return 0
