"""``samedenhancer pseudolabel``: refine a folder of pseudo-labels and write a QA manifest."""

from __future__ import annotations

import argparse
import csv
import io as text_io
import math
import sys
from pathlib import Path

from .. import io, runner
from ..core import as_label_map
from ..enhancer import Enhancer
from ..pseudolabel import Review, Rule, pseudolabel
from . import flags

NAME = "pseudolabel"
SUMMARY = "refine pseudo-labels, flag doubtful ones; writes OUT/<stem>.png, manifest.csv"
MANIFEST = "manifest.csv"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Refine a segmenter's pseudo-labels and review each one (keep or flag). Writes "
                          "OUT/<stem>.png (the refined label map), OUT/manifest.csv (one row per image: the scores, "
                          "the verdict and why) and, with --overlay, OUT/overlay/<stem>.png.")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm; matched by stem)")
    p.add_argument("pseudo", help="pseudo-label file or folder (label maps or soft maps)")
    flags.add(p, "out", "resume", "quiet", "overlay", out="output folder: <stem>.png refined labels and manifest.csv",
              resume="skip images already in the manifest whose outputs read back")
    p.add_argument("--min-agreement", type=float, default=0.7,
                   help="flag a label whose Dice with the input is below this (default 0.7)")
    p.add_argument("--min-iou", type=float, default=0.0,
                   help="flag a label whose lowest predicted IoU is below this (default 0: off)")
    p.add_argument("--flag-gate", action=argparse.BooleanOptionalAction, default=True,
                   help="flag labels where the no-harm gate fired (default: on)")
    p.add_argument("--flag-empty", action=argparse.BooleanOptionalAction, default=False,
                   help="flag empty pseudo-labels (data where every image holds the target)")
    flags.add(p, "model", "providers", "threads")
    flags.add_method(p)
    flags.add_store(p)
    p.set_defaults(func=run)


def _format(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The rows of an existing manifest by stem (empty when there is none or it does not read back)."""
    if not io.reads_back(path):
        return {}
    with open(path, newline="") as handle:
        return {row["stem"]: row for row in csv.DictReader(handle) if row.get("stem")}


def write_manifest(path: Path, rows: dict[str, dict[str, str]], columns: list[str]) -> None:
    """All rows, sorted by stem, written atomically (a killed run leaves the previous manifest)."""
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for stem in sorted(rows):
        writer.writerow(rows[stem])
    io.write_text_atomically(path, buffer.getvalue())


def run(args: argparse.Namespace) -> int:
    rule = Rule(min_agreement=args.min_agreement, min_iou=args.min_iou, flag_gate=args.flag_gate,
                flag_empty=args.flag_empty)
    options = flags.enhance_options(args)
    out = Path(args.out)

    def outputs(item: runner.Item) -> dict[str, Path]:
        names = {"mask": out / f"{item.stem}.png"}
        return names | ({"overlay": out / runner.OVERLAY_FOLDER / f"{item.stem}.png"} if args.overlay else {})

    sources = [runner.Source("images", args.images, "image"), runner.Source("pseudo", args.pseudo, "pseudo-label")]
    previous = read_manifest(out / MANIFEST) if args.resume else {}
    work = runner.plan(sources, out, outputs, resume=args.resume, finished=lambda item: item.stem in previous,
                       also_writes=[out / MANIFEST])
    rows = {stem: row for stem, row in previous.items() if stem in {item.stem for item in work.skipped}}
    columns = ["stem", "input", "output", *Review.columns(), "rule"]
    store = flags.open_store(args, {"images": args.images, "pseudo": args.pseudo}, out=out,
                             files=work.input_files())
    enhancer = Enhancer(args.model, options, providers=args.providers, threads=args.threads, embeddings=store)

    def refine(item: runner.Item) -> None:
        image_path, pseudo_path = item.inputs["images"], item.inputs["pseudo"]
        if io.is_volume(image_path) or io.is_volume(pseudo_path):
            raise ValueError("pseudolabel takes 2-D images; enhance a volume slice by slice with `enhance`")
        image, pseudo = io.read_image(image_path), io.read_mask(pseudo_path)
        label = pseudolabel(image, pseudo, enhancer=enhancer, rule=rule)
        target = io.write_mask(item.outputs["mask"], label.mask)
        if "overlay" in item.outputs:
            masks = {"coarse": as_label_map(pseudo, enhancer.options.threshold), "refined": label.mask}
            runner.write_overlay(item.outputs["overlay"], image, masks, f"{item.stem}: {label.review.verdict}")
        rows[item.stem] = {"stem": item.stem, "input": str(pseudo_path), "output": target.name, "rule": str(rule),
                           **{k: _format(v) for k, v in label.review.row().items()}}
        write_manifest(out / MANIFEST, rows, columns)

    outcome = runner.run(work, refine, command=NAME, quiet=args.quiet)
    kept = sum(row["verdict"] == "keep" for row in rows.values())
    detail = "; ".join(filter(None, [f"manifest: {kept} keep, {len(rows) - kept} flag ({rule})",
                                     flags.store_detail(store)]))
    print(outcome.summary(out, detail=detail), file=sys.stderr)
    return outcome.exit_code
