"""``python -m studies samaug``: SAMAug's prior maps from the embedded model — how well
the segmentation prior alone locates the target (AUC against the expert foreground) and what a
prior map costs, for each automatic prompt grid, on real images — and, with ``--downstream``,
whether a downstream segmenter gains from them.

Each image is encoded once; every grid decodes from that embedding. The competitor of the cost is
SAM's automatic mask generator grid (32 x 32 points, ~1000 prompts) extrapolated from the measured
seconds per prompt of the same run.

The downstream proof uses the U-Net harness of ``bench unet`` (same folds, seeds, epochs and
size): the U-Net trained and tested on plain images against the same U-Net with SAMAug's recipe —
every training batch takes a step on the plain and then on the augmented images
(:func:`samedenhancer.augment` of the default prior grid), and at test time both are predicted and
the output with the larger mean ``|p - 0.5|`` (of the output min-max scaled per image, see
:func:`confident`) is kept —, that model on each input alone, and training and testing on
augmented images only. Plain images are the augmented ones without the priors (scaled to [0, 1],
grey as three channels), so that the variants share one architecture. Dice and HD95 (pixels) at
native resolution, out-of-fold, every image of the shared set. ``--seeds`` trains every variant once
per seed (each seed deals its own folds) and judges the target on the means: on U-Nets this weak one
seed moves a variant by several points. The augmented images are cached (``--cache``). Writes
the report to ``--out`` and the figure ``SAMAUG.png`` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

#: Datasets of SAMAug's polyp setting and the breast ultrasound set.
DATASETS = ("kvasir", "cvc_clinicdb", "busi")
#: Prompt grids measured: name -> keywords of :func:`samedenhancer.prior_maps`.
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


def _unit_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` as :func:`samedenhancer.augment` scales it, without the priors: float32 H x W x 3 in [0, 1]."""
    from samedenhancer import PriorMaps, augment

    zero = np.zeros(image.shape[:2], np.float32)
    return augment(image, PriorMaps(zero, zero, 0, 0))


def _augmented_inputs(dataset: str, data, predictor, cache: Path, size: int, log) -> tuple[list, list]:
    """Per image: the SAMAug-augmented image and its two prior maps at ``size`` x ``size`` (float32),
    from ``cache/<dataset>/<stem>.npz`` when there (one encode + the default grid otherwise)."""
    import cv2

    from samedenhancer import augment, prior_maps
    from samedenhancer.io import write_atomically

    folder = cache / dataset
    folder.mkdir(parents=True, exist_ok=True)
    augmented, maps = [], []
    start, made = time.perf_counter(), 0
    for stem, image in zip(data.stems, data.images):
        path = folder / f"{stem}.npz"
        if not path.is_file():
            pri = prior_maps(image, predictor)
            small = {"augmented": augment(image, pri), "segmentation": pri.segmentation, "boundary": pri.boundary}
            small = {k: cv2.resize(v, (size, size), interpolation=cv2.INTER_AREA).astype(np.float16) for k, v in small.items()}
            write_atomically(path, ".npz", lambda tmp: np.savez(tmp, **small))
            made += 1
            if log and made % 25 == 0:
                log(f"{dataset}: priors of {made} images, {(time.perf_counter() - start) / made:.2f} s per image")
        with np.load(path) as stored:
            augmented.append(stored["augmented"].astype(np.float32))
            maps.append((stored["segmentation"].astype(np.float32), stored["boundary"].astype(np.float32)))
    return augmented, maps


def _scores(probabilities: np.ndarray, data) -> tuple[float, float, int]:
    """Mean Dice (%), mean HD95 (px, where both masks are non-empty) and that count, at native size."""
    from samedenhancer.metrics import dice, hd95

    from .unet import to_native

    dices, distances = [], []
    for p, truth in zip(probabilities, data.labels):
        mask = to_native(p, truth.shape) > 127
        dices.append(dice(mask, truth > 0))
        if mask.any() and truth.any():
            distances.append(hd95(mask, truth > 0))
    return 100 * float(np.mean(dices)), float(np.mean(distances)) if distances else float("nan"), len(distances)


def confident(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """SAMAug's test-time rule: per image, the output (N x 1 x S x S probabilities) with the larger
    mean ``|q - 0.5|``, where ``q`` is the output min-max scaled to [0, 1] per image, as SAMAug's
    reference test loop scores it (an output that is low everywhere is not confident for being low).
    The kept output is returned unscaled."""

    def confidence(p: np.ndarray) -> np.ndarray:
        low, high = p.min(axis=(1, 2, 3), keepdims=True), p.max(axis=(1, 2, 3), keepdims=True)
        return np.abs((p - low) / (high - low + 1e-8) - 0.5).mean(axis=(1, 2, 3))

    pick = confidence(first) >= confidence(second)
    return np.where(pick[:, None, None, None], first, second)


#: Cached augmented images at this side (>= the U-Net's input size).
CACHE_SIZE = 128


#: The variant SAMAug's target is judged on, and the baseline.
PLAIN, SAMAUG = "plain U-Net", "SAMAug (alternating training, confidence rule at test)"


def downstream(dataset: str, config, cache: Path, log=None, seeds: tuple[int, ...] = (0,)) -> dict:
    """The U-Net variants on one shared set (see the module docstring), trained once per seed
    (``config.seed`` replaced: its folds and initialisations): variant -> one (Dice %, HD95 px,
    images with both masks non-empty) per seed, plus the images, the cached priors and the seconds."""
    from samedenhancer import Predictor

    from . import unet

    if config.size > CACHE_SIZE:
        raise ValueError(f"the U-Net size must be <= {CACHE_SIZE} (the cached augmented images), got {config.size}")
    data = unet.load_shared(dataset)
    start = time.perf_counter()
    augmented, maps = _augmented_inputs(dataset, data, Predictor("litemedsam"), cache, CACHE_SIZE, log)
    priors_s = time.perf_counter() - start
    plain = np.stack([unet.as_input(_unit_rgb(image), config.size) for image in data.images])
    aug = np.stack([unet.as_input(a, config.size) for a in augmented])
    targets = np.stack([unet.as_target(label, config.size) for label in data.labels])
    start = time.perf_counter()
    variants: dict[str, list] = {}
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=seed)
        base = unet.cross_validate(plain, targets, data.groups, 1, seeded, log=log)
        alternate_plain, alternate_aug = unet.cross_validate((plain, aug), targets, data.groups, 1, seeded,
                                                             train_inputs=(plain, aug), log=log)
        aug_only = unet.cross_validate(aug, targets, data.groups, 1, seeded, log=log)
        for name, probabilities in ((PLAIN, base), (SAMAUG, confident(alternate_plain, alternate_aug)),
                                    ("SAMAug-trained, tested on plain images", alternate_plain),
                                    ("SAMAug-trained, tested on augmented images", alternate_aug),
                                    ("augmented images only (train and test)", aug_only)):
            variants.setdefault(name, []).append(_scores(probabilities, data))
    return {
        "images": len(data.stems),
        "seeds": list(seeds),
        "variants": variants,
        "samples": (data.images[:1], maps[:1], augmented[:1]),
        "priors_s": priors_s,
        "unet_s": time.perf_counter() - start,
    }


def format_downstream(results: dict[str, dict], config) -> list[str]:
    """The downstream section of SAMAUG.md from :func:`downstream`'s results per dataset: each
    variant's mean over the seeds (and each seed's Dice), and SAMAug's target judged on the means."""
    seeds = next(iter(results.values()))["seeds"] if results else [config.seed]
    several = len(seeds) > 1
    lines = [
        "",
        "## Does a downstream segmenter gain? (the U-Net of `bench unet`, plain vs SAMAug)",
        "",
        f"`python -m studies samaug --downstream --seeds {' '.join(map(str, seeds))}`:"
        f" {dataclasses.replace(config, seed=seeds[0])}, seeds {seeds} (each seed deals its own folds and"
        " initialises every U-Net; the same folds and seeds for every variant); every image of each shared set,"
        " 5-fold out-of-fold predictions; Dice (%) and HD95 (px, mean over the images where both masks are"
        " non-empty, n) at native resolution" + (", means over the seeds" if several else "")
        + ". PriorMaps: the default box grid.",
        "",
        "![SAMAug priors](SAMAUG.png)",
        "",
        "| dataset | images | variant | Dice | HD95 (n) | Δ Dice vs plain |" + (" Dice per seed |" if several else ""),
        "|---|---|---|---|---|---|" + ("---|" if several else ""),
    ]
    gains, per_seed = {}, {}
    for dataset, r in results.items():
        mean = {name: (float(np.mean([s[0] for s in runs])), float(np.mean([s[1] for s in runs])),
                       round(float(np.mean([s[2] for s in runs]))))
                for name, runs in r["variants"].items()}
        plain = mean[PLAIN][0]
        for name, (d, h, n) in mean.items():
            lines.append(f"| {dataset} | {r['images']} | {name} | {d:.2f} | {h:.1f} ({n}) | "
                         f"{'' if name == PLAIN else f'{d - plain:+.2f}'} |"
                         + (" " + ", ".join(f"{s[0]:.2f}" for s in r["variants"][name]) + " |" if several else ""))
        gains[dataset] = mean[SAMAUG][0] - plain
        per_seed[dataset] = [a[0] - b[0] for a, b in zip(r["variants"][SAMAUG], r["variants"][PLAIN])]
    met = sum(g >= 1.0 for g in gains.values())
    lines += ["", "Target: SAMAug >= +1.0 Dice over the plain U-Net on at least two of the three datasets"
              + (" (on the means over the seeds)" if several else "") + ": "
              + ", ".join(f"{d} {g:+.2f}" + (f" (per seed {', '.join(f'{x:+.2f}' for x in per_seed[d])})" if several else "")
                          for d, g in gains.items())
              + f" -> {'met' if met >= 2 else 'missed'} ({met} of {len(gains)}).", "",
              "Seconds: " + "; ".join(f"{d}: priors {r['priors_s']:.0f} s (0 when cached), U-Nets {r['unet_s']:.0f} s"
                                      for d, r in results.items()) + "."]
    return lines


def figure(samples: dict, path: Path) -> None:
    """One row per dataset: the image, the segmentation prior, the boundary prior, the augmented image."""
    import matplotlib

    matplotlib.use("Agg")
    import cv2
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(samples), 4, figsize=(10, 2.6 * len(samples)), squeeze=False)
    for row, (dataset, (images, maps, augmented)) in enumerate(samples.items()):
        segmentation, boundary = maps[0]
        size = segmentation.shape[::-1]
        panels = [(cv2.resize(images[0], size, interpolation=cv2.INTER_AREA), "image", None),
                  (segmentation, "segmentation prior", "magma"), (boundary, "boundary prior", "gray"),
                  (np.clip(augmented[0], 0, 1), "SAMAug input", None)]
        for ax, (picture, title, cmap) in zip(axes[row], panels):
            ax.imshow(picture, cmap=cmap)
            ax.set_title(f"{dataset}: {title}" if ax is axes[row][0] else title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies samaug", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=10, help="images per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file (and SAMAUG.png beside it with --downstream)")
    parser.add_argument("--downstream", action="store_true",
                        help="also train the U-Net of bench unet on plain vs SAMAug-augmented images (every image of each set)")
    parser.add_argument("--cache", default=None,
                        help="folder for the augmented images of --downstream (default <model cache>/priors)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"U-Net input side for --downstream (default the bench unet's; at most {CACHE_SIZE})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the U-Net training")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="U-Net seeds of --downstream (each its own folds; the target is judged on the mean)")
    args = parser.parse_args(argv)

    from samedenhancer import Predictor, prior_maps
    from samedenhancer.bench import datasets

    from samedenhancer.bench.report import machine, write_report

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
                pri = prior_maps(image, predictor, embedding=embedding, **options)
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
        f"Machine: {info['cpu']}, {info['cores']} cores; {info['date']}. `python -m studies samaug "
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
    if args.downstream:
        lines += _downstream_section(args)
    text = "\n".join(lines)
    print(text)
    write_report(args.out, text)
    return 0


def downstream_config(size: int | None = None, threads: int | None = None):
    """The U-Net of ``bench unet`` with the ``--size`` / ``--threads`` of the command line."""
    from .unet import UNetConfig

    overrides = {name: value for name, value in (("size", size), ("threads", threads)) if value is not None}
    return dataclasses.replace(UNetConfig(), **overrides)


def _downstream_section(args) -> list[str]:
    from samedenhancer.engines import cache_dir

    config = downstream_config(args.size, args.threads)
    cache = Path(args.cache) if args.cache else cache_dir() / "priors"
    results = {dataset: downstream(dataset, config, cache, log=lambda line: print(line, file=sys.stderr, flush=True),
                                   seeds=tuple(args.seeds))
               for dataset in args.datasets}
    if args.out:
        figure({d: r["samples"] for d, r in results.items()}, Path(args.out).with_name("SAMAUG.png"))
    return format_downstream(results, config)


if __name__ == "__main__":
    sys.exit(main())
