"""``python -m samedenhancer.bench interactive``: interactive correction measured with the protocol
of MedicoSAM and SAMMed.

Each image is encoded once (embeddings cached on disk under ``--cache``); every start (jittered
GT box, one point at the GT's distance-transform maximum, a coarse mask refined by the default
Enhancer) and every simulated user (farthest point inside the largest error region; MedicoSAM's
one random FN and one random FP point per round) runs an :class:`InteractiveSession` on that
embedding, so a click never encodes. Writes ``benchmarks/INTERACTIVE.md`` and a plot.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import datasets
from ..enhancer import Enhancer
from ..predictor import ImageEmbedding, Predictor
from .corruption import corrupt_label_map

#: (dataset, class label, display name); ACDC is one line per class on shared images.
TARGETS = (
    ("busi", 1, "BUSI"),
    ("thyroid_ddti", 1, "DDTI"),
    ("kvasir", 1, "Kvasir"),
    ("cvc_clinicdb", 1, "CVC-ClinicDB"),
    ("acdc", 3, "ACDC LV"),
    ("acdc", 2, "ACDC MYO"),
    ("acdc", 1, "ACDC RV"),
)


@dataclass
class Case:
    """One image, its embedding and one target class: the expert mask and the coarse start."""

    dataset: str
    name: str
    stem: str
    image: np.ndarray
    embedding: ImageEmbedding
    truth: np.ndarray  # bool H x W
    coarse: np.ndarray  # bool H x W, the coarse mask refined by the default Enhancer


def cached_embedding(predictor: Predictor, image: np.ndarray, key: str, cache: Path | None) -> ImageEmbedding:
    """``predictor.encode(image)``, read from / written to ``cache / key.npz`` when ``cache`` is set."""
    path = None if cache is None else cache / predictor.manifest.name / f"{key}.npz"
    if path is not None and path.is_file():
        with np.load(path) as doc:
            features = tuple(doc[f"f{i}"] for i in range(len(predictor.manifest.encoder_outputs)))
            for f in features:
                f.setflags(write=False)
            return ImageEmbedding(features, tuple(doc["original_size"]), tuple(doc["scale"]),
                                  tuple(doc["valid_size"]), predictor.manifest.name)
    embedding = predictor.encode(image)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, original_size=embedding.original_size, scale=embedding.scale, valid_size=embedding.valid_size,
                 **{f"f{i}": np.asarray(f) for i, f in enumerate(embedding.features)})
        tmp.replace(path)
    return embedding


def load_cases(predictor: Predictor, dataset: str, limit: int, cache: Path | None) -> list[tuple[str, np.ndarray, ImageEmbedding, np.ndarray, np.ndarray]]:
    """The first ``limit`` images of ``dataset`` with a non-empty expert mask: (stem, image,
    embedding, expert label map, coarse label map before refinement)."""
    out = []
    for sample in datasets.samples(dataset):
        truth = sample.ground_truth()
        if not truth.any():
            continue
        image = sample.image()
        if dataset in datasets.SEGMENTERS:
            coarse = (sample.coarse("pranet") > 127).astype(np.uint8)
        else:
            coarse = corrupt_label_map(truth, sample.stem)
        embedding = cached_embedding(predictor, image, f"{dataset}/{sample.stem}", cache)
        out.append((sample.stem, image, embedding, truth, coarse))
        if len(out) >= limit:
            break
    return out


def build_cases(predictor: Predictor, limit: int, cache: Path | None, names=None) -> list[Case]:
    """Every (image, class) of :data:`TARGETS`, with the coarse mask refined by ``Enhancer()``."""
    enhancer = Enhancer(predictor)
    cases = []
    loaded = {}
    for dataset, label, name in TARGETS:
        if names and name not in names:
            continue
        if dataset not in loaded:
            loaded[dataset] = []
            for stem, image, embedding, truth, coarse in load_cases(predictor, dataset, limit, cache):
                refined = enhancer.refine_encoded(embedding, enhancer.mine(coarse), coarse)
                loaded[dataset].append((stem, image, embedding, truth, refined))
        for stem, image, embedding, truth, refined in loaded[dataset]:
            if not (truth == label).any():
                continue
            cases.append(Case(dataset, name, stem, image, embedding, truth == label, refined == label))
    return cases


# -- starts and simulated users -----------------------------------------------------------------
def jittered_box(truth: np.ndarray, rng: np.random.Generator, max_grow: int = 10) -> list[int]:
    """MedSAM's box: the expert mask's bounding box, each side grown by U{0..max_grow} pixels
    (clipped to the image)."""
    ys, xs = np.nonzero(truth)
    h, w = truth.shape
    grow = rng.integers(0, max_grow + 1, size=4)
    return [int(max(0, xs.min() - grow[0])), int(max(0, ys.min() - grow[1])),
            int(min(w - 1, xs.max() + grow[2])), int(min(h - 1, ys.max() + grow[3]))]


def center_point(truth: np.ndarray) -> tuple[int, int]:
    """(x, y) of the expert mask's distance-transform maximum (the pixel deepest inside it)."""
    depth = cv2.distanceTransform(np.pad(truth.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y)


def farthest_click(mask: np.ndarray, truth: np.ndarray) -> tuple[int, int, bool] | None:
    """The click of the farthest-point user: inside the largest connected error region (false
    negatives if that region is a false-negative one), at the pixel farthest from its boundary
    (the image border counts as boundary). ``None`` when the mask is right."""
    best = None
    for positive, error in ((True, truth & ~mask), (False, mask & ~truth)):
        if not error.any():
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:
            best = (area, positive, comp == k)
    if best is None:
        return None
    _, positive, region = best
    depth = cv2.distanceTransform(np.pad(region.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y), positive


def random_clicks(mask: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, bool]]:
    """MedicoSAM's user: one random false-negative and one random false-positive pixel (those that
    exist) per round."""
    out = []
    for positive, error in ((True, truth & ~mask), (False, mask & ~truth)):
        ys, xs = np.nonzero(error)
        if ys.size:
            i = int(rng.integers(ys.size))
            out.append((int(xs[i]), int(ys[i]), positive))
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total
