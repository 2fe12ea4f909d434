"""``python -m studies volumes``: propagation and 3-D refinement on the ACDC volumes.

Writes ``benchmarks/VOLUMES.md``. The 60 ACDC volumes of ``../shared/data/acdc/raw_h5`` (30
patients x ED/ES; h5py) are taken in a seeded order (``--volumes N`` for the first N). Every slice
is encoded once (embeddings cached on disk with ``--cache``) and every method decodes from it:

- propagation (:func:`samedenhancer.propagate`, LiteMedSAM, ``iou_threshold`` 0.5), per structure,
  from the ground truth of the middle slice of that structure's extent (the whole slice annotated,
  every class on it, as an annotator labels a slice; the structure's result is scored) and from two
  slices (a quarter and three quarters into the structure's extent), against that structure's seed
  copied to every slice of its extent and the oracle of each structure's ground-truth box on every
  slice where it is present (with the same ring handling for the myocardium);
- 3-D refinement (:meth:`Enhancer.enhance_volume`, ``mining="3d"``) of a corrupted coarse volume
  against the coarse volume and each slice refined on its own (``Enhancer.enhance`` per slice).

Corrupted coarse volumes (seeded, 3-D version of :mod:`studies.corruption`): each
slice's label map is corrupted with the 2-D protocol (seed from ``<volume>_slice<z>``), then per
class, with a per-volume seed: a false-positive fragment (probability 0.5) — the class's middle
slice mask, shrunk to half its size, pasted on one slice outside the class's extent (or on its
first/last slice if the class fills the volume) — and a missed slice (probability 0.3): one slice
inside the extent loses the class.

Metrics: 3-D Dice and HD95 (``samedenhancer.metrics``, n-dimensional) per structure. ACDC's voxel
spacing is not in this copy: HD95 is in voxels with an assumed spacing of 10 mm between slices and
1.5 mm in plane, i.e. reported in mm for that assumed grid (ACDC's typical 5-10 mm slices, 1.37-1.68
mm pixels).
"""

from __future__ import annotations

import argparse
import glob
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from samedenhancer.enhancer import Enhancer
from samedenhancer.metrics import dice, hd95
from samedenhancer.predictor import Predictor
from samedenhancer.volumes import propagate
from samedenhancer.volumes.slices import segment_slice
from .embeddings import CachedEncoder
from samedenhancer.bench.report import machine, write_report
from .corruption import corrupt_label_map, image_seed
from samedenhancer.bench import datasets

CLASSES = {3: "LV", 2: "MYO", 1: "RV"}
#: The 1-slice propagation with every structure cut to the slices the expert labelled it on.
CUT = "propagation, 1 slice, cut to the expert extent (oracle stop)"
SPACING = (10.0, 1.5, 1.5)  # assumed (slice, row, column) mm: ACDC's spacing is not in this copy


def volume_names(root: Path) -> list[Path]:
    names = sorted(Path(p) for p in glob.glob(str(root / "acdc" / "raw_h5" / "*.h5")))
    return [names[i] for i in np.random.default_rng(0).permutation(len(names))]


def corrupt_volume(labels: np.ndarray, name: str) -> np.ndarray:
    """The 3-D corruption protocol of the module docstring; ``labels`` is (Z, H, W)."""
    out = np.stack([corrupt_label_map(labels[z], f"{name}_slice{z:02d}") for z in range(len(labels))])
    for c in sorted(CLASSES):
        rng = np.random.default_rng(image_seed(name, base=100 + c))
        present = np.flatnonzero((labels == c).reshape(len(labels), -1).any(1))
        if not len(present):
            continue
        if rng.random() < 0.5:
            middle = (labels[present[len(present) // 2]] == c).astype(np.uint8)
            small = cv2.resize(middle, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_NEAREST)
            outside = [z for z in range(len(labels)) if z not in set(present.tolist())] or [present[0], present[-1]]
            z = int(rng.choice(outside))
            h, w = small.shape
            y, x = int(rng.integers(0, labels.shape[1] - h)), int(rng.integers(0, labels.shape[2] - w))
            region = out[z, y:y + h, x:x + w]
            region[(small > 0) & (region == 0)] = c
        if rng.random() < 0.3 and len(present) > 2:
            z = int(rng.choice(present[1:-1]))
            out[z][out[z] == c] = 0
    return out


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[int, tuple[float, float]]:
    """Per structure: (3-D Dice, HD95 in mm on the assumed grid; NaN when one side is empty)."""
    out = {}
    for c in CLASSES:
        p, t = pred == c, truth == c
        out[c] = (dice(p, t), hd95(p, t, spacing=SPACING) if p.any() and t.any() else math.nan)
    return out


def extent_of(labels: np.ndarray, c: int) -> np.ndarray:
    """The slices holding class ``c``."""
    return np.flatnonzero((labels == c).reshape(len(labels), -1).any(1))


def beyond_extent(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, dict[int, tuple[int, int, int]]]:
    """``pred`` with each structure removed from the slices where the expert labels do not hold it
    (the oracle of stopping exactly at the structure's extent), and per structure the slices it was
    found on outside that extent: (slices, pixels, slices that are the volume's first or last)."""
    cut = pred.copy()
    counts = {}
    for c in CLASSES:
        outside = np.flatnonzero((pred == c).reshape(len(pred), -1).any(1) & ~(truth == c).reshape(len(truth), -1).any(1))
        counts[c] = (len(outside), int((pred[outside] == c).sum()), int(sum(z in (0, len(pred) - 1) for z in outside)))
        cut[outside] = np.where(cut[outside] == c, 0, cut[outside])
    return cut, counts


def copy_baseline(labels: np.ndarray) -> np.ndarray:
    """Each structure's middle-slice mask copied to every slice of its extent."""
    out = np.zeros_like(labels)
    for c in CLASSES:
        present = extent_of(labels, c)
        if len(present):
            seed = labels[present[len(present) // 2]] == c
            out[present[0]:present[-1] + 1][:, seed & (out[present[0]] == 0)] = c
    return out


def per_structure(labels: np.ndarray, seeds_of, run) -> tuple[np.ndarray, list]:
    """Each structure's result from ``run(seeds)`` with the seeds ``seeds_of(extent)`` of its own
    extent (runs shared between structures with the same seed slices), merged into one label volume;
    also the runs' results."""
    out = np.zeros_like(labels)
    done: dict[tuple, object] = {}
    for c in CLASSES:
        present = extent_of(labels, c)
        if not len(present):
            continue
        key = tuple(seeds_of(present))
        if key not in done:
            done[key] = run({z: labels[z] for z in key})
        result = done[key]
        out[(result.mask == c) & (out == 0)] = c
    return out, list(done.values())


def oracle(encoder, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = np.zeros_like(labels)
    for z in range(len(labels)):
        reference = {c: labels[z] == c for c in CLASSES if (labels[z] == c).any()}
        if reference:
            for c, mask in segment_slice(encoder, encoder.encode(image[z]), reference, refine=False).items():
                out[z][mask & (out[z] == 0)] = c
    return out


def run_volume(path: Path, encoder: CachedEncoder, enhancer: Enhancer) -> dict:
    import h5py

    with h5py.File(path) as handle:
        image, labels = handle["image"][:], handle["label"][:]
    name = path.stem
    rows, seconds = {}, {}
    before = encoder.encode_seconds
    for z in range(len(labels)):  # every slice encoded once (or read from the cache) first
        encoder.encode(image[z])
    seconds["encode (uncached)"] = encoder.encode_seconds - before
    start = time.perf_counter()
    one, runs = per_structure(labels, lambda present: [int(present[len(present) // 2])],
                              lambda seeds: propagate(image, seeds=seeds, model=encoder, axis=0))
    seconds["propagate, 1 slice"] = (time.perf_counter() - start) / len(runs)
    rows["propagation, 1 slice"] = scores(one, labels)
    cut, beyond = beyond_extent(one, labels)
    rows[CUT] = scores(cut, labels)
    split = {"decode": np.mean([r.timings.decode for r in runs]), "mining": np.mean([r.timings.mining for r in runs])}
    two, _ = per_structure(labels, lambda present: sorted({int(present[len(present) // 4]), int(present[(3 * len(present)) // 4])}),
                           lambda seeds: propagate(image, seeds=seeds, model=encoder, axis=0))
    rows["propagation, 2 slices"] = scores(two, labels)
    rows["copy seed (1 slice)"] = scores(copy_baseline(labels), labels)
    rows["oracle GT box every slice"] = scores(oracle(encoder, image, labels), labels)
    coarse = corrupt_volume(labels, name)
    rows["coarse (corrupted)"] = scores(coarse, labels)
    start = time.perf_counter()
    flat = np.stack([enhancer.enhance(image[z], coarse[z]).mask for z in range(len(image))])  # each slice on its own
    seconds["refine slice-by-slice"] = time.perf_counter() - start
    rows["refine slice-by-slice"] = scores(flat, labels)
    start = time.perf_counter()
    deep = enhancer.enhance_volume(image, coarse, axis=0)
    seconds["refine 3-D"] = time.perf_counter() - start
    rows["refine 3-D"] = scores(deep.mask, labels)
    split3 = {k: sum(getattr(s.timings, k) for s in deep.slices) for k in ("mine", "decode", "paste")}
    return {"name": name, "slices": len(labels), "rows": rows, "seconds": seconds, "split": split, "split3": split3,
            "stopped": sum(r.status.count("stopped") for r in runs), "beyond": beyond}


def _mean(values):
    values = [v for v in values if not math.isnan(v)]
    return (float(np.mean(values)), len(values)) if values else (math.nan, 0)


def report(results: list[dict], total: int, wall: float) -> str:
    methods = list(results[0]["rows"])
    lines = ["# Volumes: propagation and 3-D refinement on ACDC", "",
             f"`python -m studies volumes` — {len(results)} of the {total} ACDC volumes "
             f"(seeded order, `--volumes {len(results)}`), {sum(r['slices'] for r in results)} slices; "
             f"{wall / 60:.1f} min. {machine()}", ""]
    if len(results) < total:
        lines += [f"**Subset**: {len(results)} of the {total} volumes, the first {len(results)} of "
                  "`numpy.random.default_rng(0).permutation(60)` over the sorted names.", ""]
    lines += ["3-D Dice (%) and HD95 (mm on an assumed 10 x 1.5 x 1.5 mm grid: ACDC's spacing is not in this "
              "copy; HD95 averaged where both masks are non-empty, n = volumes counted) per structure, mean over "
              "the volumes:", "",
              "| method | LV Dice | MYO Dice | RV Dice | LV HD95 | MYO HD95 | RV HD95 |", "|---|---|---|---|---|---|---|"]
    means = {}
    for m in methods:
        cells_d, cells_h = [], []
        for c in CLASSES:
            d, _ = _mean([r["rows"][m][c][0] for r in results if m in r["rows"]])
            h, n = _mean([r["rows"][m][c][1] for r in results if m in r["rows"]])
            means[m, c] = (d, h)
            cells_d.append(f"{100 * d:.1f}")
            cells_h.append(f"{h:.1f} (n={n})")
        lines.append(f"| {m} | " + " | ".join(cells_d + cells_h) + " |")
    lines += ["", "## Against the targets", ""]
    p, cp, o = "propagation, 1 slice", "copy seed (1 slice)", "oracle GT box every slice"
    for c, target in ((3, 92), (1, 85), (2, 70)):
        d, dc, do = (100 * means[k, c][0] for k in (p, cp, o))
        ok = d >= target and d >= dc + 5
        lines.append(f"- {CLASSES[c]}: propagation {d:.1f} (target >= {target}), copy {dc:.1f} "
                     f"({d - dc:+.1f}, target >= +5), oracle {do:.1f} ({d - do:+.1f} below the oracle): "
                     f"{'met' if ok else 'missed'}")
    lines.append("- propagation, 1 slice, found outside the structure's expert extent (slices where the expert labels"
                 " do not hold it; the oracle row cuts them): " + "; ".join(
                     f"{CLASSES[c]} {sum(r['beyond'][c][0] for r in results)} slices, {sum(r['beyond'][c][1] for r in results)} px"
                     f" ({sum(r['beyond'][c][2] for r in results)} of them the volume's first or last slice), Dice"
                     f" {100 * means[p, c][0]:.1f} -> {100 * means[CUT, c][0]:.1f} if cut" for c in CLASSES if "beyond" in results[0]))
    s, t, k = "refine slice-by-slice", "refine 3-D", "coarse (corrupted)"
    for c in CLASSES:
        d2, d3, dk = (100 * means[m, c][0] for m in (s, t, k))
        h2, h3, hk = (means[m, c][1] for m in (s, t, k))
        ok = d3 >= d2 and h3 < hk
        lines.append(f"- 3-D refinement, {CLASSES[c]}: Dice {d3:.1f} vs slice-by-slice {d2:.1f} ({d3 - d2:+.1f}), "
                     f"coarse {dk:.1f}; HD95 {h3:.1f} vs coarse {hk:.1f}, slice-by-slice {h2:.1f}: "
                     f"{'met' if ok else 'missed'}")
    lines += ["", "## Seconds per volume (mean)", ""]
    keys = list(results[0]["seconds"])
    for key in keys:
        lines.append(f"- {key}: {np.mean([r['seconds'][key] for r in results]):.2f} s")
    lines.append(f"- propagation (1 slice) split: decode {np.mean([r['split']['decode'] for r in results]):.2f} s, "
                 f"mining/rings {np.mean([r['split']['mining'] for r in results]):.2f} s (+ encodes, cached here)")
    lines.append(f"- 3-D refinement split: mining {np.mean([r['split3']['mine'] for r in results]):.2f} s, decode "
                 f"{np.mean([r['split3']['decode'] for r in results]):.2f} s, paste "
                 f"{np.mean([r['split3']['paste'] for r in results]):.2f} s (+ encodes, cached here)")
    per_slice = results[0].get("encode_per_slice")
    if per_slice is None:
        lines.append("- encodes: every slice embedding came from the cache in this run (each method would "
                     "otherwise add one encode per slice it reaches)")
    else:
        lines.append(f"- one LiteMedSAM encode in this run: {per_slice:.2f} s (each method adds one per slice it reaches)")
    lines += ["", "## Per volume (propagation from 1 slice: Dice LV / MYO / RV; slices stopped)", ""]
    for r in results:
        row = r["rows"][p]
        lines.append(f"- {r['name']}: " + " / ".join(f"{100 * row[c][0]:.1f}" for c in CLASSES) + f"; {r['stopped']}")
    lines += ["", "## Protocol", "", __doc__.split("\n\n", 1)[1]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies volumes", description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", type=int, default=60, help="first N volumes of the seeded order")
    parser.add_argument("--cache", default=None, help="folder for cached slice embeddings")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    root = Path(args.data) if args.data else datasets.data_root()
    if root is None:
        print("../shared/data not found (set SAMEDENHANCER_DATA)", file=sys.stderr)
        return 2
    names = volume_names(Path(root))
    encoder = CachedEncoder(Predictor("litemedsam"), args.cache)
    enhancer = Enhancer(encoder)
    start = time.perf_counter()
    results = []
    for path in names[: args.volumes]:
        results.append(run_volume(path, encoder, enhancer))
        r = results[-1]["rows"]["propagation, 1 slice"]
        print(f"{path.stem}: " + " ".join(f"{CLASSES[c]} {100 * r[c][0]:.1f}" for c in CLASSES), flush=True)
    if encoder.encodes:
        results[0]["encode_per_slice"] = encoder.encode_seconds / encoder.encodes
    text = report(results, len(names), time.perf_counter() - start)
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
