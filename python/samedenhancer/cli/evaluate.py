"""``samedenhancer evaluate``: Dice / HD95 of predictions against ground truth, with optional
per-image overlays and one figure of the per-image change."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from io import StringIO
from pathlib import Path

import numpy as np

from .. import io, runner
from ..core import as_label_map
from ..metrics import label_scores
from . import flags

NAME = "evaluate"
SUMMARY = "Dice / HD95 against ground truth; prints a table, writes CSV/JSON/figures"
SCORES = ("dice", "hd95", "coarse_dice", "coarse_hd95", "delta_dice", "delta_hd95")


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Score predictions against ground truth (Dice and HD95 per image, the mean over the "
                          "classes present). Prints a table and a JSON summary. Writes the --csv / --json files, with "
                          "--images and --overlay one PNG per image with the outlines and its scores, and with "
                          "--coarse and --figure one figure of coarse against refined Dice per image.")
    p.add_argument("pred", help="prediction file or folder (label maps or soft maps, matched to the ground truth by stem)")
    p.add_argument("gt", help="ground-truth file or folder (label maps; a 0/255 or JPEG mask is one class)")
    p.add_argument("--coarse", metavar="DIR", help="also score these coarse masks and report the change")
    p.add_argument("--gt-threshold", type=float, default=None, metavar="T", help="binarise ground truth at > T (soft maps)")
    p.add_argument("--pred-threshold", type=float, default=None, metavar="T",
                   help="binarise predictions at > T (0.5 for probabilities, 127 for 0..255 soft maps)")
    p.add_argument("--coarse-threshold", type=float, default=None, metavar="T", help="binarise the coarse masks at > T")
    p.add_argument("--csv", metavar="FILE", help="also write the per-image scores to this CSV file")
    p.add_argument("--json", metavar="FILE", help="also write the summary and per-image scores to this JSON file "
                                                  "(undefined scores as null)")
    p.add_argument("--images", metavar="DIR", help="the images, for --overlay")
    p.add_argument("--overlay", metavar="DIR", help="write DIR/<stem>.png per image (with --images): ground truth "
                                                   "(white), coarse (yellow), prediction (cyan) and the scores")
    p.add_argument("--figure", metavar="FILE", help="write one PNG of coarse against refined Dice per image "
                                                   "(with --coarse; matplotlib if installed, else OpenCV)")
    flags.add(p, quiet="only the JSON summary: no table, no progress bar")
    p.set_defaults(func=run)


def scored_labels(path: Path, threshold: float | None, role: str) -> np.ndarray:
    """The mask in ``path`` as the label map it scores as: a soft map thresholded (``> threshold``;
    float probabilities at 0.5 without one), a label map as it is (the Enhancer's rule)."""
    try:
        return as_label_map(io.read_mask(path), threshold)
    except ValueError as error:
        raise ValueError(f"{role} {path.name}: {error} (--{role}-threshold sets the threshold)") from None


def comparable(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two binary masks are compared by their foreground whatever value marks it (1, 255, 0.9 after
    thresholding); label maps with several classes by their labels."""
    def binary(mask):
        return np.count_nonzero(np.unique(mask)) <= 1

    if binary(pred) and binary(truth):
        return (pred > 0).view(np.uint8), (truth > 0).view(np.uint8)
    return pred, truth


def _finite(value):
    """JSON has no NaN: an undefined score (HD95 of an empty mask) is ``null``."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _check(args: argparse.Namespace) -> None:
    if (args.images is None) != (args.overlay is None):
        raise ValueError("give --images and --overlay together (the overlays are drawn over the images)")
    if args.figure is not None and args.coarse is None:
        raise ValueError("--figure draws coarse against refined Dice per image: give --coarse too")


def run(args: argparse.Namespace) -> int:
    _check(args)
    sources = [runner.Source("gt", args.gt, "ground truth"), runner.Source("pred", args.pred, "prediction")]
    sources += [runner.Source(name, path, noun) for name, path, noun in
                (("coarse", args.coarse, "coarse mask"), ("images", args.images, "image")) if path is not None]
    overlay = None if args.overlay is None else Path(args.overlay)
    work = runner.plan(sources, overlay,
                       None if overlay is None else (lambda item: {"overlay": overlay / f"{item.stem}.png"}),
                       out_name="--overlay")
    inputs = {source.name: source.path for source in sources}
    files = {source.name: [item.inputs[source.name] for item in work.todo] for source in sources}
    for flag, path in (("--csv", args.csv), ("--json", args.json), ("--figure", args.figure)):
        if path is not None:
            io.prepare_output_file(path, inputs, files=files, name=flag)

    def score(item: runner.Item) -> dict:
        truth = scored_labels(item.inputs["gt"], args.gt_threshold, "gt")
        pred = scored_labels(item.inputs["pred"], args.pred_threshold, "pred")
        row = {"stem": item.stem}
        row["dice"], row["hd95"] = label_scores(*comparable(pred, truth))
        masks = {"truth": truth}
        caption = f"Dice {row['dice']:.3f}, HD95 {row['hd95']:.1f} px"
        if "coarse" in item.inputs:
            coarse = scored_labels(item.inputs["coarse"], args.coarse_threshold, "coarse")
            row["coarse_dice"], row["coarse_hd95"] = label_scores(*comparable(coarse, truth))
            row["delta_dice"], row["delta_hd95"] = row["dice"] - row["coarse_dice"], row["hd95"] - row["coarse_hd95"]
            masks["coarse"] = coarse
            caption += f" (coarse {row['coarse_dice']:.3f}, {row['coarse_hd95']:.1f} px)"
        if "overlay" in item.outputs:
            image = io.read_image(item.inputs["images"])
            runner.write_overlay(item.outputs["overlay"], image, masks | {"refined": pred}, caption)
        return row

    outcome = runner.run(work, score, command=NAME, quiet=args.quiet)
    rows = outcome.results
    summary = _summary(rows)
    _write(args, rows, summary)
    print(outcome.summary(overlay), file=sys.stderr)
    keys = [k for k in SCORES if rows and k in rows[0]]
    if not args.quiet:
        print("| " + " | ".join(["stem", *keys]) + " |")
        print("|" + "---|" * (len(keys) + 1))
        for r in rows:
            print("| " + " | ".join([r["stem"], *(f"{r[k]:.4f}" for k in keys)]) + " |")
    print(json.dumps({k: _finite(v) for k, v in summary.items()}, indent=1, allow_nan=False))
    return outcome.exit_code


def _summary(rows: list[dict]) -> dict:
    """Mean scores over the images (undefined HD95 values left out and counted)."""
    summary = {"images": len(rows)}
    for key in (k for k in SCORES if rows and k in rows[0]):
        values = np.array([r[key] for r in rows], float)
        finite = values[np.isfinite(values)]
        summary[f"mean_{key}"] = float(finite.mean()) if finite.size else float("nan")
        if "hd95" in key:
            summary[f"{key}_undefined"] = int((~np.isfinite(values)).sum())
    return summary


def _write(args: argparse.Namespace, rows: list[dict], summary: dict) -> None:
    """The files asked for: --csv, --json (strict JSON: null for undefined scores), --figure."""
    keys = [k for k in SCORES if rows and k in rows[0]]
    if args.csv:
        table = StringIO()
        writer = csv.DictWriter(table, fieldnames=["stem", *keys], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        io.write_text_atomically(args.csv, table.getvalue())
    if args.json:
        document = {"summary": {k: _finite(v) for k, v in summary.items()},
                    "images": [{k: _finite(v) for k, v in row.items()} for row in rows]}
        io.write_text_atomically(args.json, json.dumps(document, indent=1, allow_nan=False))
    if args.figure:
        from ..drawing import change_figure

        figure, how = change_figure([r["coarse_dice"] for r in rows], [r["dice"] for r in rows],
                                    title=f"{len(rows)} images: coarse -> refined Dice")
        io.write_mask(args.figure, np.ascontiguousarray(figure[..., ::-1]))  # OpenCV writes BGR
        if how != "matplotlib":
            print(f"{NAME}: matplotlib is not installed: the figure was drawn with OpenCV (pip install matplotlib "
                  "for a finer one)", file=sys.stderr)
