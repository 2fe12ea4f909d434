"""Decoding the mined prompts: the prompt policies (one batched decoder call per stage), the
region logits at native resolution inside each region's window (made one region at a time),
soft fusion with the coarse map's evidence, and box iteration."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core import MiningOptions, Prompts, mine_prompts


class RegionLogits(NamedTuple):
    """A region's native-resolution logits (fused with the coarse evidence when fusion runs) inside
    ``window = (x0, y0, x1, y1)`` (inclusive); everywhere outside the window they are <= 0."""

    window: tuple
    logits: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.logits > 0


def decode(predictor, embedding, prompts: Prompts, policy: str):
    """One batched decoder call per stage of ``policy``.

    Returns ``(low, iou, stage1_low, stage1_iou)``: the final (R, 1, h, w) low-resolution logits
    and (R,) IoU predictions, and those of stage 1 for the point policies (``None`` otherwise).
    """
    points = prompts.points.astype(np.float32)
    labels = prompts.point_labels
    boxes = prompts.boxes.astype(np.float32)
    stage1_low = stage1_iou = None
    if policy in ("points", "hierarchical"):
        low, iou = predictor.decode(embedding, point_coords=points, point_labels=labels, multimask_output=True)
        best = np.argmax(iou, axis=1)
        rows = np.arange(len(best))
        stage1_low, stage1_iou = low[rows, best][:, None], iou[rows, best]
        if policy == "points":
            return stage1_low, stage1_iou, stage1_low, stage1_iou
    if policy == "box":
        low, iou = predictor.decode(embedding, box=boxes)
    else:  # "points+box" and stage 2 of "hierarchical"
        low, iou = predictor.decode(embedding, point_coords=points, point_labels=labels, box=boxes)
    return low[:, :1], iou[:, 0], stage1_low, stage1_iou


class RegionSource:
    """The native-resolution logits of every region, made on demand one region at a time.

    Region ``i``'s logits are computed inside its window (every pixel where the fused logit can be
    > 0, grown to hold ``include[i]``, the coarse region's tight box) from its low-resolution
    logits, fused with ``evidence`` (``weight * logit + evidence``) when given. Only the small
    low-resolution logits are kept, so memory grows with one region's window at a time, not with
    regions x pixels.
    """

    def __init__(self, predictor, embedding, low: np.ndarray, include, evidence: np.ndarray | None, weight: float):
        self.predictor, self.embedding = predictor, embedding
        self.low = np.array(low[:, 0], np.float32)  # (R, h, w), a copy: rounds replace rows
        self.include = include
        self.evidence, self.weight = evidence, weight
        self.floor = 0.0 if evidence is None else -float(evidence.max()) / weight

    def __len__(self) -> int:
        return len(self.low)

    def __getitem__(self, i: int) -> RegionLogits:
        window, logits = self.predictor.upscale_window(self.embedding, self.low[i], floor=self.floor, include=self.include[i])
        if self.evidence is not None:
            x0, y0, x1, y1 = window
            logits = self.weight * logits + self.evidence[y0 : y1 + 1, x0 : x1 + 1]
        return RegionLogits(tuple(int(v) for v in window), logits)

    def replace(self, indices: np.ndarray, low: np.ndarray) -> None:
        """New (len(indices), 1, h, w) low-resolution logits for the regions ``indices``."""
        self.low[indices] = low[:, 0]


def box_of(mask: np.ndarray, offset: tuple, shape: tuple, mining: MiningOptions) -> np.ndarray | None:
    """The box prompt of a refined mask (``mask`` = the window at ``offset = (x0, y0)`` of an image
    of ``shape``): its largest merged region, mined as the coarse mask is (same MSFF filter and box
    margin, clipped where the image ends); ``None`` when nothing survives."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return None
    # Mine in the mask's bounding box grown by the largest margin the options allow, in image
    # coordinates, so that the margin is clipped where the image ends exactly as on the whole image.
    ox, oy = offset
    y_lo, y_hi, x_lo, x_hi = int(ys.min()) + oy, int(ys.max()) + oy, int(xs.min()) + ox, int(xs.max()) + ox
    grow = max(y_hi - y_lo, x_hi - x_lo) // 10 + 1 if mining.box_margin is None else mining.box_margin + 1
    y0, x0 = max(y_lo - grow, 0), max(x_lo - grow, 0)
    y1, x1 = min(y_hi + grow + 1, shape[0]), min(x_hi + grow + 1, shape[1])
    crop = np.zeros((y1 - y0, x1 - x0), np.uint8)
    crop[y_lo - y0 : y_hi - y0 + 1, x_lo - x0 : x_hi - x0 + 1] = mask[y_lo - oy : y_hi - oy + 1, x_lo - ox : x_hi - ox + 1]
    found = mine_prompts(crop, mining.replace(prior="single"))
    if not len(found.boxes):
        return None
    return found.boxes[0] + np.array([x0, y0, x0, y0], found.boxes.dtype)


def iterate_boxes(predictor, embedding, prompts: Prompts, regions: RegionSource, iou: np.ndarray,
                  rounds: int, tolerance: float, mining: MiningOptions):
    """Box iteration: re-box every region from its refined mask and decode the regions whose box
    moved by more than ``tolerance`` of its longer side (at least 1 px), one batched call per
    round, until no box moves or ``rounds`` are spent. ``regions`` is updated in place.

    Returns ``(iou, boxes, decoder_calls)``.
    """
    iou = iou.copy()
    boxes = prompts.boxes.copy()
    calls = np.ones(len(boxes), np.int64)
    active = np.ones(len(boxes), bool)
    shape = prompts.label_map.shape
    for _ in range(rounds):
        for i in np.flatnonzero(active):
            region = regions[i]
            box = box_of(region.mask, region.window[:2], shape, mining)
            side = max(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1], 1)
            if box is None or np.abs(box - boxes[i]).max() <= max(tolerance * side, 1):
                active[i] = False
            else:
                boxes[i] = box
        moved = np.flatnonzero(active)
        if not len(moved):
            break
        low, new_iou = predictor.decode(embedding, box=boxes[moved].astype(np.float32))
        regions.replace(moved, low[:, :1])
        iou[moved] = new_iou[:, 0]
        calls[moved] += 1
    return iou, boxes, calls
