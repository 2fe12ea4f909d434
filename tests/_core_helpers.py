"""Helpers shared by the core tests: random masks for hypothesis, the real masks of ../shared/data and
MedPy's metrics written out with SciPy (the oracle of samedenhancer.metrics)."""

from __future__ import annotations

import functools

import cv2
import numpy as np
from hypothesis import strategies as st
from scipy import ndimage

from samedenhancer.bench import datasets


@st.composite
def label_maps(draw, max_side: int = 48, max_classes: int = 3, min_side: int = 1):
    """Random H x W uint8 label maps: salt-and-pepper or smooth blobs, 1..max_classes classes."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(0.0, 1.0))
    classes = draw(st.integers(1, max_classes))
    smooth = draw(st.booleans())
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w))
    if smooth:
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=float(rng.uniform(0.8, 3.0)))
        noise = (noise - noise.min()) / max(noise.max() - noise.min(), 1e-9)
    fg = noise < density
    values = rng.integers(1, classes + 1, size=(h, w)) if not smooth else (1 + (np.arange(w)[None, :] * classes) // w)
    return np.where(fg, values, 0).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def real_masks(dataset: str) -> tuple[tuple[str, np.ndarray], ...]:
    """(name, uint8 label map) for every ground truth of `dataset` and every real coarse map
    thresholded at 127 (> 127 is foreground)."""
    out = []
    for sample in datasets.samples(dataset):
        out.append((f"{dataset}/{sample.stem}/truth", sample.ground_truth()))
        for segmenter in datasets.SEGMENTERS.get(dataset, ()):
            out.append((f"{dataset}/{sample.stem}/{segmenter}", (sample.coarse(segmenter) > 127).astype(np.uint8)))
    return tuple(out)


def medpy_surface_distances(result, reference, spacing=None):
    """MedPy's __surface_distances with connectivity=1, verbatim in SciPy."""
    result, reference = np.atleast_1d(result.astype(bool)), np.atleast_1d(reference.astype(bool))
    footprint = ndimage.generate_binary_structure(result.ndim, 1)
    result_border = result ^ ndimage.binary_erosion(result, structure=footprint, iterations=1)
    reference_border = reference ^ ndimage.binary_erosion(reference, structure=footprint, iterations=1)
    dt = ndimage.distance_transform_edt(~reference_border, sampling=spacing)
    return dt[result_border]


def medpy_hd95(result, reference, spacing=None):
    return np.percentile(
        np.hstack((medpy_surface_distances(result, reference, spacing), medpy_surface_distances(reference, result, spacing))), 95
    )


def medpy_assd(result, reference, spacing=None):
    return np.mean(
        (medpy_surface_distances(result, reference, spacing).mean(), medpy_surface_distances(reference, result, spacing).mean())
    )


def medpy_dc(result, reference):
    result, reference = result.astype(bool), reference.astype(bool)
    return 2.0 * np.count_nonzero(result & reference) / float(np.count_nonzero(result) + np.count_nonzero(reference))
