"""``python -m studies quality``: the paper's table on the real data of ../shared/data.

Every image is encoded once; every variant (row) decodes from that embedding, so the rows differ
only in what they do after the encoder. Writes ``benchmarks/QUALITY.md``.

Datasets: Kvasir and CVC-ClinicDB with the real PraNet probability maps (official and a
third-party retrain; coarse mask = map > 127), BUSI and thyroid DDTI with coarse masks from the
seeded corruption protocol of :mod:`studies.corruption`, ACDC (RV/MYO/LV) corrupted per
class as a multi-class run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from samedenhancer.bench import datasets
from samedenhancer.enhancer import EnhanceResult, Enhancer, Gate
from samedenhancer.enhancer.options import DEFAULT_BOX_ROUNDS
from samedenhancer.metrics import label_scores
from samedenhancer.predictor import Predictor
from samedenhancer.bench.report import machine, write_report
from .corruption import corrupt_label_map

#: (dataset, source of the coarse mask): a real segmenter, or "corrupted" (seeded protocol).
CONFIGS = (
    ("kvasir", "pranet"),
    ("kvasir", "pranet_retrain_archeml01"),
    ("cvc_clinicdb", "pranet"),
    ("cvc_clinicdb", "pranet_retrain_archeml01"),
    ("busi", "corrupted"),
    ("thyroid_ddti", "corrupted"),
    ("acdc", "corrupted"),
)
WORSE = 0.01  # a Dice drop of more than one point counts as "made worse"


@dataclass
class Case:
    stem: str
    image: np.ndarray
    truth: np.ndarray
    coarse: np.ndarray  # what the Enhancer is given (a probability map or a label map)
    coarse_labels: np.ndarray  # the coarse label map it stands for


def load_cases(dataset: str, source: str, limit: int | None = None) -> tuple[list[Case], float | None]:
    """The images of one configuration and the threshold their coarse input needs."""
    items = datasets.samples(dataset)[:limit]
    cases = []
    for sample in items:
        truth = sample.ground_truth()
        if source == "corrupted":
            coarse = corrupt_label_map(truth, sample.stem)
            labels = coarse
        else:
            coarse = sample.coarse(source)
            labels = (coarse > 127).astype(np.uint8)
        cases.append(Case(sample.stem, sample.image(), truth, coarse, labels))
    return cases, (None if source == "corrupted" else 127)


@dataclass
class Row:
    name: str
    dice: list[float] = field(default_factory=list)
    hd95: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)  # lowest Dice(refined, coarse region) per image
    regions: int = 0  # regions decoded
    gated: int = 0  # regions the gate sent back to the coarse mask


#: Which data fixed each row's constants (the rows not listed have none beyond METHOD.md's).
CONSTANTS = {
    "box + soft fusion": "fusion_weight=1 (equal weights: no fit; Kvasir/PraNet grid 0.25..4 in the decision log)",
    "box + iteration": f"box_rounds={DEFAULT_BOX_ROUNDS}, box_tolerance=0.02 (Kvasir/PraNet)",
    "default": "fusion + iteration as above (Kvasir/PraNet); Gate() on multi-class maps (ACDC)",
    "box only, with the gate": "Gate() defaults: min_agreement=0.5",
}


def decoding_row(predictor: Predictor, threshold: float | None, **options) -> Callable:
    """A table row decoding with ``Enhancer(predictor, threshold=threshold, **options)`` from the
    shared embedding: function(case, embedding) -> EnhanceResult."""
    enhancer = Enhancer(predictor, threshold=threshold, **options)

    def run(case, embedding):
        coarse = case.coarse
        if threshold is not None and threshold >= 1 and coarse.dtype == np.uint8 and coarse.max() <= 1:
            # an 8-bit probability map of at most 1/255 (a segmenter sure there is nothing) is empty at
            # the threshold; as_label_map refuses uint8 0/1 maps with a threshold (they look like label
            # masks given by mistake), so pass it as the empty map it is
            coarse = np.zeros_like(coarse)
        return enhancer.refine(enhancer.encode(case.image, coarse, embedding=embedding))

    return run


def variants(predictor: Predictor, threshold: float | None) -> dict[str, Callable]:
    """Rows of the table: name -> function(case, embedding) -> refined label map."""
    from functools import partial

    from .baselines import morphology_op

    enhancer_row = partial(decoding_row, predictor, threshold)
    plain_box = dict(policy="box", fusion=False, box_rounds=0, gate=False)
    return {
        "coarse": lambda case, embedding: case.coarse_labels,
        "morphology op.": lambda case, embedding: morphology_op(case.coarse_labels),
        "box only": enhancer_row(**plain_box),
        "box + soft fusion": enhancer_row(**dict(plain_box, fusion=True)),
        "box + iteration": enhancer_row(**dict(plain_box, box_rounds=DEFAULT_BOX_ROUNDS)),
        "points only": enhancer_row(policy="points"),
        "points+box": enhancer_row(policy="points+box"),
        "full hierarchical (paper)": enhancer_row(policy="hierarchical"),
        "hierarchical without MSFF": enhancer_row(policy="hierarchical", min_area=1, min_fraction=0.0),
        "box only, with the gate": enhancer_row(**dict(plain_box, gate=Gate())),
        "default": enhancer_row(),
    }


def run_config(predictor: Predictor, dataset: str, source: str, limit: int | None) -> tuple[dict[str, Row], float]:
    cases, threshold = load_cases(dataset, source, limit)
    return run_cases(predictor, cases, variants(predictor, threshold))


def run_cases(predictor: Predictor, cases: list[Case], table: dict[str, Callable]) -> tuple[dict[str, Row], float]:
    """Score every row of ``table`` on every case, each image encoded once; the rows and the mean
    encode seconds per image."""
    rows = {name: Row(name) for name in table}
    encode_seconds = 0.0
    for case in cases:
        start = time.perf_counter()
        embedding = predictor.encode(case.image)
        encode_seconds += time.perf_counter() - start
        for name, fn in table.items():
            start = time.perf_counter()
            refined = fn(case, embedding)
            rows[name].seconds.append(time.perf_counter() - start)
            if isinstance(refined, EnhanceResult):
                rows[name].agreement.append(min((r.agreement for r in refined.regions), default=1.0))
                rows[name].regions += len(refined.regions)
                rows[name].gated += refined.gate_fired
                refined = refined.labels  # the coarse map's classes (a thresholded map: 0/1), as the truth
            d, h = label_scores(refined, case.truth)
            rows[name].dice.append(d)
            rows[name].hd95.append(h)
    return rows, encode_seconds / max(len(cases), 1)


def format_table(dataset: str, source: str, rows: dict[str, Row], encode_s: float) -> list[str]:
    base = np.array(rows["coarse"].dice)
    lines = [
        f"### {dataset} — coarse: {source} ({len(base)} images)",
        "",
        "| variant | Dice % | Δ Dice | HD95 px | HD95 undefined | % worse | % better | images/s | gate AUC | gate fired | constants fixed on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        dice = np.array(row.dice)
        hd = np.array(row.hd95)
        finite = hd[np.isfinite(hd)]
        model_used = row.name not in ("coarse", "morphology op.")
        per_image = np.mean(row.seconds) + (encode_s if model_used else 0.0)
        lines.append(
            f"| {row.name} | {100 * dice.mean():.2f} | {100 * (dice.mean() - base.mean()):+.2f} | "
            f"{finite.mean() if finite.size else float('nan'):.2f} | {int((~np.isfinite(hd)).sum())} | "
            f"{100 * np.mean(dice < base - WORSE):.0f} | {100 * np.mean(dice > base + WORSE):.0f} | {1 / per_image:.1f} | "
            f"{_gate_auc(row, dice < base - WORSE)} | {_gate_fired(row)} | {CONSTANTS.get(row.name, '')} |"
        )
    return lines + [""]


def _gate_fired(row: Row) -> str:
    """Share of the row's regions that its gate sent back to the coarse mask ('—' without a gate;
    the default row's gate runs on multi-class maps)."""
    if not row.regions or ("gate" not in row.name and row.name != "default"):
        return "—"
    return f"{row.gated} of {row.regions} regions"


def _gate_auc(row: Row, worse: np.ndarray) -> str:
    """AUC of the gate's signal (low agreement with the coarse region) for "this image got worse";
    "—" for rows without regions or without both outcomes."""
    if len(row.agreement) != len(worse) or worse.all() or not worse.any():
        return "—"
    score = -np.asarray(row.agreement)
    ranks = np.argsort(np.argsort(score, kind="stable"), kind="stable") + 1.0
    # ties get their mean rank
    for value in np.unique(score):
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    n_worse = worse.sum()
    auc = (ranks[worse].sum() - n_worse * (n_worse + 1) / 2) / (n_worse * (~worse).sum())
    return f"{auc:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies quality")
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--limit", type=int, default=None, help="images per dataset (all by default)")
    parser.add_argument("--datasets", nargs="+", default=None, help="subset of dataset names")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    parser.add_argument("--json", action="store_true", help="accepted for symmetry; the output is Markdown")
    args = parser.parse_args(argv)
    if datasets.data_root() is None:
        print("the quality benchmark needs ../shared/data (or $SAMEDENHANCER_DATA)", file=sys.stderr)
        return 2
    from .corruption import __doc__ as protocol

    predictor = Predictor(args.model)
    info = machine()
    lines = [
        "# Quality on real data",
        "",
        f"Command: `python -m studies quality{' --limit %d' % args.limit if args.limit else ''}"
        f"{' --datasets ' + ' '.join(args.datasets) if args.datasets else ''}`; "
        f"model {args.model}; {info['cpu']}, {info['cores']} cores; {info['date']}.",
        "Dice and HD95 per image, averaged over images (HD95 undefined where one mask is empty: counted,"
        " not averaged). % worse / % better: Dice changed by more than one point against the coarse mask."
        " images/s includes the encoder (shared by every model row). gate AUC: how well low agreement"
        " (Dice of the refined region with its coarse region, the Gate's signal) ranks the images made worse. gate fired: regions the Gate (`Gate()` defaults) sent back to their coarse pixels."
        " Fusion and iteration: `Enhancer(fusion=..., box_rounds=...)`; `default` is `Enhancer()` with LiteMedSAM"
        " (box prompts + soft fusion + box iteration on soft maps; `Gate()` on maps with more than one class);"
        " the `box ...` rows run without the gate.",
        "",
    ]
    for dataset, source in CONFIGS:
        if args.datasets and dataset not in args.datasets:
            continue
        rows, encode_s = run_config(predictor, dataset, source, args.limit)
        table = format_table(dataset, source, rows, encode_s)
        print("\n".join(table), flush=True)
        lines += table
    lines += ["## Corruption protocol (BUSI, DDTI, ACDC)", "", (protocol or "").strip(), ""]
    write_report(args.out, "\n".join(lines))
    return 0
