"""SAMAug's prior maps: a segmentation prior and a boundary prior from a Segment-Anything-family
model's automatic masks over one encode, and SAMAug's composition of them with the image, as extra
input for any downstream segmenter (it is not a refinement of a mask; and not the *domain prior*
of prompt mining, ``prior="single"``). What they do for a downstream U-Net: ``benchmarks/SAMAUG.md``.

From one encode, a grid of prompts is decoded in batches: points for point-trained models (three
masks each, as SAM's automatic mask generator), boxes at several scales for box-trained ones
(LiteMedSAM was trained with boxes only: its point prompts shrink onto a blob). Each mask gets the
decoder's predicted IoU and SAM's stability score (IoU of the masks at logit > +1 and > -1);
SAM's filters (predicted IoU, stability, masks covering nearly all the image) and box NMS keep the
reliable, distinct ones. Then, per SAMAug:

- segmentation prior = per pixel, the sum of the stability scores of the kept masks covering it;
- boundary prior = the union of the kept masks' thick boundaries (``boundary_width`` px both sides).

References
----------
.. [1] Zhang, Y. et al., "Input Augmentation with SAM: Boosting Medical Image Segmentation with
   Segmentation Foundation Model", MICCAI 2023 workshops, arXiv:2304.11332 (SAMAug).
.. [2] Kirillov, A. et al., "Segment Anything", ICCV 2023 (the automatic mask generator, the
   stability score, the filters).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from .embeddings import EmbeddingStore
from .predictor import Predictor, as_predictor
from .transforms import check_image
from .validation import choice, instance, integer, number

__all__ = ["PriorMaps", "augment", "prior_maps", "prompt_grid"]

#: Box grids of the box-trained models: the image split into n x n tiles, boxes on the tiles and on
#: the half-way shifted ones ((2n - 1)^2 boxes per scale).
BOX_SCALES = (2, 3)
#: Points per side of the point grid of the point-trained models.
POINTS_PER_SIDE = 8
#: Default (min predicted IoU, min stability score) per prompt kind: SAM's for points; lower for
#: LiteMedSAM's boxes, whose IoU head and logits are flatter.
FILTERS = {"point": (0.88, 0.95), "box": (0.7, 0.6)}


@dataclass(frozen=True)
class PriorMaps:
    """SAMAug's two prior maps of one image, float32 H x W at native resolution.

    Attributes
    ----------
    segmentation : ndarray
        Sum of the stability scores of the kept masks covering each pixel (>= 0).
    boundary : ndarray
        1 on the thick boundary of any kept mask, 0 elsewhere.
    kept, prompts : int
        Masks kept by the filters, and prompts decoded.
    """

    segmentation: np.ndarray
    boundary: np.ndarray
    kept: int
    prompts: int


def prompt_grid(shape: tuple, kind: str, *, scales=BOX_SCALES, points_per_side: int = POINTS_PER_SIDE) -> np.ndarray:
    """The automatic prompts of an H x W image: ``(N, 4)`` XYXY boxes (``kind="box"``: for each n of
    ``scales`` the (2n - 1)^2 boxes of an n x n tiling and its half-tile shifts) or ``(N, 2)`` x, y
    points (``kind="point"``: a ``points_per_side`` square grid at the cell centres, as SAM's)."""
    height, width = shape
    choice(kind, "kind", ("box", "point"))
    if kind == "point":
        n = integer(points_per_side, "points_per_side", 1)
        offsets = (np.arange(n) + 0.5) / n
        xs, ys = np.meshgrid(offsets * width, offsets * height)
        return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    scales = [integer(n, "scales", 1) for n in scales]
    if min(height, width) < max(scales):
        raise ValueError(f"image of {height}x{width} pixels is too small for the box grid (its finest tiling is "
                         f"{max(scales)} x {max(scales)} tiles of at least one pixel): the prior maps need an image "
                         f"of at least {max(scales)} pixels per side")
    boxes = []
    for n in scales:
        tile_w, tile_h = width / n, height / n
        for j in range(2 * n - 1):
            for i in range(2 * n - 1):
                x0, y0 = i * tile_w / 2, j * tile_h / 2
                boxes.append((x0, y0, min(x0 + tile_w, width) - 1, min(y0 + tile_h, height) - 1))
    return np.asarray(boxes, np.float32)


def _stability(low: np.ndarray, offset: float = 1.0) -> np.ndarray:
    """SAM's stability score per mask of ``(N, h, w)`` logits: |logit > +offset| / |logit > -offset|."""
    flat = low.reshape(len(low), -1)
    inter = (flat > offset).sum(1).astype(np.float32)
    union = (flat > -offset).sum(1).astype(np.float32)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float32)


def _box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes greedy non-maximum suppression keeps (highest score first)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    for i in order:
        if keep:
            k = np.asarray(keep)
            ix0, iy0 = np.maximum(boxes[k, 0], boxes[i, 0]), np.maximum(boxes[k, 1], boxes[i, 1])
            ix1, iy1 = np.minimum(boxes[k, 2], boxes[i, 2]), np.minimum(boxes[k, 3], boxes[i, 3])
            inter = np.clip(ix1 - ix0 + 1, 0, None) * np.clip(iy1 - iy0 + 1, 0, None)
            if (inter / (areas[k] + areas[i] - inter)).max() > iou_threshold:
                continue
        keep.append(int(i))
    return np.asarray(keep, np.int64)


def prior_maps(image: np.ndarray, model: str | os.PathLike | Predictor = "litemedsam", *, embedding=None,
           prompt_kind: str | None = None, min_iou: float | None = None, min_stability: float | None = None,
           max_coverage: float = 0.9, nms_iou: float = 0.7, boundary_width: int = 2,
           embeddings: EmbeddingStore | None = None) -> PriorMaps:
    """SAMAug's segmentation and boundary priors of ``image`` from one encode.

    Parameters
    ----------
    image : ndarray, H x W or H x W x 3, uint8 / uint16 / float
    model : str, path or Predictor
        Model name or folder (the embedded ``"litemedsam"`` by default), or a ready Predictor.
    embedding : ImageEmbedding, optional
        ``predictor.encode(image)`` when already computed (then nothing is encoded).
    prompt_kind : {"box", "point"}, optional
        The automatic prompts; default from the model's manifest: points for models trained with
        points, boxes otherwise (:func:`prompt_grid`).
    min_iou, min_stability : float, optional
        SAM's filters: a mask is kept when its predicted IoU and its stability score reach these.
        Defaults per prompt kind (``FILTERS``): SAM's 0.88 / 0.95 for points; 0.7 / 0.6 for
        LiteMedSAM's boxes, whose IoU head and logits are flatter.
    max_coverage : float
        Masks covering more than this fraction of the image (the background) are dropped.
    nms_iou : float
        Box NMS between kept masks (by their boxes, highest stability first).
    boundary_width : int
        Half-width in pixels of each kept mask's boundary in the boundary prior.
    embeddings : EmbeddingStore, optional
        Read the image's embedding from this store (or encode and store it).

    Returns
    -------
    PriorMaps

    Raises
    ------
    ValueError
        For an image smaller than the box grid's finest tiling (3 pixels per side by default).

    Examples
    --------
    >>> from samedenhancer import augment, data, prior_maps
    >>> image = data.fundus().image
    >>> maps = prior_maps(image)
    >>> maps.segmentation.shape, maps.kept > 0, maps.prompts
    ((384, 384), True, 34)
    >>> augment(image, maps).shape
    (384, 384, 3)
    """
    check_image(image)
    predictor = as_predictor(model, embeddings=embeddings)
    max_coverage, nms_iou = number(max_coverage, "max_coverage", 0, 1), number(nms_iou, "nms_iou", 0, 1)
    boundary_width = integer(boundary_width, "boundary_width", 1)
    if prompt_kind is None:
        prompt_kind = "point" if "point" in predictor.manifest.trained_prompts else "box"
    default_iou, default_stability = FILTERS[choice(prompt_kind, "prompt_kind", FILTERS)]
    min_iou = number(default_iou if min_iou is None else min_iou, "min_iou", 0, 1)
    min_stability = number(default_stability if min_stability is None else min_stability, "min_stability", 0, 1)
    shape = image.shape[:2]
    grid = prompt_grid(shape, prompt_kind)  # before the encode: an image too small costs nothing
    if embedding is None:
        embedding = predictor.encode(image)
    if prompt_kind == "box":
        low, iou = predictor.decode(embedding, box=grid)
    else:
        low, iou = predictor.decode(embedding, point_coords=grid[:, None], point_labels=np.ones((len(grid), 1)),
                                    multimask_output=True)
    low, iou = low.reshape(-1, *low.shape[-2:]), iou.reshape(-1)
    stability = _stability(low)
    keep = np.flatnonzero((iou >= min_iou) & (stability >= min_stability))
    windows, masks = [], []
    for i in keep:
        window, logits = predictor.upscale_window(embedding, low[i])
        mask = logits > 0
        if not mask.any() or mask.sum() > max_coverage * shape[0] * shape[1]:
            continue
        windows.append(window)
        masks.append((int(i), mask))
    segmentation, boundary, kept = _compose(shape, masks, windows, stability, nms_iou, boundary_width)
    return PriorMaps(segmentation, boundary, kept, len(grid))


def _compose(shape: tuple, masks: list, windows: list, stability: np.ndarray, nms_iou: float,
             boundary_width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """SAMAug's two maps from the filtered masks (``(index, mask in its window)``): box NMS by
    stability, then the stability-weighted sum and the union of the thick boundaries."""
    segmentation = np.zeros(shape, np.float32)
    boundary = np.zeros(shape, np.float32)
    if not masks:
        return segmentation, boundary, 0
    boxes = np.array([_tight_box(mask, window) for (_, mask), window in zip(masks, windows)], np.float32)
    chosen = _box_nms(boxes, stability[[i for i, _ in masks]], nms_iou)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * boundary_width + 1,) * 2)
    for k in chosen:
        i, mask = masks[k]
        x0, y0, x1, y1 = windows[k]
        segmentation[y0 : y1 + 1, x0 : x1 + 1] += stability[i] * mask
        grown = _pad_window(mask, windows[k], shape, boundary_width)
        ring = cv2.morphologyEx(grown[0].astype(np.uint8), cv2.MORPH_GRADIENT, kernel) > 0
        gx0, gy0, gx1, gy1 = grown[1]
        np.maximum(boundary[gy0 : gy1 + 1, gx0 : gx1 + 1], ring, out=boundary[gy0 : gy1 + 1, gx0 : gx1 + 1])
    return segmentation, boundary, len(chosen)


def _tight_box(mask: np.ndarray, window: tuple) -> tuple:
    ys, xs = np.nonzero(mask)
    return (xs.min() + window[0], ys.min() + window[1], xs.max() + window[0], ys.max() + window[1])


def _pad_window(mask: np.ndarray, window: tuple, shape: tuple, pad: int):
    """``mask`` (in ``window``) grown by ``pad`` pixels on each side, clipped to the image."""
    x0, y0, x1, y1 = window
    gx0, gy0 = max(x0 - pad, 0), max(y0 - pad, 0)
    gx1, gy1 = min(x1 + pad, shape[1] - 1), min(y1 + pad, shape[0] - 1)
    grown = np.zeros((gy1 - gy0 + 1, gx1 - gx0 + 1), bool)
    grown[y0 - gy0 : y1 - gy0 + 1, x0 - gx0 : x1 - gx0 + 1] = mask
    return grown, (gx0, gy0, gx1, gy1)


def augment(image: np.ndarray, maps: PriorMaps) -> np.ndarray:
    """SAMAug's augmented image: ``image`` scaled to [0, 1] (integers by their dtype's range, floats
    min-max unless already in [0, 1]; grey replicated to 3 channels) with the segmentation prior / 5
    added to green and the boundary prior to blue, clipped to 1 (the fix SAMAug's author gives for
    over-bright images). Returns float32 H x W x 3 in [0, 1]."""
    check_image(image)
    instance(maps, "maps", PriorMaps, "samedenhancer.PriorMaps (from prior_maps())")
    if maps.segmentation.shape != image.shape[:2]:
        raise ValueError(f"prior maps of shape {maps.segmentation.shape} do not match image shape {image.shape[:2]}")
    if image.dtype.kind in "ui":
        info = np.iinfo(image.dtype)
        unit = (image.astype(np.float32) - max(info.min, 0)) / float(info.max - max(info.min, 0))
    else:
        unit = image.astype(np.float32)
        low, high = float(unit.min()), float(unit.max())
        if low < 0 or high > 1:
            unit = (unit - low) / max(high - low, 1e-8)
    unit = np.clip(unit, 0, 1)
    if unit.ndim == 3 and unit.shape[2] == 1:
        unit = unit[..., 0]
    if unit.ndim == 2:
        unit = np.repeat(unit[..., None], 3, axis=2)
    out = unit.copy()
    out[..., 1] += maps.segmentation / 5.0
    out[..., 2] += maps.boundary
    return np.clip(out, 0.0, 1.0).astype(np.float32)
