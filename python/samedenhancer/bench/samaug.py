"""``python -m samedenhancer.bench samaug``: SAMAug's prior maps from the embedded model — how well
the segmentation prior alone locates the target (AUC against the expert foreground) and what a
prior map costs, for each automatic prompt grid, on real images.

Each image is encoded once; every grid decodes from that embedding. The competitor of the cost is
SAM's automatic mask generator grid (32 x 32 points, ~1000 prompts) extrapolated from the measured
seconds per prompt of the same run. Writes ``benchmarks/SAMAUG.md`` with ``--write``.

Not here yet (issue 16): the downstream proof (the same U-Net trained on plain vs SAMAug-augmented
images), which needs the U-Net harness of ``bench unet``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

#: Datasets of SAMAug's polyp setting and the breast ultrasound set.
DATASETS = ("kvasir", "cvc_clinicdb", "busi")
#: Prompt grids measured: name -> keywords of :func:`samedenhancer.priors`.
GRIDS = {"boxes 2+3 tiles (default)": {"prompt_kind": "box"}, "points 8x8": {"prompt_kind": "point"}}
SAM_GRID_PROMPTS = 32 * 32


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary ``truth`` (Mann-Whitney, ties averaged)."""
    from scipy.stats import rankdata

    scores, truth = scores.ravel(), truth.ravel().astype(bool)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench samaug", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=10, help="images per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--write", action="store_true", help="write benchmarks/SAMAUG.md")
    args = parser.parse_args(argv)

    from samedenhancer import Predictor, priors
    from samedenhancer.bench import datasets

    from ._report import machine

    predictor = Predictor("litemedsam")
    rows = []
    for dataset in args.datasets:
        results = {name: {"auc": [], "seconds": [], "kept": [], "prompts": 0} for name in GRIDS}
        encode_s = []
        for sample in datasets.samples(dataset)[: args.limit]:
            image, truth = sample.image(), sample.ground_truth() > 0
            if not truth.any():
                continue
            start = time.perf_counter()
            embedding = predictor.encode(image)
            encode_s.append(time.perf_counter() - start)
            for name, options in GRIDS.items():
                start = time.perf_counter()
                pri = priors(image, predictor, embedding=embedding, **options)
                results[name]["seconds"].append(time.perf_counter() - start)
                results[name]["auc"].append(auc(pri.segmentation, truth))
                results[name]["kept"].append(pri.kept)
                results[name]["prompts"] = pri.prompts
        for name, r in results.items():
            per_prompt = float(np.mean(r["seconds"])) / max(r["prompts"], 1)
            rows.append((dataset, name, len(r["auc"]), float(np.nanmean(r["auc"])), float(np.mean(r["kept"])), r["prompts"],
                         float(np.mean(encode_s)), float(np.mean(r["seconds"])), per_prompt * SAM_GRID_PROMPTS))
    info = machine()
    lines = [
        "## SAMAug priors of the embedded model (LiteMedSAM)",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores; {info['date']}. `python -m samedenhancer.bench samaug "
        f"--limit {args.limit}`. AUC of the segmentation prior against the expert foreground (0.5 = no information); "
        "seconds per image = one encode + the grid's decodes; SAM's 32x32 point grid extrapolated from the same "
        "run's seconds per prompt.",
        "",
        "| dataset | grid | images | AUC | masks kept | prompts | encode s | priors s | encode + priors s | SAM 32x32 grid s (extrapolated) | ratio | target <= 5 s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, name, n, mean_auc, kept, prompts, enc, pri_s, sam_s in rows:
        total = enc + pri_s
        lines.append(f"| {dataset} | {name} | {n} | {mean_auc:.3f} | {kept:.1f} | {prompts} | {enc:.2f} | {pri_s:.2f} | "
                     f"{total:.2f} | {enc + sam_s:.1f} | {(enc + sam_s) / total:.1f}x | {'met' if total <= 5 else 'missed'} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        Path("benchmarks/SAMAUG.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
