"""Helpers shared by the core tests: random masks for hypothesis and the real masks of ../shared/data."""

from __future__ import annotations

import functools

import cv2
import numpy as np
from hypothesis import strategies as st

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
