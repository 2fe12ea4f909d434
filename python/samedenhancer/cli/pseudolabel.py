"""``samedenhancer pseudolabel``: refine a folder of pseudo-labels and write a QA manifest."""

from __future__ import annotations

import argparse
import csv
import io as text_io
import math
import sys
from pathlib import Path

from .. import io
from ._failures import Failure, report_failures

MANIFEST = "manifest.csv"


def add_parser(sub) -> None:
    p = sub.add_parser("pseudolabel", help="refine pseudo-labels and write a keep/flag manifest (manifest.csv)")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm; matched by stem)")
    p.add_argument("pseudo", help="pseudo-label file or folder (label maps or soft maps)")
    p.add_argument("--out", required=True, help="output folder: <stem>.png refined labels and manifest.csv")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--providers", nargs="+", default=None, help="ONNX Runtime execution providers")
    p.add_argument("--threshold", type=float, default=None, help="threshold for soft maps (0.5 or 127)")
    p.add_argument("--prior", choices=("multi", "single"), default="multi",
                   help="single keeps the largest region per class (default multi)")
    p.add_argument("--min-agreement", type=float, default=0.7,
                   help="flag a label whose Dice with the input is below this (default 0.7)")
    p.add_argument("--min-iou", type=float, default=0.0,
                   help="flag a label whose lowest predicted IoU is below this (default 0: off)")
    p.add_argument("--no-flag-gate", action="store_true", help="do not flag labels where the gate fired")
    p.add_argument("--flag-empty", action="store_true",
                   help="flag empty pseudo-labels (data where every image holds the target)")
    p.add_argument("--resume", action="store_true", help="skip images already in the manifest with an output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _format(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The rows of an existing manifest by stem (empty when there is none)."""
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row["stem"]: row for row in csv.DictReader(handle)}


def write_manifest(path: Path, rows: dict[str, dict[str, str]], columns: list[str]) -> None:
    """All rows, sorted by stem, written atomically (a killed run leaves the previous manifest)."""
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for stem in sorted(rows):
        writer.writerow(rows[stem])
    io.write_atomically(path, ".csv", lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..enhancer import Enhancer
    from ..pseudolabel import Review, Rule, pseudolabel

    rule = Rule(min_agreement=args.min_agreement, min_iou=args.min_iou, flag_gate=not args.no_flag_gate,
                flag_empty=args.flag_empty)
    images = io.files_by_stem(Path(args.images))
    pseudo = io.files_by_stem(Path(args.pseudo))
    out = Path(args.out)
    stems = sorted(set(images) | set(pseudo))
    failures = [Failure(s, "no image" if s not in images else "no pseudo-label") for s in stems
                if s not in images or s not in pseudo]
    todo = [s for s in stems if s in images and s in pseudo]
    columns = ["stem", "input", "output", *Review.columns(), "rule"]
    rows = read_manifest(out / MANIFEST) if args.resume else {}
    if args.resume:
        todo = [s for s in todo if not (s in rows and (out / f"{s}.png").is_file())]
    enhancer = Enhancer(args.model, providers=args.providers, prior=args.prior, threshold=args.threshold)
    done = 0
    with tqdm(todo, unit="img", disable=args.quiet, dynamic_ncols=True) as bar:
        for stem in bar:
            try:
                if io.is_volume(images[stem]) or io.is_volume(pseudo[stem]):
                    raise ValueError("pseudolabel takes 2-D images; enhance a volume slice by slice with `enhance`")
                label = pseudolabel(io.read_image(images[stem]), io.read_mask(pseudo[stem]), enhancer=enhancer, rule=rule)
                target = io.write_mask(out / f"{stem}.png", label.mask)
                rows[stem] = {"stem": stem, "input": str(pseudo[stem]), "output": target.name, "rule": str(rule),
                              **{k: _format(v) for k, v in label.review.row().items()}}
                write_manifest(out / MANIFEST, rows, columns)
                done += 1
            except (OSError, ValueError, TypeError, RuntimeError) as error:
                failures.append(Failure(stem, f"{type(error).__name__}: {error}"))
    kept = sum(row["verdict"] == "keep" for row in rows.values())
    print(f"refined {done} of {len(todo)} pseudo-labels into {out}; manifest: {kept} keep, "
          f"{len(rows) - kept} flag ({rule})", file=sys.stderr)
    report_failures(failures, len(stems))
    return 1 if failures else 0
