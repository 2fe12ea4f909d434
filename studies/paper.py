"""``python -m studies paper``: the paper's two modes on real weak segmenters trained
here, beside the paper's numbers. Writes ``benchmarks/PAPER.md``.

- Table 2 (post-processing): per dataset, the out-of-fold maps of the small U-Net of
  :mod:`studies.unet` (coarse mask = map > 127) against the refined masks of four
  Enhancer variants decoded from one shared embedding per image (the loop of
  :func:`studies.quality.run_cases`): the default ``Enhancer(threshold=127)``, the
  default with the no-harm gate on every region ``Enhancer(threshold=127, gate=True)``, box only
  ``Enhancer(fusion=False, box_rounds=0)`` and the paper's points + box policy
  ``Enhancer(policy="hierarchical")``. The default's constants are NOT re-fitted on these maps.
- Table 3 (pseudo-labels): :mod:`studies.selftrain` (``--tables 3``).

Each table's results are kept as JSON in ``<cache>/paper/`` so the two can be run apart and the
report rendered from both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from samedenhancer.bench import datasets
from . import unet
from samedenhancer.bench.report import machine, write_report
from .quality import WORSE, Case, decoding_row, run_cases

#: Datasets of Table 2 and the paper's name for each (TNUS is the paper's thyroid set, DDTI ours).
TABLE2 = {"kvasir": "Kvasir", "cvc_clinicdb": "CVC-ClinicDB", "busi": "BUSD", "thyroid_ddti": "TNUS", "acdc": None}
#: The paper's Table 2 (DSC % / HD95 px): U-Net coarse and SAMedEnhancer (MedSAM2).
PAPER_TABLE2 = {
    "BUSD": {"coarse": (79.42, 43.25), "full": (84.75, 16.57), "box only": (68.38, 48.28)},
    "TNUS": {"coarse": (63.75, 76.82), "full": (67.87, 49.98)},
    "CVC-ClinicDB": {"coarse": (85.65, 23.73), "full": (87.28, 20.78)},
    "Kvasir": {"coarse": (84.71, 58.73), "full": (86.41, 52.96)},
}
#: Dice gain targets of the default over the U-Net (points); datasets not listed have none.
#: Datasets of the pseudo-label loop (Table 3).
TABLE3 = ("acdc", "busi")
GAIN_TARGETS = {"kvasir": 1.5, "cvc_clinicdb": 1.5, "busi": 4.0}
MAX_WORSE = 10.0  # % of images made worse (Dice drop > 1 point), every dataset


def cache() -> Path:
    from samedenhancer.engines import cache_dir

    return cache_dir() / "paper"


def table3_path(dataset: str, seed: int) -> Path:
    """Where one seed of one dataset's Table 3 result is cached."""
    return cache() / f"table3_{dataset}_seed{seed}.json"


def table2_cases(dataset: str, limit: int | None = None, shard: tuple[int, int] = (0, 1)) -> tuple[list[Case], float | None]:
    """The images of one dataset (``shard`` = (i, n): every n-th from the i-th) with their U-Net
    maps (trained on first use, then cached)."""
    maps = unet.cached_maps(dataset, log=lambda line: print(f"  {dataset} U-Net {line}", file=sys.stderr, flush=True))
    cases = []
    for sample in datasets.samples(dataset)[:limit][shard[0]::shard[1]]:
        coarse = maps[sample.stem]
        labels = coarse if dataset == "acdc" else (coarse > 127).astype(np.uint8)
        cases.append(Case(sample.stem, sample.image(), sample.ground_truth(), coarse, labels))
    return cases, (None if dataset == "acdc" else 127)


def _table2_shard(job) -> tuple[list[str], dict, float]:
    """Worker: score one shard of a dataset's images (own Predictor, each image encoded once)."""
    from samedenhancer.predictor import Predictor

    model_name, dataset, limit, shard = job
    predictor = Predictor(model_name)
    cases, threshold = table2_cases(dataset, limit, shard)
    table = {
        "coarse": lambda case, embedding: case.coarse_labels,
        "default": decoding_row(predictor, threshold),
        "default + gate": decoding_row(predictor, threshold, gate=True),
        "box only": decoding_row(predictor, threshold, fusion=False, box_rounds=0),
        "hierarchical": decoding_row(predictor, threshold, policy="hierarchical"),
    }
    rows, encode_s = run_cases(predictor, cases, table)
    return [c.stem for c in cases], {name: {"dice": r.dice, "hd95": r.hd95, "gated": r.gated, "regions": r.regions}
                                     for name, r in rows.items()}, encode_s


def run_table2(model_name: str, dataset: str, limit: int | None, workers: int = 1) -> dict:
    """One dataset's Table 2 result (JSON-able), its images shared among ``workers`` processes."""
    from .selftrain import _pool

    start = time.perf_counter()
    unet.cached_maps(dataset, log=lambda line: print(f"  {dataset} U-Net {line}", file=sys.stderr, flush=True))
    trained = time.perf_counter()
    jobs = [(model_name, dataset, limit, (i, workers)) for i in range(workers)]
    if workers == 1:
        shards = [_table2_shard(jobs[0])]
    else:
        with _pool(workers) as pool:
            shards = list(pool.map(_table2_shard, jobs))
    stems = [s for shard in shards for s in shard[0]]
    rows = {name: {"dice": [v for shard in shards for v in shard[1][name]["dice"]],
                   "hd95": [v for shard in shards for v in shard[1][name]["hd95"]],
                   "gated": sum(shard[1][name]["gated"] for shard in shards),
                   "regions": sum(shard[1][name]["regions"] for shard in shards)} for name in shards[0][1]}
    return {
        "dataset": dataset,
        "stems": stems,
        "rows": rows,
        "unet_minutes": (trained - start) / 60,
        "refine_minutes": (time.perf_counter() - trained) / 60,
        "encode_s": float(np.mean([shard[2] for shard in shards])),
        "unet": repr(unet.config_for(dataset)),
        "limit": limit,
    }


def _mean_hd(values) -> float:
    hd = np.asarray(values, float)
    return float(hd[np.isfinite(hd)].mean()) if np.isfinite(hd).any() else float("nan")


def _paired_hd(row, base) -> tuple[float, float]:
    """Mean HD95 of ``row`` and ``base`` over the images where both are defined."""
    a, b = np.asarray(row, float), np.asarray(base, float)
    both = np.isfinite(a) & np.isfinite(b)
    return (float(a[both].mean()), float(b[both].mean())) if both.any() else (float("nan"), float("nan"))


def format_table2(result: dict, figures: Path | None) -> list[str]:
    dataset = result["dataset"]
    paper_name = TABLE2[dataset]
    paper = PAPER_TABLE2.get(paper_name or "", {})
    rows = result["rows"]
    base = np.array(rows["coarse"]["dice"])
    lines = [
        f"### {dataset} ({len(base)} images{'' if not result.get('limit') else ', the first in manifest order'}; U-Net {result['unet_minutes']:.1f} min to load/train, "
        f"refinement {result['refine_minutes']:.1f} min, encoder {result['encode_s']:.2f} s/image)",
        "",
        f"| variant | Dice % | Δ Dice | HD95 px | HD95 undefined | % worse | % better | paper ({paper_name or '—'}) Dice / HD95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    paper_rows = {"coarse": "coarse", "box only": "box only", "hierarchical": "full"}
    for name, row in rows.items():
        dice = np.array(row["dice"])
        ref = paper.get(paper_rows.get(name) or "")
        lines.append(
            f"| {name} | {100 * dice.mean():.2f} | {100 * (dice.mean() - base.mean()):+.2f} | {_mean_hd(row['hd95']):.2f} | "
            f"{int((~np.isfinite(np.asarray(row['hd95'], float))).sum())} | {100 * np.mean(dice < base - WORSE):.0f} | "
            f"{100 * np.mean(dice > base + WORSE):.0f} | {f'{ref[0]:.2f} / {ref[1]:.2f}' if ref else '—'} |"
        )
    default = np.array(rows["default"]["dice"])
    gain = 100 * (default.mean() - base.mean())
    worse = 100 * np.mean(default < base - WORSE)
    hd_default, hd_coarse = _paired_hd(rows["default"]["hd95"], rows["coarse"]["hd95"])
    checks = []
    if dataset in GAIN_TARGETS:
        checks.append((f"Δ Dice >= +{GAIN_TARGETS[dataset]:.1f}", gain >= GAIN_TARGETS[dataset], f"{gain:+.2f}"))
    checks.append(("HD95 below coarse (images where both are defined)", hd_default < hd_coarse,
                   f"{hd_default:.2f} vs {hd_coarse:.2f}"))
    checks.append((f"<= {MAX_WORSE:.0f} % images worse", worse <= MAX_WORSE, f"{worse:.0f} %"))
    lines += ["", "Targets for the default: " + "; ".join(
        f"{what}: {value} — **{'met' if ok else 'missed'}**" for what, ok, value in checks)]
    if "default + gate" in rows:
        gated = np.array(rows["default + gate"]["dice"])
        lines += ["", f"With the no-harm gate on every region (`Enhancer(threshold=127, gate=True)`, an option: on the"
                  f" PraNet maps it costs 0-0.6 Dice, README): Δ Dice {100 * (gated.mean() - base.mean()):+.2f},"
                  f" {100 * np.mean(gated < base - WORSE):.0f} % of images worse; the gate fired on"
                  f" {rows['default + gate']['gated']} of {rows['default + gate']['regions']} regions."]
    if figures is not None and not all(ok for _, ok, _ in checks):
        plot = scatter(result, figures / f"paper_scatter_{dataset}.png")
        lines += ["", f"Per image (coarse Dice vs change): ![{dataset}]({plot.name})"]
    return lines + [""]


def scatter(result: dict, path: Path) -> Path:
    """Per-image coarse Dice against the change made by each refined variant, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = 100 * np.array(result["rows"]["coarse"]["dice"])
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    for name, marker in (("default", "o"), ("default + gate", "s"), ("box only", "x"), ("hierarchical", "^")):
        if name not in result["rows"]:
            continue
        change = 100 * np.array(result["rows"][name]["dice"]) - base
        ax.scatter(base, change, s=14, marker=marker, alpha=0.7, label=f"{name} (mean {change.mean():+.2f})")
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(-100 * WORSE, color="grey", lw=0.6, ls="--")
    ax.set_xlabel("U-Net (coarse) Dice %")
    ax.set_ylabel("refined − coarse Dice (points)")
    ax.set_title(f"{result['dataset']}: per-image change over the U-Net map")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def render(out: Path | None, command: str) -> None:
    info = machine()
    lines = [
        "# The paper's two modes on weak segmenters trained here",
        "",
        f"Command: `{command}`; LiteMedSAM (embedded, box-trained); {info['cpu']}, {info['cores']} cores "
        f"(shared with other sessions); {info['date']}.",
        "",
        "## Table 2: U-Net coarse maps, refined",
        "",
        "Coarse = out-of-fold maps of the small U-Net of `python -m studies unet` (5 folds, seeded;"
        f" `{unet.UNetConfig()!r}`; changed per set: "
        + "; ".join(f"{name} `{changes}`" for name, changes in unet.SCHEDULES.items())
        + ", see `bench/unet.py`), threshold 127 (ACDC: the argmax label map). Rows decode from one embedding"
        " per image: `default` = `Enhancer(threshold=127)` (box + soft fusion with the U-Net probability + box"
        " iteration; constants as shipped, not re-fitted here), `default + gate` = `Enhancer(threshold=127, gate=True)`"
        " (the no-harm gate on every region), `box only` = `Enhancer(fusion=False, box_rounds=0)`,"
        " `hierarchical` = `Enhancer(policy=\"hierarchical\")`, the paper's points + box policy (LiteMedSAM was"
        " trained with boxes only: its point tokens are untrained, METHOD.md). % worse / better: Dice changed by"
        " more than one point. HD95 in px, mean over images where it is defined. Paper numbers: Table 2"
        " (U-Net coarse, SAMedEnhancer with MedSAM2 in the `hierarchical` row) and the BUSD ablation (box only);"
        " the paper's U-Net is a full-size one, ours is deliberately small, so coarse Dice differ.",
        "",
    ]
    missing = []
    for dataset in TABLE2:
        path = cache() / f"table2_{dataset}.json"
        if path.is_file():
            lines += format_table2(json.loads(path.read_text()), None if out is None else out.parent)
        else:
            missing.append(dataset)
    if missing:
        lines += [f"Not in this report (not run to the end here): {', '.join(missing)}.", ""]
    from .selftrain import SEEDS, format_table3

    table3 = [json.loads(path.read_text()) for d in TABLE3 for path in sorted(cache().glob(f"table3_{d}_seed*.json"))]
    lines += format_table3(table3)
    missing = [f"{d} seed {k}" for d in TABLE3 for k in SEEDS if not table3_path(d, k).is_file()]
    if missing:
        lines += [f"Not in this report (not run to the end here): {', '.join(missing)}.", ""]
    print("\n".join(lines))
    write_report(out, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies paper", description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", choices=("2", "3"), default=["2", "3"])
    parser.add_argument("--datasets", nargs="+", choices=list(TABLE2), default=list(TABLE2))
    parser.add_argument("--limit", type=int, default=None, help="images per dataset in Table 2 (all by default)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the images (each loads the model)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the report from the cached results")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="Table 3 seeds to run (default selftrain.SEEDS; the report averages every cached seed)")
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--out", default=None, help="write the report (Markdown) here, its scatter plots beside it")
    parser.add_argument("--json", action="store_true", help="accepted for symmetry; the output is Markdown")
    args = parser.parse_args(argv)
    from .selftrain import SEEDS

    args.seeds = list(SEEDS) if args.seeds is None else args.seeds
    if datasets.data_root() is None:
        print("the paper benchmark needs ../shared/data (or $SAMEDENHANCER_DATA)", file=sys.stderr)
        return 2
    if not args.render_only:
        cache().mkdir(parents=True, exist_ok=True)
        if "2" in args.tables:
            for dataset in args.datasets:
                result = run_table2(args.model, dataset, args.limit, args.workers)
                (cache() / f"table2_{dataset}.json").write_text(json.dumps(result))
                print("\n".join(format_table2(result, None)), flush=True)
        if "3" in args.tables:
            from .selftrain import run_table3

            for dataset in [d for d in TABLE3 if d in args.datasets]:
                for seed in args.seeds:
                    result = run_table3(args.model, dataset, workers=args.workers, seed=seed)
                    table3_path(dataset, seed).write_text(json.dumps(result))
    render(args.out and Path(args.out), "python -m studies paper " + " ".join(argv or sys.argv[1:]))
    return 0
