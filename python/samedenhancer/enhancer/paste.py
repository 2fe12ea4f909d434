"""Pasting the refined regions back into one label map: per-class union, overlaps between classes to
the higher logit, rings kept open, the no-harm gate, and the classes left unchanged. Every
per-region step works inside the region's window."""

from __future__ import annotations

import numpy as np

from ..core import Prompts
from ..metrics import dice
from .decoding import RegionSource
from .options import Gate
from .results import RegionResult
from .rings import ring_hole


def _crop(array: np.ndarray, window: tuple) -> np.ndarray:
    x0, y0, x1, y1 = window
    return array[y0 : y1 + 1, x0 : x1 + 1]


def paste(prompts: Prompts, regions: RegionSource, iou: np.ndarray, boxes: np.ndarray, rounds: np.ndarray,
          gate: Gate | None, stage1: RegionSource | None = None, stage1_iou: np.ndarray | None = None):
    """The refined label map of ``prompts.label_map``'s dtype (at least uint8) and one
    :class:`RegionResult` per region.

    A ring (a region enclosing a hole, :func:`~samedenhancer.enhancer.rings.ring_hole`, labelled or
    not) never takes its hole, and keeps its coarse pixels when what remains agrees with it less than
    ``Gate.min_agreement`` (the model answered the disc's cavity); a region the gate sends back
    keeps its coarse pixels; classes with no surviving region keep theirs; elsewhere a pixel takes
    the class of the region with the highest positive logit there.
    """
    label_map = prompts.label_map
    shape = label_map.shape
    out_dtype = np.result_type(label_map.dtype, np.uint8)
    best_logit = np.full(shape, -np.inf, np.float32)
    best_class = np.zeros(shape, out_dtype)
    kept = np.zeros(shape, bool)  # pixels fixed to the coarse label by the gate
    results: list[RegionResult] = []
    for i, class_id in enumerate(prompts.class_ids.tolist()):
        window, logits = regions[i]
        refined = logits > 0
        coarse_region = _crop(prompts.regions, window) == i + 1  # the window holds the region's tight box
        hole = ring_hole(coarse_region)
        if hole is not None:  # a ring stays a ring: its box asks for the disc, the hole is not the answer
            refined &= ~hole
        agreement = dice(refined, coarse_region)
        fell_back = gate is not None and (float(iou[i]) < gate.min_iou or agreement < gate.min_agreement)
        fell_back = fell_back or (hole is not None and agreement < (gate or Gate()).min_agreement)
        if fell_back:
            _crop(kept, window)[coarse_region] = True
        else:
            best = _crop(best_logit, window)
            wins = refined & (logits > best)
            best[wins] = logits[wins]
            _crop(best_class, window)[wins] = class_id
        stage1_window = stage1_mask = None
        if stage1 is not None:
            first = stage1[i]
            stage1_window, stage1_mask = first.window, first.mask
        results.append(
            RegionResult(
                class_id=class_id,
                box=boxes[i],
                points=prompts.points[i],
                point_labels=prompts.point_labels[i],
                iou=float(iou[i]),
                stage1_iou=float("nan") if stage1_iou is None else float(stage1_iou[i]),
                agreement=agreement,
                fell_back=fell_back,
                rounds=int(rounds[i]),
                window=window,
                shape=shape,
                window_bits=RegionResult.pack(refined),
                stage1_window=stage1_window,
                stage1_window_bits=None if stage1_mask is None else RegionResult.pack(stage1_mask),
            )
        )
    mask = best_class
    mask[kept] = label_map[kept]
    if len(prompts.dropped_classes):
        dropped = np.isin(label_map, prompts.dropped_classes)
        mask[dropped] = label_map[dropped]
    return mask, tuple(results)
