"""``samedenhancer`` command line: enhance, evaluate, demo, export, stream."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io


def _files_by_stem(path: Path) -> dict[str, Path]:
    if path.is_file():
        return {io.stem(path): path}
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or directory: {path}")
    found: dict[str, Path] = {}
    for item in sorted(path.iterdir()):
        if item.is_file() and io.is_readable(item) and not item.name.startswith("."):
            found.setdefault(io.stem(item), item)
    return found


@dataclass
class _Failure:
    stem: str
    error: str


def _report_failures(failures: list[_Failure], total: int) -> None:
    if not failures:
        return
    print(f"\n{len(failures)} of {total} failed:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure.stem}: {failure.error}", file=sys.stderr)


# -- enhance ---------------------------------------------------------------------------------------
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


def cmd_enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .enhancer import Enhancer

    images = _files_by_stem(Path(args.images))
    coarse = _files_by_stem(Path(args.coarse))
    out = Path(args.out)
    stems = sorted(set(images) | set(coarse))
    failures = [
        _Failure(stem, "no image" if stem not in images else "no coarse mask")
        for stem in stems
        if stem not in images or stem not in coarse
    ]
    todo = [s for s in stems if s in images and s in coarse]

    def target(stem: str) -> Path:  # volumes are written as NIfTI whatever --format says
        return out / (f"{stem}.nii.gz" if io.is_volume(coarse[stem]) else f"{stem}.{args.format}")

    if args.resume:
        todo = [s for s in todo if not target(s).exists()]
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
                if args.details:
                    (out / f"{stem}.json").write_text(json.dumps(details, indent=1))
                done += 1
            except (OSError, ValueError, TypeError, RuntimeError) as error:
                failures.append(_Failure(stem, f"{type(error).__name__}: {error}"))
    print(f"enhanced {done} of {len(todo)} images into {out}", file=sys.stderr)
    _report_failures(failures, len(stems))
    return 1 if failures else 0


# -- evaluate --------------------------------------------------------------------------------------
def _as_labels(mask: np.ndarray, threshold: float | None) -> np.ndarray:
    return (mask > threshold).astype(np.uint8) if threshold is not None else mask


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .metrics import label_scores

    preds = _files_by_stem(Path(args.pred))
    truths = _files_by_stem(Path(args.gt))
    coarse = _files_by_stem(Path(args.coarse)) if args.coarse else {}
    rows, failures = [], []
    for stem in sorted(truths):
        if stem not in preds:
            failures.append(_Failure(stem, "no prediction"))
            continue
        try:
            truth = _as_labels(io.read_mask(truths[stem]), args.gt_threshold)
            pred = _as_labels(io.read_mask(preds[stem]), args.pred_threshold)
            row = {"stem": stem}
            row["dice"], row["hd95"] = label_scores(pred, truth)
            if args.coarse:
                if stem not in coarse:
                    raise ValueError("no coarse mask")
                base = _as_labels(io.read_mask(coarse[stem]), args.coarse_threshold)
                row["coarse_dice"], row["coarse_hd95"] = label_scores(base, truth)
                row["delta_dice"] = row["dice"] - row["coarse_dice"]
                row["delta_hd95"] = row["hd95"] - row["coarse_hd95"]
            rows.append(row)
        except (OSError, ValueError, TypeError) as error:
            failures.append(_Failure(stem, f"{type(error).__name__}: {error}"))
    keys = [k for k in ("dice", "hd95", "coarse_dice", "coarse_hd95", "delta_dice", "delta_hd95") if rows and k in rows[0]]
    summary = {"images": len(rows)}
    for key in keys:
        values = np.array([r[key] for r in rows], float)
        finite = values[np.isfinite(values)]
        summary[f"mean_{key}"] = float(finite.mean()) if finite.size else float("nan")
        if "hd95" in key:
            summary[f"{key}_undefined"] = int((~np.isfinite(values)).sum())
    if not args.quiet:
        print("| " + " | ".join(["stem", *keys]) + " |")
        print("|" + "---|" * (len(keys) + 1))
        for r in rows:
            print("| " + " | ".join([r["stem"], *(f"{r[k]:.4f}" for k in keys)]) + " |")
    print(json.dumps(summary, indent=1))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["stem", *keys])
            writer.writeheader()
            writer.writerows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "images": rows}, indent=1))
    _report_failures(failures, len(truths))
    return 1 if failures else 0


# -- demo ------------------------------------------------------------------------------------------
def overlay(image: np.ndarray, masks: list[np.ndarray], titles: list[str]) -> np.ndarray:
    """Side-by-side RGB panels of ``image`` with each mask's outline drawn in."""
    import cv2

    grey = image if image.ndim == 2 else None
    rgb = image if grey is None else np.repeat(grey[..., None], 3, axis=2)
    rgb = rgb.astype(np.float32)
    rgb = (255 * (rgb - rgb.min()) / max(float(rgb.max() - rgb.min()), 1e-6)).astype(np.uint8)
    panels = []
    for mask, title in zip(masks, titles):
        panel = np.ascontiguousarray(rgb.copy())
        contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(panel, contours, -1, (0, 255, 0), max(1, image.shape[1] // 300))
        cv2.putText(panel, title, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 0), 2)
        panels.append(panel)
    return np.concatenate(panels, axis=1)


def cmd_demo(args: argparse.Namespace) -> int:
    from . import datasets
    from .enhancer import Enhancer
    from .metrics import dice

    root = datasets.data_root()
    if root is None:
        print("demo needs the real data of ../shared/data (or set $SAMEDENHANCER_DATA)", file=sys.stderr)
        return 2
    sample = datasets.samples("kvasir", root)[args.index]
    image, truth, coarse = sample.image(), sample.ground_truth(), sample.coarse("pranet")
    start = time.perf_counter()
    enhancer = Enhancer(args.model, threshold=127)
    loaded = time.perf_counter()
    refined = enhancer.enhance(image, coarse)
    done = time.perf_counter()
    coarse_mask = (coarse > 127).astype(np.uint8)
    d0, d1 = dice(coarse_mask, truth), dice(refined, truth)
    out = Path(args.out)
    panels = overlay(image, [truth, coarse_mask, refined], ["expert", f"coarse {d0:.3f}", f"refined {d1:.3f}"])
    io.write_mask(out, np.ascontiguousarray(panels[..., ::-1]))  # OpenCV writes BGR
    print(
        f"kvasir/{sample.stem}: Dice coarse {d0:.4f} -> refined {d1:.4f} "
        f"(model ready in {loaded - start:.1f} s, refined in {1e3 * (done - loaded):.0f} ms); overlay: {out.resolve()}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samedenhancer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enhance", help="refine a folder (or file) of coarse masks")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm, or NIfTI volumes; matched by stem)")
    p.add_argument("coarse", help="coarse mask file or folder (label maps or soft maps)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--providers", nargs="+", default=None, help="ONNX Runtime execution providers")
    p.add_argument("--policy", choices=("box", "points", "points+box", "hierarchical"), default=None)
    p.add_argument("--prior", choices=("multi", "single"), default="multi")
    p.add_argument("--threshold", type=float, default=None, help="threshold for soft maps (0.5 or 127)")
    p.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None,
                   help="keep coarse regions the model disagrees with (default: on for multi-class maps "
                        "with the box policy)")
    p.add_argument("--no-fusion", action="store_true", help="do not fuse the model with a soft coarse map")
    p.add_argument("--box-rounds", type=int, default=None,
                   help="extra box rounds per region (default: 2 with the box policy on soft maps, else 0)")
    p.add_argument("--format", choices=("png", "npy", "tif"), default="png",
                   help="format of 2-D outputs (volumes are written as .nii.gz with the coarse volume's header)")
    p.add_argument("--details", action="store_true", help="write <stem>.json with the per-region details")
    p.add_argument("--resume", action="store_true", help="skip images whose output exists")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("evaluate", help="Dice / HD95 of predictions against ground truth")
    p.add_argument("pred")
    p.add_argument("gt")
    p.add_argument("--coarse", help="also score these coarse masks and print the change")
    p.add_argument("--gt-threshold", type=float, default=None, help="binarise ground truth at > T (e.g. 127)")
    p.add_argument("--pred-threshold", type=float, default=None)
    p.add_argument("--coarse-threshold", type=float, default=None)
    p.add_argument("--csv")
    p.add_argument("--json")
    p.add_argument("--quiet", action="store_true", help="summary only")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="refine a real endoscopy image and write an overlay PNG")
    p.add_argument("--model", default="litemedsam")
    p.add_argument("--index", type=int, default=0, help="which Kvasir image")
    p.add_argument("--out", default="samedenhancer-demo.png")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("export", help="export a checkpoint to ONNX / TensorRT (needs the export extra)", add_help=False)
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        from .export import main as export_main

        return int(export_main(argv[1:]) or 0)
    if argv and argv[0] == "stream":
        from .streaming import main as stream_main

        return int(stream_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"samedenhancer {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
