"""``python -m studies int8``: what the int8 encoder (``litemedsam-int8``) costs in quality — the Dice
change of the refined masks against the fp32 encoder on Kvasir (PraNet maps) and BUSI (corrupted
expert masks, the quality study's seeded protocol). Its speed is a benchmark:
``python -m samedenhancer.bench enhance --int8``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from samedenhancer.bench.report import Row, report, write_report

#: (dataset, coarse source) pairs compared.
SETS = (("kvasir", "pranet"), ("busi", "corrupted"))


def compare(limit: int, threads: int) -> tuple[list[Row], list[str]]:
    """Mean Dice with the int8 and the fp32 encoder on the first ``limit`` images of each set."""
    from samedenhancer import Enhancer, Predictor
    from samedenhancer.metrics import dice

    from .quality import load_cases

    fp32 = Predictor("litemedsam", intra_op_threads=threads)
    int8 = Predictor("litemedsam-int8", intra_op_threads=threads)
    rows, notes = [], []
    for dataset, source in SETS:
        cases, threshold = load_cases(dataset, source, limit)
        scores = {}
        for name, predictor in (("fp32", fp32), ("int8", int8)):
            enhancer = Enhancer(predictor, threshold=threshold)
            scores[name] = np.array([dice(enhancer.enhance(c.image, c.coarse).mask, c.truth) for c in cases])
        change = scores["int8"] - scores["fp32"]
        rows.append(Row(f"mean Dice, {dataset} ({source}), {len(cases)} images", 100 * float(scores["int8"].mean()),
                        100 * float(scores["fp32"].mean()), "fp32 encoder", unit="Dice %", target="within 0.5 points",
                        extra={"change_points": 100 * float(change.mean()), "worst_image_change_points": 100 * float(change.min())}))
        notes.append(f"int8 - fp32 Dice on {dataset} ({source}): {100 * change.mean():+.2f} points over {len(cases)} images "
                     f"(worst image {100 * change.min():+.2f}).")
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies int8", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="images per dataset (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    rows, notes = compare(args.limit, args.threads)
    write_report(args.out, report("int8 encoder: Dice against fp32", rows, as_json=args.json, notes=notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
