"""``samedenhancer enhance``: refine a folder of coarse masks."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .. import io
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
    p.set_defaults(func=run)


def _details_json(result) -> dict:
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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..enhancer import Enhancer

    if Path(args.coarse).is_file() and _volumes.is_series(Path(args.images)):  # one DICOM series, one coarse volume
        return _enhance_series(args, Enhancer)
    images = io.files_by_stem(Path(args.images))
    coarse = io.files_by_stem(Path(args.coarse))
    for name, found in (("images", images), ("coarse", coarse)):
        if not found:
            raise ValueError(f"{name} {getattr(args, name)} holds no readable file ({', '.join(io.IMAGE_SUFFIXES)}, "
                             f"{', '.join(io.VOLUME_SUFFIXES)})")
    out = io.prepare_output_folder(args.out, {"images": args.images, "coarse": args.coarse})
    io.remove_partial_files(out)  # what a killed run left behind
    stems = sorted(set(images) | set(coarse))
    failures = [
        Failure(stem, "no image" if stem not in images else "no coarse mask")
        for stem in stems
        if stem not in images or stem not in coarse
    ]
    todo = [s for s in stems if s in images and s in coarse]

    def target(stem: str) -> Path:  # volumes are written as NIfTI whatever --format says
        return out / (f"{stem}.nii.gz" if io.is_volume(coarse[stem]) else f"{stem}.{args.format}")

    def finished(stem: str) -> bool:
        return target(stem).exists() and (not args.details or (out / f"{stem}.json").exists())

    if args.resume:
        todo = [s for s in todo if not finished(s)]
    prior = args.prior
    enhancer = Enhancer(
        args.model,
        providers=args.providers,
        prior=prior,
        policy=args.policy,
        gate=args.gate,
        threshold=args.threshold,
        fusion=False if args.no_fusion else None,
        box_rounds=args.box_rounds,
    )
    done = 0
    with tqdm(todo, unit="img", disable=args.quiet, dynamic_ncols=True) as bar:
        for stem in bar:
            try:
                if io.is_volume(images[stem]) != io.is_volume(coarse[stem]):
                    raise ValueError("image and coarse mask must both be NIfTI volumes or both be 2-D files")
                if io.is_volume(coarse[stem]):
                    volume, _ = io.read_volume(images[stem])
                    mask, reference = io.read_volume(coarse[stem], as_mask=True)
                    result = enhancer.enhance_volume(volume, mask, return_details=True)
                    io.write_volume(target(stem), result.mask, reference)
                    details = {"axis": result.axis, "slices": [_details_json(r) for r in result.slices]}
                else:
                    result = enhancer.enhance(io.read_image(images[stem]), io.read_mask(coarse[stem]), return_details=True)
                    io.write_mask(target(stem), result.mask)
                    details = _details_json(result)
                if args.details:  # after the mask: a --resume that finds the .json finds the mask too
                    io.write_text_atomically(out / f"{stem}.json", json.dumps(details, indent=1))
                done += 1
            except Exception as error:  # one file's failure is that file's reported error; the batch goes on
                failures.append(Failure(stem, f"{type(error).__name__}: {error}"))
    print(f"enhanced {done} of {len(todo)} images into {out}", file=sys.stderr)
    report_failures(failures, len(stems))
    return 1 if failures else 0


def _enhance_series(args: argparse.Namespace, make_enhancer) -> int:
    """One DICOM series (folder or multi-frame file) with its coarse volume (NIfTI or SEG), refined
    with the 3-D mining and written as a SEG (default) or NIfTI."""
    scan = Path(args.images)
    volume, series = _volumes.read_scan(scan)
    coarse = _volumes.read_labels(Path(args.coarse), series)
    fmt = args.format if args.format in ("nifti", "seg") else "seg"
    enhancer = make_enhancer(args.model, providers=args.providers, prior=args.prior, policy=args.policy,
                             gate=args.gate, threshold=args.threshold, fusion=False if args.no_fusion else None,
                             box_rounds=args.box_rounds)
    refined = enhancer.enhance_volume(volume, coarse, series.spacing)
    written = _volumes.write_labels(_volumes.output_path(Path(args.out), scan.stem, fmt), refined, series, fmt)
    print(f"enhanced the series {scan} into {written}", file=sys.stderr)
    return 0
