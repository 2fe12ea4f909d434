"""``samedenhancer evaluate``: Dice / HD95 of predictions against ground truth."""

from __future__ import annotations

import argparse
import csv
import json
from io import StringIO
from pathlib import Path

import numpy as np

from .. import io
from ._failures import Failure, report_failures


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="Dice / HD95 of predictions against ground truth")
    p.add_argument("pred", help="prediction file or folder (label maps, matched to the ground truth by stem)")
    p.add_argument("gt", help="ground-truth file or folder (label maps; 0/255 masks are scored as binary)")
    p.add_argument("--coarse", help="also score these coarse masks and print the change")
    p.add_argument("--gt-threshold", type=float, default=None, help="binarise ground truth at > T (e.g. 127)")
    p.add_argument("--pred-threshold", type=float, default=None, help="binarise predictions at > T (soft maps)")
    p.add_argument("--coarse-threshold", type=float, default=None, help="binarise the coarse masks at > T (e.g. 127)")
    p.add_argument("--csv", help="also write the per-image scores to this CSV file")
    p.add_argument("--json", help="also write the summary and per-image scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="summary only")
    p.set_defaults(func=run)


def _as_labels(mask: np.ndarray, threshold: float | None) -> np.ndarray:
    """``mask > threshold`` as 0/1; without a threshold the label map itself, except that a 0/255
    mask (the 8-bit way of storing a binary mask) is read as 0/1, so that it scores against a 0/1
    prediction as the same binary mask it is."""
    if threshold is not None:
        return (mask > threshold).astype(np.uint8)
    if mask.dtype == np.uint8 and mask.max() == 255 and np.isin(mask, (0, 255)).all():
        return (mask > 0).view(np.uint8)
    return mask


def run(args: argparse.Namespace) -> int:
    from ..metrics import label_scores

    preds = io.files_by_stem(Path(args.pred))
    truths = io.files_by_stem(Path(args.gt))
    coarse = io.files_by_stem(Path(args.coarse)) if args.coarse else {}
    if not truths:
        raise ValueError(f"gt {args.gt} holds no readable file ({', '.join(io.IMAGE_SUFFIXES)})")
    rows, failures = [], []
    for stem in sorted(truths):
        if stem not in preds:
            failures.append(Failure(stem, "no prediction"))
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
            failures.append(Failure(stem, f"{type(error).__name__}: {error}"))
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
        table = StringIO()
        writer = csv.DictWriter(table, fieldnames=["stem", *keys], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        io.write_text_atomically(args.csv, table.getvalue())
    if args.json:
        io.write_text_atomically(args.json, json.dumps({"summary": summary, "images": rows}, indent=1))
    report_failures(failures, len(truths))
    return 1 if failures else 0
