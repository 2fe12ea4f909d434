"""``python -m samedenhancer.bench embeddings [--images 100] [--quality 20] [--threads 2] [--no-models]
[--json] [--out FILE]``: what the embedding store saves and what it costs, against the same pipeline
without a store measured in the same run, on real Kvasir images with their PraNet maps (> 127).

- Pseudo-label enhancement loop: three rounds of ``Enhancer.enhance`` over the same images, each
  round refining the previous round's labels; encoder calls per round (rounds 2 and 3: none) and
  the loop's wall time with and without the store. Round 1 is the first run: with an empty store
  against no store is the store's cost (target < 5 %). The two pipelines alternate image by image
  (ABBA), so that the load of a shared machine falls on both alike; their masks must be
  byte-identical (asserted: the default store does not change results).
- Second run: each image of round 1 again with the store right after its first run (paired, so
  that both see one machine load) against the first run (target >= 5x), masks byte-identical
  (asserted).
- Disk: bytes per embedding for each model that can be exported here (LiteMedSAM; MedSAM2 and SAM
  ViT-B with seeded random weights, unless ``--no-models``), fp32 and fp16, and fp16's Dice change
  against the expert masks on the first ``--quality`` images.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from .report import Row, report, write_report

ROUNDS = 3


def _timed(enhancer, image, coarse) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    mask = enhancer.enhance(image, coarse).mask
    return time.perf_counter() - start, mask


def pseudo_label_loop(plain, stored, store, images, coarse) -> dict:
    """Three rounds over ``images``; each round's refined labels (x 255) are the next round's
    coarse maps. The two pipelines alternate image by image (ABBA); in round 1 the store's
    pipeline enhances each image a second time right after its first run (the second run, paired
    so that both see the same machine load). Returns per round the seconds of each pipeline and
    the store's encoder calls, the second run's seconds and round 1's masks."""
    labels = [list(coarse), list(coarse)]
    result = {"plain": [], "stored": [], "encodes": [], "second": 0.0, "first_masks": []}
    for round_ in range(ROUNDS):
        misses, totals = store.stats.misses, [0.0, 0.0]
        for i, image in enumerate(images):
            masks = [None, None]
            for which in ((1, 0) if i % 4 in (1, 2) else (0, 1)):
                seconds, masks[which] = _timed((plain, stored)[which], image, labels[which][i])
                totals[which] += seconds
                if round_ == 0 and which == 1:
                    seconds, again = _timed(stored, image, labels[1][i])
                    result["second"] += seconds
                    if again.tobytes() != masks[1].tobytes():
                        raise AssertionError(f"image {i}: the second run with the store changed the mask")
            if masks[0].tobytes() != masks[1].tobytes():
                raise AssertionError(f"round {round_ + 1}, image {i}: the store changed the mask")
            if round_ == 0:
                result["first_masks"].append(masks[1])
            for which in (0, 1):
                labels[which][i] = (masks[which] > 0).astype(np.uint8) * 255
        result["plain"].append(totals[0])
        result["stored"].append(totals[1])
        result["encodes"].append(store.stats.misses - misses)
        print(f"round {round_ + 1}: no store {totals[0]:.1f} s, store {totals[1]:.1f} s, "
              f"{result['encodes'][-1]} encoder calls through the store", file=sys.stderr, flush=True)
    return result


def store_work(store, identity: str, predictor, images) -> tuple[float, float]:
    """Median milliseconds of the store's own work per miss (key, checksum, atomic write) and per
    hit (key, read, checksum), the encoder's output given ready."""
    prepared = [predictor.prepare(image).tensor for image in images]
    features = [predictor.encode(image).features for image in images]
    miss, hit = [], []
    for tensor, ready in zip(prepared, features):
        start = time.perf_counter()
        store.fetch(identity, tensor, lambda: ready)
        miss.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.fetch(identity, tensor, lambda: ready)
        hit.append(time.perf_counter() - start)
    return 1e3 * float(np.median(miss)), 1e3 * float(np.median(hit))


def disk_rows(models: list[tuple[str, object]], image, tmp: str) -> list[Row]:
    """Bytes per entry of one Kvasir image for each ``(label, model folder)``, fp32 and fp16."""
    from samedenhancer import EmbeddingStore, Predictor

    rows = []
    for label, folder in models:
        predictor = Predictor(folder)
        tensor = predictor.prepare(image).tensor
        features = predictor.encode(image).features
        sizes = {}
        for fp16 in (False, True):
            store = EmbeddingStore(os.path.join(tmp, f"disk-{label}-{fp16}"), fp16=fp16)
            store.fetch(predictor.manifest.identity, tensor, lambda: features)
            sizes[fp16] = store.size_bytes()
        raw = sum(np.asarray(f).nbytes for f in features)
        shapes = " + ".join("x".join(map(str, np.shape(f))) for f in features)
        rows.append(Row(f"{label} ({shapes}): bytes per entry, fp32", sizes[False] / 1e6, raw / 1e6,
                        "the encoder's output in memory", unit="MB"))
        rows.append(Row(f"{label}: bytes per entry, fp16 (option)", sizes[True] / 1e6, sizes[False] / 1e6,
                        "fp32 entry", unit="MB"))
    return rows


def exported_models(tmp: str, with_random: bool) -> tuple[list, list[str]]:
    """``(label, folder)`` of LiteMedSAM and, with ``with_random``, of MedSAM2 and SAM ViT-B with
    seeded random weights (disk only: an embedding's size does not depend on the weights)."""
    from samedenhancer.registry import load_model, model_dir

    load_model("litemedsam")
    models, notes = [("LiteMedSAM", model_dir("litemedsam"))], []
    if not with_random:
        return models, notes
    try:
        from samedenhancer.export import export_random
    except ImportError as exc:
        return models, [f"MedSAM2 / SAM ViT-B not measured: the export extra is missing ({exc})."]
    for label, name in (("MedSAM2 (random weights)", "medsam2"), ("SAM ViT-B (random weights)", "sam_vit_b")):
        try:
            models.append((label, export_random(name, out=os.path.join(tmp, name), seed=0)))
        except (ImportError, ValueError, RuntimeError) as exc:
            notes.append(f"{label} not measured: {type(exc).__name__}: {exc}")
    return models, notes


def fp16_quality(predictor, store, samples, plain_masks, tmp: str) -> tuple[float, float, int, float]:
    """Mean Dice against the expert masks with fp32 (``plain_masks``) and with an fp16 store, how
    many masks differ and the lowest Dice between an fp32 and its fp16 mask; the fp16 store is
    filled from ``store`` (no encoder call)."""
    from samedenhancer import EmbeddingStore, Enhancer
    from samedenhancer.metrics import dice

    half = EmbeddingStore(os.path.join(tmp, "fp16"), fp16=True)
    identity, full = predictor.manifest.identity, predictor.with_embeddings(store)
    for sample in samples:
        prepared = predictor.prepare(sample.image())
        half.fetch(identity, prepared.tensor, lambda: full.encode_prepared(prepared).features)
    enhancer = Enhancer(predictor.with_embeddings(half), threshold=127)
    truth = [sample.ground_truth() for sample in samples]
    masks = [enhancer.enhance(sample.image(), sample.coarse("pranet")).mask for sample in samples]
    fp32 = float(np.mean([dice(m, t) for m, t in zip(plain_masks, truth)]))
    fp16 = float(np.mean([dice(m, t) for m, t in zip(masks, truth)]))
    changed = sum(a.tobytes() != b.tobytes() for a, b in zip(plain_masks, masks))
    return fp32, fp16, changed, min(dice(a, b) for a, b in zip(plain_masks, masks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench embeddings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100, help="Kvasir images (default 100, all of them)")
    parser.add_argument("--quality", type=int, default=20, help="images of the fp16 Dice comparison (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per operator")
    parser.add_argument("--no-models", action="store_true", help="disk of LiteMedSAM only (no random-weight exports)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)

    from samedenhancer import EmbeddingStore, Enhancer, Predictor
    from samedenhancer.bench import datasets

    load = os.getloadavg()[0]
    samples = datasets.samples("kvasir")[: args.images]
    images, coarse = [s.image() for s in samples], [s.coarse("pranet") for s in samples]
    predictor = Predictor("litemedsam", intra_op_threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddingStore(os.path.join(tmp, "store"))
        plain = Enhancer(predictor, threshold=127)
        stored = Enhancer(predictor.with_embeddings(store), threshold=127)
        plain.enhance(images[0], coarse[0])  # warm-up of the engines both share
        loop = pseudo_label_loop(plain, stored, store, images, coarse)
        miss_ms, hit_ms = store_work(EmbeddingStore(os.path.join(tmp, "work")), predictor.manifest.identity,
                                     predictor, images[:10])
        quality = samples[: args.quality]
        fp32_dice, fp16_dice, changed, agreement = fp16_quality(predictor, store, quality, loop["first_masks"][: len(quality)], tmp)
        models, notes = exported_models(tmp, not args.no_models)
        rows = disk_rows(models, images[0], tmp)

    n, first_plain, first_stored = len(images), loop["plain"][0], loop["stored"][0]
    rows[:0] = [
        Row(f"second run with the store vs first run ({n} images, Enhancer.enhance)", loop["second"], first_stored,
            "first run (empty store)", unit="s", target=">= 5x"),
        Row(f"first run: empty store vs no store ({n} images)", first_stored, first_plain, "same pipeline, no store",
            unit="s", target="< 5 % slower (>= 0.952x)"),
        Row("store's own work per first encode (key, checksum, atomic write)", miss_ms, 1e3 * first_plain / n,
            "one image's enhance without a store", unit="ms", target="< 5 % (>= 20x)"),
        Row("store's own work per reuse (key, read, checksum)", hit_ms, 1e3 * first_plain / n,
            "one image's enhance without a store", unit="ms"),
        Row(f"pseudo-label loop, {ROUNDS} rounds x {n} images (wall)", sum(loop["stored"]), sum(loop["plain"]),
            "same loop, no store", unit="s"),
    ]
    notes[:0] = [
        f"Command: `python -m samedenhancer.bench embeddings --images {args.images} --quality {args.quality} "
        f"--threads {args.threads}{' --no-models' if args.no_models else ''}`.",
        f"Kvasir, first {n} images with PraNet maps > 127; LiteMedSAM fp32 on ONNX Runtime CPU, {args.threads} threads; "
        f"load average {load:.1f} at the start (nice -n 10 on a shared machine: ratios, not absolute times, carry over).",
        f"Encoder calls per round of the pseudo-label loop: with the store {loop['encodes']}, without "
        f"{[n] * ROUNDS}; every round's masks byte-identical with and without the store, the second run's identical "
        "to the first's. The second run enhances each image right after its first run (paired: one machine load).",
        f"First run overhead of the store: {100 * (first_stored / first_plain - 1):+.1f} % of the wall time.",
        f"fp16 entries on the first {len(quality)} images: mean Dice vs the expert masks {100 * fp32_dice:.3f} (fp32) -> "
        f"{100 * fp16_dice:.3f} (fp16), {100 * (fp16_dice - fp32_dice):+.3f} points; {changed} of {len(quality)} masks "
        f"differ, the lowest Dice between an fp32 mask and its fp16 mask {100 * agreement:.3f}. fp32 is the default.",
    ]
    text = report("Embedding store: reuse against re-encoding", rows, as_json=args.json, notes=notes)
    write_report(args.out, text)
    return 0
