"""A deterministic corruption protocol that turns expert masks into coarse masks.

BUSI and thyroid DDTI ship no predictions of a published segmenter, so the quality benchmark makes
its coarse masks from the expert masks. The protocol imitates the errors a real segmenter makes on
ultrasound lesions — a boundary that wanders, a lesion drawn too big or too small, leakage into the
neighbouring tissue, a detached false-positive blob, a missed lobe, holes in a hypoechoic centre —
and mixes them per image so that the coarse masks range from nearly right to clearly wrong.

The protocol, per image (all sizes relative to the lesion's equivalent radius
``r = sqrt(area / pi)`` of the whole foreground, so small and large lesions get alike errors):

1. ``severity ~ U(0.3, 1.0)``: one number per image that scales every step below.
2. Boundary warp (always): a smooth random displacement field — independent N(0, 1) values on a
   grid with one node per ``r`` pixels, upsampled bicubically to the image — moves each pixel by
   up to about ``0.75 * severity * r``; the mask is resampled through it (``cv2.remap``, nearest).
3. Dilation or erosion (probability 0.8; each sign equally likely): an elliptic structuring element
   of radius ``round(U(0.08, 0.3) * severity * r)`` pixels (at least 1).
4. Missing chunk (probability 0.4): the pixels within ``U(0.4, 0.8) * severity * r`` of a random
   boundary pixel are removed.
5. Leakage (probability 0.4): an ellipse with semi-axes ``U(0.3, 0.7) * severity * r`` centred
   just outside a random boundary pixel (half a semi-axis outwards) is added, warped like step 2.
6. False-positive blob (probability 0.25): a detached ellipse with semi-axes
   ``U(0.15, 0.4) * r`` placed where it does not touch the lesion (up to 20 tries; skipped if none
   fits), warped like step 2.
7. Holes (probability 0.25): one or two ellipses with semi-axes ``U(0.08, 0.2) * r`` removed
   around interior pixels at least ``0.3 * r`` deep in the lesion.

An empty expert mask (BUSI's normal images) stays empty: a coarse mask that finds nothing where
there is nothing is the right answer, and the benchmark scores both-empty as Dice 1, HD95 0
(METHOD.md, "Metrics"). A lesion that the steps above erase completely is restored to the
step-2 result, so a non-empty expert mask never gives an empty coarse mask.

With this protocol and :func:`image_seed` of each stem, the mean coarse Dice is 0.790 on BUSI
(15 empty normals included, each Dice 1) and 0.798 on DDTI; per image it spreads from about 0.6
to 0.9 (5th–95th percentile). Tests pin both means inside 0.75–0.85. Everything is driven by
``numpy.random.default_rng(seed)``: the same mask and seed give the same coarse mask with the same
NumPy and OpenCV versions (the displacement field is a float bicubic upsampling, so another OpenCV
build may move an occasional boundary pixel; the mean Dice does not move).

References
----------
The categories of error follow the failure modes reported for ultrasound lesion segmenters in
Al-Dhabyani et al., "Dataset of breast ultrasound images" (BUSI), Data in Brief 28, 2020, and the
coarse-mask benchmarks of SAMRefiner (Lin et al., ICLR 2025) and SAMedEnhancer, which corrupt or
use imperfect masks in the same spirit.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from samedenhancer.core import check_label_map

__all__ = ["corrupt", "corrupt_label_map", "image_seed", "protocol_description"]


def protocol_description() -> str:
    """The corruption protocol in words (the module docstring), for benchmark reports."""
    return __doc__ or ""


def image_seed(name: str, base: int = 0) -> int:
    """A stable per-image seed from an image name (CRC-32 of the UTF-8 name, plus ``base``).

    Parameters
    ----------
    name : str
        The image's stem, e.g. ``"benign (12)"``.
    base : int, optional
        Offset to draw a different, equally deterministic corruption of the same set.

    Returns
    -------
    int
        A non-negative seed for :func:`corrupt`.

    Examples
    --------
    >>> image_seed("benign (12)") == image_seed("benign (12)")
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if isinstance(base, bool) or not isinstance(base, (int, np.integer)):
        raise TypeError(f"base must be an int, got {type(base).__name__}")
    return (zlib.crc32(name.encode("utf-8")) + int(base)) % (2**32)


def _warp(mask: np.ndarray, rng: np.random.Generator, amplitude: float, cell: float) -> np.ndarray:
    """Resample ``mask`` through a smooth random displacement field (max shift ~ ``amplitude``)."""
    h, w = mask.shape
    gh, gw = max(2, int(np.ceil(h / cell)) + 1), max(2, int(np.ceil(w / cell)) + 1)
    field = rng.standard_normal((2, gh, gw)).astype(np.float32)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    # N(0, 1) nodes: |shift| rarely exceeds ~2.5 sigma; scale so that ~amplitude is the typical max.
    scale = np.float32(amplitude / 2.5)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = (xs + scale * dx).astype(np.float32)
    map_y = (ys + scale * dy).astype(np.float32)
    return cv2.remap(mask, map_x, map_y, interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _ellipse(shape: tuple[int, int], center: tuple[float, float], axes: tuple[float, float], angle: float) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.ellipse(
        canvas,
        (int(round(center[0])), int(round(center[1]))),
        (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))),
        float(angle),
        0,
        360,
        1,
        thickness=-1,
    )
    return canvas


def _boundary(mask: np.ndarray) -> np.ndarray:
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return np.argwhere((mask > 0) & (inner == 0))


def corrupt(mask: np.ndarray, seed: int) -> np.ndarray:
    """Turn an expert mask into a coarse mask with segmenter-like errors (see the module docstring).

    Parameters
    ----------
    mask : numpy.ndarray
        H x W expert mask, bool or integer; nonzero is foreground.
    seed : int
        Seed of ``numpy.random.default_rng``; use :func:`image_seed` for a per-image seed.

    Returns
    -------
    numpy.ndarray
        H x W uint8 coarse mask with values 0/1. Empty in, empty out.

    Raises
    ------
    TypeError
        If ``mask`` is not a bool/integer array or ``seed`` is not an int.
    ValueError
        If ``mask`` is not 2-D or has a zero-size side.

    Examples
    --------
    >>> m = np.zeros((64, 64), np.uint8); m[16:48, 16:48] = 1
    >>> c = corrupt(m, seed=3)
    >>> c.shape, c.dtype, set(np.unique(c)) <= {0, 1}
    ((64, 64), dtype('uint8'), True)
    >>> np.array_equal(c, corrupt(m, seed=3))
    True
    """
    check_label_map(mask, "mask")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")

    binary = (mask != 0).astype(np.uint8)
    area = int(binary.sum())
    if area == 0:
        return binary
    h, w = binary.shape
    rng = np.random.default_rng(int(seed))
    r = float(np.sqrt(area / np.pi))
    severity = rng.uniform(0.3, 1.0)

    # 2. boundary warp
    out = _warp(binary, rng, amplitude=0.75 * severity * r, cell=max(r, 4.0))
    warped = out.copy()

    # 3. dilation or erosion
    if rng.random() < 0.8:
        radius = max(1, int(round(rng.uniform(0.08, 0.3) * severity * r)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        if rng.random() < 0.5:
            out = cv2.dilate(out, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        else:
            out = cv2.erode(out, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)

    # 4. missing chunk
    if rng.random() < 0.4:
        edge = _boundary(out)
        if len(edge):
            y, x = edge[rng.integers(len(edge))]
            rad = rng.uniform(0.4, 0.8) * severity * r
            out[_ellipse(out.shape, (x, y), (rad, rad), 0.0) > 0] = 0

    # 5. leakage attached to the boundary
    if rng.random() < 0.4:
        edge = _boundary(out)
        if len(edge):
            y, x = edge[rng.integers(len(edge))]
            cy, cx = np.argwhere(out > 0).mean(axis=0)
            direction = np.array([x - cx, y - cy], dtype=float)
            direction /= max(np.linalg.norm(direction), 1e-6)
            a, b = rng.uniform(0.3, 0.7, size=2) * severity * r
            center = (x + direction[0] * 0.5 * a, y + direction[1] * 0.5 * a)
            blob = _ellipse(out.shape, center, (a, b), rng.uniform(0, 180))
            blob = _warp(blob, rng, amplitude=0.3 * max(a, b), cell=max(a, b, 4.0))
            out |= blob

    # 6. detached false-positive blob
    if rng.random() < 0.25:
        a, b = rng.uniform(0.15, 0.4, size=2) * r
        grown = cv2.dilate(out, np.ones((3, 3), np.uint8), iterations=2)
        for _ in range(20):
            center = (rng.uniform(0, w), rng.uniform(0, h))
            blob = _ellipse(out.shape, center, (a, b), rng.uniform(0, 180))
            if blob.any() and not (blob & grown).any():
                out |= _warp(blob, rng, amplitude=0.3 * max(a, b), cell=max(a, b, 4.0))
                break

    # 7. holes
    if rng.random() < 0.25:
        depth = cv2.distanceTransform(out, cv2.DIST_L2, 5)
        deep = np.argwhere(depth >= 0.3 * r)
        for _ in range(int(rng.integers(1, 3))):
            if not len(deep):
                break
            y, x = deep[rng.integers(len(deep))]
            a, b = rng.uniform(0.08, 0.2, size=2) * r
            out[_ellipse(out.shape, (x, y), (a, b), rng.uniform(0, 180)) > 0] = 0

    if not out.any():
        out = warped if warped.any() else binary
    return out.astype(np.uint8)


def corrupt_label_map(truth: np.ndarray, stem: str) -> np.ndarray:
    """The coarse label map of one image under the protocol: each class ``c`` of ``truth`` is
    corrupted on its own with the seed ``image_seed(stem, base=c - 1)`` (a binary mask gets
    ``image_seed(stem)``), classes written in increasing order (a later class wins a pixel two
    corrupted classes both claim).

    Parameters
    ----------
    truth : numpy.ndarray
        H x W expert label map, bool or integer (0 = background).
    stem : str
        The image's stem (its seed).

    Returns
    -------
    numpy.ndarray
        H x W coarse label map of ``truth``'s dtype.

    Examples
    --------
    >>> m = np.zeros((64, 64), np.uint8); m[16:48, 16:48] = 1
    >>> np.array_equal(corrupt_label_map(m, "case"), corrupt(m, image_seed("case")))
    True
    >>> m[16:48, 40:48] = 2
    >>> sorted(np.unique(corrupt_label_map(m, "case")).tolist())
    [0, 1, 2]
    """
    truth = check_label_map(truth, "truth")
    out = np.zeros_like(truth)
    for value in np.unique(truth):
        if value == 0:
            continue
        out[corrupt(truth == value, image_seed(stem, base=int(value) - 1)) > 0] = value
    return out
