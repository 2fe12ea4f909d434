"""``samedenhancer enhance``: refine a folder (or a pair of files) of coarse masks."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from .. import io, runner
from ..enhancer import Enhancer
from . import _volumes, flags

NAME = "enhance"
SUMMARY = "refine a folder of coarse masks; writes OUT/<stem>.png"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        description="Refine coarse masks: IMAGES and COARSE are folders whose files are matched by stem (a.jpg with "
                    "a.png), or two files (one pair, whatever their names). Writes OUT/<stem>.png (the refined "
                    "label map; --format for .npy / .tif), OUT/<stem>.json with "
                    "--details, OUT/overlay/<stem>.png with --overlay. A NIfTI pair gives OUT/<stem>.nii.gz; a DICOM "
                    "series with its coarse volume gives a DICOM SEG. With --ray also OUT/manifest.parquet.")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm, or NIfTI volumes)")
    p.add_argument("coarse", help="coarse mask file or folder (label maps or soft maps)")
    flags.add(p, "out", "resume", "quiet", "overlay", out="output folder (or the .dcm / .nii.gz file of a DICOM series)")
    p.add_argument("--format", choices=(*runner.FORMATS, "nifti", "seg"), default="png",
                   help="format of 2-D outputs (default png; volumes are written as .nii.gz with the coarse volume's "
                        "header); a DICOM series scan is written as a DICOM SEG (seg, its default) or NIfTI (nifti)")
    p.add_argument("--details", action=argparse.BooleanOptionalAction, default=False,
                   help="also write OUT/<stem>.json with the per-region details")
    flags.add(p, "model", "providers", "workers", threads=flags.RAY_THREADS,
              ray=flags.SHARED["ray"][1]["help"] + "; writes OUT/manifest.parquet with one row per file")
    flags.add_method(p)
    flags.add_store(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = flags.enhance_options(args)
    if Path(args.coarse).is_file() and _volumes.is_series(Path(args.images)):  # one DICOM series, one coarse volume
        return _enhance_series(args, options)
    if args.ray is not None:
        return _enhance_on_ray(args, options)
    if args.workers is not None:
        raise ValueError("--workers applies to --ray runs")
    work = runner.enhance_plan(args.images, args.coarse, args.out, format=args.format, details=args.details,
                               overlay=args.overlay, resume=args.resume)
    store = flags.open_store(args, {"images": args.images, "coarse": args.coarse}, files=work.input_files(),
                             out=args.out)
    enhancer = Enhancer(args.model, options, providers=args.providers, threads=args.threads, embeddings=store)
    outcome = runner.enhance_folder(enhancer, work, quiet=args.quiet)
    print(outcome.summary(work.out, detail=flags.store_detail(store)), file=sys.stderr)
    return outcome.exit_code


@contextlib.contextmanager
def silenced_stderr():
    """Standard error (file descriptor 2, so Ray's C++ core and its child processes too) goes to
    /dev/null inside the block: ``--quiet`` silences Ray's start-up and progress lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _enhance_on_ray(args: argparse.Namespace, options) -> int:
    from ..distributed import enhance_dataset

    store = flags.open_store(args, {"images": args.images, "coarse": args.coarse}, out=args.out)
    with silenced_stderr() if args.quiet else contextlib.nullcontext():
        report = enhance_dataset(args.images, args.coarse, args.out, address=args.ray or None,
                                 num_workers=args.workers, threads_per_worker=args.threads, resume=args.resume,
                                 format=args.format, details=args.details, overlay=args.overlay, model=args.model,
                                 providers=args.providers, options=options, embeddings=store)
    print(report.summary(), file=sys.stderr)
    return 1 if report.failures else 0


def _enhance_series(args: argparse.Namespace, options) -> int:
    """One DICOM series (folder or multi-frame file) with its coarse volume (NIfTI or SEG), refined
    with the 3-D mining and written as a SEG (default) or NIfTI."""
    scan, coarse_path, out = Path(args.images), Path(args.coarse), Path(args.out)
    fmt = args.format if args.format in ("nifti", "seg") else "seg"
    target = _volumes.output_path(out, scan.stem, fmt)
    inputs = {"images": scan, "coarse": coarse_path}
    if target == out:  # --out names the output file
        io.prepare_output_file(target, inputs)
    else:
        io.prepare_output_folder(out, inputs, outputs=[target])
    store = flags.open_store(args, inputs, out=out)
    volume, series = _volumes.read_scan(scan)
    coarse = _volumes.read_labels(coarse_path, series)
    enhancer = Enhancer(args.model, options, providers=args.providers, threads=args.threads, embeddings=store)
    refined = enhancer.enhance_volume(volume, coarse, series.spacing).mask
    item = runner.Item(scan.stem, inputs, {"mask": target})
    outcome = runner.run(runner.Plan([item], [], [], out),
                         lambda item: _volumes.write_labels(target, refined, series, fmt),
                         command=NAME, quiet=True, unit="series", resumable=False)
    print(outcome.summary(target, detail=flags.store_detail(store)), file=sys.stderr)
    return outcome.exit_code
