"""MSFF and prompt mining written the way research code does it (OpenCV + SciPy/NumPy, Python
loops, a full-image mask and full-image distance transforms per region).

It is both the competitor of ``python -m samedenhancer.bench core`` and the independent oracle
that the tests compare :func:`samedenhancer.mine_prompts` against. It shares no code with the core:
components come from ``cv2.connectedComponentsWithStats``, perimeters from ``cv2.findContours`` +
``cv2.arcLength``, distances from ``cv2.distanceTransform(DIST_L2, DIST_MASK_PRECISE)``. The rules
are those the core documents (``cpp/include/samedenhancer/prompts.hpp``): components ordered by their first pixel in raster
order, SAMRefiner's greedy merge loop, positive point = argmax of the distance to the outside of the
region with the image border counting as outside, negative point = argmax of the distance to the
region over the ring (within ``ring_radius``, outside every pixel of the class), ties to the first
pixel in raster order (``np.argmax``). Ties are compared on the squared distances rounded to
integers: OpenCV's float distances of equally distant pixels can differ in the last bit, and which
one is larger changes from call to call (with the buffer's alignment), so a raw argmax is not
reproducible.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np


class ReferencePrompts(NamedTuple):
    """Per-region arrays as in :class:`samedenhancer.Prompts` (same meaning and order)."""

    class_ids: np.ndarray
    boxes: np.ndarray
    tight_boxes: np.ndarray
    points: np.ndarray
    has_negative: np.ndarray
    areas: np.ndarray
    ipq: np.ndarray
    regions: np.ndarray
    dropped_classes: np.ndarray


def _squared(distance: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (whole numbers of pixels^2) from OpenCV's float distances."""
    return np.rint(distance.astype(np.float64) ** 2)


def _ipq(area: float, perimeter: float) -> float:
    if perimeter <= 0:
        return 1.0
    return min(1.0, 4.0 * math.pi * area / (perimeter * perimeter))


def _should_merge(a: dict, b: dict) -> bool:
    """SAMRefiner's criterion on two items {box: (x0, y0, x1, y1), m: mask area}."""

    def box_area(box):
        return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)

    union = (min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1]), max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3]))
    area_a, area_b, area_ab = float(box_area(a["box"])), float(box_area(b["box"])), float(box_area(union))
    if not area_a + area_b > 0.5 * area_ab:
        return False
    occ_a, occ_b = a["m"] / area_a, b["m"] / area_b
    return (a["m"] + b["m"]) / area_ab > min(0.5, min(occ_a, occ_b) - 0.1)


def _merge(items: list[dict]) -> list[dict]:
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(items):
            j = i + 1
            while j < len(items):
                if _should_merge(items[i], items[j]):
                    a, b = items[i], items[j]
                    items[i] = {
                        "box": (min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1]), max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3])),
                        "m": a["m"] + b["m"],
                        "members": a["members"] + b["members"],
                    }
                    del items[j]
                    changed = True
                    j = i + 1
                else:
                    j += 1
            i += 1
    return items


def mine_prompts_reference(
    label_map: np.ndarray,
    *,
    prior: str | dict = "multi",
    ipq_filter: bool = False,
    ring_radius: int = 20,
    box_margin: int | None = None,
    min_area: int = 5,
    min_fraction: float = 0.1,
) -> ReferencePrompts:
    """MSFF + prompts of every class of an integer ``label_map`` (H, W); see the module docstring."""
    height, width = label_map.shape
    class_ids, boxes, tight, points, has_negative, areas, ipqs, dropped = [], [], [], [], [], [], [], []
    regions = np.zeros((height, width), np.int32)
    for cls in np.unique(label_map):
        if cls == 0:
            continue
        class_mask = (label_map == cls).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(class_mask, connectivity=8)
        comps = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            first_x = int(np.argmax(labels[y] == i))
            comps.append({"label": i, "area": area, "box": (x, y, x + w - 1, y + h - 1), "first": (y, first_x)})
        comps.sort(key=lambda c: c["first"])
        total = int(class_mask.sum())
        kept = [c for c in comps if c["area"] >= min_area and c["area"] >= min_fraction * total]
        for c in kept:
            component = (labels == c["label"]).astype(np.uint8)
            contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            c["perimeter"] = cv2.arcLength(contours[0], True)
            c["ipq"] = _ipq(c["area"], c["perimeter"])
        if ipq_filter and len(kept) > 1:
            mean = sum(c["ipq"] for c in kept) / len(kept)
            kept = [c for c in kept if c["ipq"] >= mean]
        items = _merge([{"box": c["box"], "m": c["area"], "members": [c]} for c in kept])
        mode = prior if isinstance(prior, str) else prior.get(int(cls), "multi")
        if mode == "single" and len(items) > 1:
            items = [max(items, key=lambda it: it["m"])]
        if not items:
            dropped.append(int(cls))
        for item in items:
            region = np.isin(labels, [c["label"] for c in item["members"]]).astype(np.uint8)
            regions[region > 0] = len(class_ids) + 1
            x0, y0, x1, y1 = item["box"]
            if box_margin is None:
                mx, my = min(10, (x1 - x0 + 1) // 10), min(10, (y1 - y0 + 1) // 10)
            else:
                mx = my = box_margin
            inside = _squared(cv2.distanceTransform(np.pad(region, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1])
            py, px = np.unravel_index(int(np.argmax(inside)), inside.shape)
            outside = _squared(cv2.distanceTransform(1 - region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE))
            ring = (outside <= ring_radius**2) & (class_mask == 0)
            if ring.any():
                ny, nx = np.unravel_index(int(np.argmax(np.where(ring, outside, -1.0))), ring.shape)
            else:
                ny = nx = 0
            class_ids.append(int(cls))
            tight.append((x0, y0, x1, y1))
            boxes.append((max(0, x0 - mx), max(0, y0 - my), min(width - 1, x1 + mx), min(height - 1, y1 + my)))
            points.append(((px, py), (nx, ny)))
            has_negative.append(bool(ring.any()))
            areas.append(item["m"])
            ipqs.append(_ipq(item["m"], sum(c["perimeter"] for c in item["members"])))
    return ReferencePrompts(
        np.array(class_ids, np.int32),
        np.array(boxes, np.int32).reshape(-1, 4),
        np.array(tight, np.int32).reshape(-1, 4),
        np.array(points, np.int32).reshape(-1, 2, 2),
        np.array(has_negative, bool),
        np.array(areas, np.int64),
        np.array(ipqs, np.float32),
        regions,
        np.array(dropped, np.int32),
    )
