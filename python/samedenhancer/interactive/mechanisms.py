"""Interactive segmentation mechanisms: plain functions over a predictor and an image embedding.

Nothing here keeps state; :class:`samedenhancer.interactive.InteractiveSession` holds the click
history and calls these. Two families of correction, chosen per model by its manifest
(:func:`correction_for`):

- ``"prompt"`` (models trained with point prompts: SAM, MedicoSAM, SAM2.1, MedSAM2): MedicoSAM's
  iterative protocol, every click so far as a point prompt (with the starting box, if any) and the
  previous low-resolution logits as the mask prompt; one decoder call per click.
- ``"local"`` (LiteMedSAM, trained with boxes only; its point prompts make masks worse): the
  model's mask is edited only inside a window around the click. A graph cut (Boykov-Kolmogorov
  max-flow, PyMaxflow) on the window decides which pixels take the click's label; its data term is
  the model's probability (sigmoid of the start's logits) pulled towards the click's label near the
  click, its smoothness term follows the image's edges. A positive click only adds pixels connected
  to it, a negative click only removes them; no decoder call. Two cases are not edits of the
  object: where the start may have found the wrong object (a mask or point start, not a box), a
  negative click deep inside a component no positive click holds removes that component
  (:func:`delete_component`); a positive click on an empty mask asks the model with boxes around
  the click (:func:`segment_around_click`, one decoder call).

References
----------
Archit et al., "Segment Anything for Microscopy" (micro-sam), Nat. Methods 22, 579 (2025), and
Archit et al., "MedicoSAM: Towards foundation models for medical image segmentation",
arXiv:2501.11734 (2025): the prompt functions and the iterative protocol. Boykov & Jolly,
"Interactive graph cuts for optimal boundary & region segmentation", ICCV 2001,
doi:10.1109/ICCV.2001.937505: the local correction's energy. Boykov & Kolmogorov, IEEE TPAMI 26,
1124 (2004), doi:10.1109/TPAMI.2004.60: the max-flow algorithm PyMaxflow implements.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

__all__ = [
    "LocalOptions",
    "Segmentation",
    "correct_by_prompts",
    "correct_locally",
    "correction_for",
    "delete_component",
    "guide_image",
    "mask_to_low_res",
    "segment_from_box",
    "segment_from_mask",
    "segment_from_points",
    "segment_around_click",
]


class Segmentation(NamedTuple):
    """A mask with the model output it came from.

    mask : (H, W) bool, native resolution
    logits : (H, W) float32, native resolution (the model's logits the mask is read from)
    low_res : (1, 1, h, w) float32, the decoder's logits in the model frame (the next mask prompt)
    """

    mask: np.ndarray
    logits: np.ndarray
    low_res: np.ndarray


class LocalOptions(NamedTuple):
    """Constants of :func:`correct_locally` and of the click handling around it, fixed on the
    interactive benchmark's images (``benchmarks/INTERACTIVE.md``, where their effect is measured).

    window : float
        Half-side of the edit window as a multiple of the click's distance to the mask's boundary.
    min_window, max_window : int
        Bounds of that half-side in pixels (``max_window`` is also capped at half the image's
        longer side).
    grid : int
        Longest side of the grid the graph cut runs on (the window is resampled to it).
    smoothness : float
        Weight of the image-edge term against the data term.
    click_radius : float
        Radius (in units of the click's distance to the boundary) within which the data term is
        pulled to the click's label, falling off as a Gaussian.
    reach, min_reach : float
        The change stays within ``reach`` x the click's distance to the boundary (at least
        ``min_reach`` pixels) from the click: the small floor keeps a click on a thin sliver of
        error from flipping a disc around it.
    max_removal, fallback_reach : float
        A negative click that would remove more than ``max_removal`` of the mask keeps only its
        part within ``fallback_reach`` x the distance: a click edits an object, it does not delete
        it (a ring's box answer is often its cavity with a rim of the ring).
    max_depth_fraction : float
        A positive click's distance to the mask counts as at most this fraction of the mask's
        equivalent radius, sqrt(area / pi): a click on a missed part far from the mask would
        otherwise size its window, pull and reach by that distance and flood the background.
    delete_depth : float
        In a session not started from a box, a negative click at least this fraction of its
        component's equivalent radius deep, on a component no positive click lies in, removes the
        whole component (:func:`delete_component`): the start found the wrong object.
    empty_box_sides : tuple of float
        A positive click on an empty mask is answered by box decodes around it, these fractions of
        the image's shorter side wide (:func:`segment_around_click`), the one with the best
        predicted IoU among those that hold the click: a box-trained model asked as it was trained.
    """

    window: float = 3.0
    min_window: int = 12
    max_window: int = 160
    grid: int = 64
    smoothness: float = 2.0
    click_radius: float = 1.0
    reach: float = 2.0
    min_reach: float = 3.0
    max_removal: float = 0.5
    fallback_reach: float = 1.0
    max_depth_fraction: float = 0.5
    delete_depth: float = 0.7
    empty_box_sides: tuple = (0.1, 0.2, 0.35)


def _decode(predictor, embedding, mask_input=None, **prompts) -> Segmentation:
    if mask_input is not None:
        prompts["mask_input"] = mask_input
    low_res, _ = predictor.decode(embedding, **prompts)
    low_res = np.ascontiguousarray(low_res[:1, :1], np.float32)
    logits = predictor.upscale(embedding, low_res)[0, 0]
    return Segmentation(logits > 0, logits, low_res)


def segment_from_box(predictor, embedding, box) -> Segmentation:
    """The model's mask for one XYXY box (native pixels): one decoder call."""
    return _decode(predictor, embedding, box=np.asarray(box, np.float64).reshape(1, 4))


def segment_from_points(predictor, embedding, points, labels, box=None, mask_input=None) -> Segmentation:
    """The model's mask for ``points`` ((P, 2) x, y native pixels) with ``labels`` ((P,) 1/0), an
    optional box and an optional mask prompt ``mask_input`` ((1, 1, h, w) low-res logits): one
    decoder call."""
    points = np.asarray(points, np.float64).reshape(1, -1, 2)
    labels = np.asarray(labels).reshape(1, -1)
    boxes = None if box is None else np.asarray(box, np.float64).reshape(1, 4)
    return _decode(predictor, embedding, mask_input, point_coords=points, point_labels=labels, box=boxes)


def mask_to_low_res(mask: np.ndarray, predictor, embedding) -> np.ndarray:
    """A native bool mask as (1, 1, h, w) low-res logits in the model frame (+10 inside, -10
    outside, zero padding as SAM's), the form a mask prompt takes (micro-sam's
    ``_compute_logits_from_mask``)."""
    size = int(predictor.manifest.raw["decoder"]["outputs"]["low_res_masks"][-1])
    factor = size / predictor.manifest.input_size
    valid_h, valid_w = (max(1, int(round(v * factor))) for v in embedding.valid_size)
    small = cv2.resize(mask.astype(np.float32), (valid_w, valid_h), interpolation=cv2.INTER_AREA)
    out = np.full((1, 1, size, size), -10.0, np.float32)
    out[0, 0, :valid_h, :valid_w] = np.where(small > 0.5, 10.0, -10.0)
    return out


def segment_from_mask(predictor, embedding, mask: np.ndarray) -> Segmentation:
    """Keep ``mask`` as it is; the logits are the model's box decode of its bounding box (one
    decoder call), overruled by the mask where the two disagree, so that reading the logits at 0
    gives the mask back."""
    mask = np.asarray(mask, bool)
    ys, xs = np.nonzero(mask)
    if ys.size:
        decoded = segment_from_box(predictor, embedding, [xs.min(), ys.min(), xs.max(), ys.max()])
        logits = decoded.logits.copy()
    else:
        logits = np.full(mask.shape, -10.0, np.float32)
    disagree = (logits > 0) != mask
    logits[disagree] = np.where(mask[disagree], 0.5, -0.5)
    return Segmentation(mask.copy(), logits, mask_to_low_res(mask, predictor, embedding))


def correct_by_prompts(predictor, embedding, clicks, previous: Segmentation, box=None) -> Segmentation:
    """MedicoSAM's correction: all ``clicks`` ((x, y, positive) tuples) as points, the starting
    ``box`` if any, and ``previous.low_res`` as the mask prompt (when the model's decoder takes one);
    one decoder call."""
    points = np.array([(x, y) for x, y, _ in clicks], np.float64)
    labels = np.array([1 if positive else 0 for _, _, positive in clicks])
    # a decoder graph without the mask path (exports before mask prompts) gets the points alone
    mask_input = previous.low_res if "mask_input" in predictor.manifest.raw["decoder"]["inputs"] else None
    return segment_from_points(predictor, embedding, points, labels, box=box, mask_input=mask_input)


def correction_for(manifest) -> str:
    """``"prompt"`` for a model trained with point prompts, else ``"local"`` (see the module
    docstring); the manifest's optional ``interactive.correction`` field overrides."""
    chosen = (manifest.raw.get("interactive") or {}).get("correction") if isinstance(manifest.raw, dict) else None
    if chosen is not None:
        if chosen not in ("prompt", "local"):
            raise ValueError(f"manifest interactive.correction must be 'prompt' or 'local', got {chosen!r}")
        return chosen
    return "prompt" if "point" in tuple(manifest.trained_prompts) else "local"


def guide_image(image: np.ndarray) -> np.ndarray:
    """The image the local correction follows: grey float32 in [0, 1] (colour averaged), H x W."""
    grey = image.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    low, high = float(grey.min()), float(grey.max())
    return (grey - low) / max(high - low, 1e-6)


def _distance_to(mask: np.ndarray, x: int, y: int, limit: int) -> float:
    """Distance from (x, y) to the nearest True pixel of ``mask`` within ``limit`` pixels
    (``limit`` if there is none)."""
    h, w = mask.shape
    x0, x1, y0, y1 = max(0, x - limit), min(w, x + limit + 1), max(0, y - limit), min(h, y + limit + 1)
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    if ys.size == 0:
        return float(limit)
    return float(np.sqrt(((xs + x0 - x) ** 2 + (ys + y0 - y) ** 2).min()))


def correct_locally(guide: np.ndarray, current: Segmentation, x: int, y: int, positive: bool,
                    options: LocalOptions = LocalOptions(), fixed: np.ndarray | None = None) -> Segmentation:
    """Give the click's label to the region around it that the model and the image agree on.

    Parameters
    ----------
    guide : (H, W) float32
        :func:`guide_image` of the image.
    current : Segmentation
        The mask now and the logits it was read from.
    x, y : int
        The click, native pixels.
    positive : bool
        Whether the click adds (``True``) or removes pixels.
    options : LocalOptions
    fixed : (H, W) int8, optional
        Labels earlier clicks fixed (1 foreground, -1 background, 0 free): kept as they are.

    Returns
    -------
    Segmentation
        The new mask (changed only inside the window, only towards the click's label, only in the
        part connected to the click) and logits (set to +/-1 where the mask changed).
    """
    mask, logits = current.mask, current.logits
    wrong = ~mask if positive else mask
    if not wrong[y, x]:
        return current  # the click already has its label
    depth, (x0, y0, x1, y1) = _edit_window(mask, wrong, x, y, positive, options)
    take = _graph_cut(guide, logits, wrong, (x0, y0, x1, y1), x, y, positive, depth, options)
    region = take & wrong[y0:y1, x0:x1]
    if fixed is not None:
        region &= fixed[y0:y1, x0:x1] == 0
    region[y - y0, x - x0] = True
    yy, xx = np.ogrid[y0 - y : y1 - y, x0 - x : x1 - x]

    def within(reach: float) -> np.ndarray:
        """The part of the candidates within ``reach`` x depth of the click, connected to it."""
        radius = max(reach * depth, options.min_reach)
        near = region & ((xx * xx + yy * yy) <= radius * radius)
        _, comp = cv2.connectedComponents(near.astype(np.uint8), connectivity=4)
        return comp == comp[y - y0, x - x0]

    change = within(options.reach)
    if not positive and change.sum() > options.max_removal * mask.sum():
        change = within(options.fallback_reach)
    new_mask = mask.copy()
    new_logits = logits.copy()
    new_mask[y0:y1, x0:x1][change] = positive
    new_logits[y0:y1, x0:x1][change] = 1.0 if positive else -1.0
    return Segmentation(new_mask, new_logits, current.low_res)


def _edit_window(mask: np.ndarray, wrong: np.ndarray, x: int, y: int, positive: bool,
                 options: LocalOptions) -> tuple[float, tuple]:
    """The click's depth (its distance to where the label is already right, capped) and the edit
    window ``(x0, y0, x1, y1)`` (exclusive ends) around it."""
    h, w = mask.shape
    cap = int(min(options.max_window, max(h, w) // 2 + 1))
    depth = _distance_to(~wrong, x, y, cap)
    if positive and mask.any():
        depth = min(depth, max(1.0, options.max_depth_fraction * float(np.sqrt(mask.sum() / np.pi))))
    half = int(np.clip(options.window * depth, options.min_window, cap))
    return depth, (max(0, x - half), max(0, y - half), min(w, x + half + 1), min(h, y + half + 1))


def _graph_cut(guide: np.ndarray, logits: np.ndarray, wrong: np.ndarray, window: tuple, x: int, y: int,
               positive: bool, depth: float, options: LocalOptions) -> np.ndarray:
    """The window's pixels the graph cut gives the click's label (bool, the window's size): data
    term the model's probability pulled to the click's label near the click, smoothness term the
    image's edges, the window's border kept as it is."""
    import maxflow

    x0, y0, x1, y1 = window
    win_w, win_h = x1 - x0, y1 - y0
    factor = min(1.0, options.grid / max(win_w, win_h))
    gw, gh = max(2, int(round(win_w * factor))), max(2, int(round(win_h * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    grey = cv2.resize(guide[y0:y1, x0:x1], (gw, gh), interpolation=interp)
    prob = cv2.resize(1.0 / (1.0 + np.exp(-np.clip(logits[y0:y1, x0:x1], -30, 30))), (gw, gh), interpolation=interp)
    if not positive:
        prob = 1.0 - prob  # probability of the click's label
    # pull towards the click's label near the click (Gaussian of radius click_radius * depth)
    cx, cy = (x - x0 + 0.5) * gw / win_w - 0.5, (y - y0 + 0.5) * gh / win_h - 0.5
    sigma = max(1.0, options.click_radius * depth * factor)
    gx, gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
    pull = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * sigma**2))
    prob = np.clip(prob + (1 - prob) * pull, 1e-3, 1 - 1e-3)
    source = -np.log(1 - prob)  # cost of NOT taking the click's label
    sink = -np.log(prob)  # cost of taking it
    # pixels on the window's border keep their label (the edit stays local)
    keep_src = np.zeros((gh, gw), bool)
    border = np.zeros((gh, gw), bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    small_wrong = cv2.resize(wrong[y0:y1, x0:x1].astype(np.uint8), (gw, gh), interpolation=cv2.INTER_NEAREST) > 0
    big = 1e6
    sink = np.where(border & small_wrong, big, sink)
    ci, cj = int(np.clip(round(cy), 0, gh - 1)), int(np.clip(round(cx), 0, gw - 1))
    keep_src[ci, cj] = True
    source = np.where(keep_src, big, source)
    # smoothness: Potts weight exp(-(dI)^2 / (2 var)) between 4-neighbours
    var = max(float(np.var(grey)), 1e-4)
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes((gh, gw))
    right = np.zeros((gh, gw), np.float64)
    right[:, :-1] = options.smoothness * np.exp(-((grey[:, 1:] - grey[:, :-1]) ** 2) / (2 * var))
    down = np.zeros((gh, gw), np.float64)
    down[:-1, :] = options.smoothness * np.exp(-((grey[1:, :] - grey[:-1, :]) ** 2) / (2 * var))
    graph.add_grid_edges(nodes, weights=right, structure=np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]]), symmetric=True)
    graph.add_grid_edges(nodes, weights=down, structure=np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]]), symmetric=True)
    graph.add_grid_tedges(nodes, source, sink)
    graph.maxflow()
    take = ~graph.get_grid_segments(nodes)  # True: source side = the click's label
    return cv2.resize(take.astype(np.uint8), (win_w, win_h), interpolation=cv2.INTER_NEAREST) > 0


def delete_component(current: Segmentation, x: int, y: int, options: LocalOptions = LocalOptions(),
                     fixed: np.ndarray | None = None) -> Segmentation | None:
    """The mask without the connected component (8-connected) the negative click ``(x, y)`` lies
    in, when the click is at least ``options.delete_depth`` x the component's equivalent radius
    sqrt(area / pi) deep inside it and no pixel a positive click fixed lies in it; else ``None``
    (correct locally instead). The session calls it only when it did not start from a box: a box
    says where the object is, a mask or a point may have found the wrong one."""
    mask = current.mask
    if not mask[y, x]:
        return None
    _, comp = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    region = comp == comp[y, x]
    depth = cv2.distanceTransform(np.pad(region.view(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1][y, x]
    if depth < options.delete_depth * np.sqrt(region.sum() / np.pi):
        return None
    if fixed is not None and (fixed[region] == 1).any():
        return None
    logits = current.logits.copy()
    logits[region] = -1.0
    return Segmentation(mask & ~region, logits, current.low_res)


def segment_around_click(predictor, embedding, x: int, y: int, current: Segmentation,
                         options: LocalOptions = LocalOptions(), fixed: np.ndarray | None = None) -> Segmentation | None:
    """The object at a positive click on an empty mask: boxes centred on ``(x, y)``,
    ``options.empty_box_sides`` of the image's shorter side wide, in one decoder call; of the masks
    that hold the click, the one with the best predicted IoU gives its component at the click
    (pixels a negative click fixed excluded). ``None`` when no mask holds the click."""
    h, w = current.mask.shape
    side = min(h, w)
    boxes = np.array([[x - f * side / 2, y - f * side / 2, x + f * side / 2, y + f * side / 2] for f in options.empty_box_sides],
                     np.float64)
    boxes = np.clip(boxes, 0, [w - 1, h - 1, w - 1, h - 1])
    low, iou = predictor.decode(embedding, box=boxes)
    logits = predictor.upscale(embedding, np.ascontiguousarray(low[:, :1], np.float32))[:, 0]
    holding = [i for i in range(len(boxes)) if logits[i][y, x] > 0]
    if not holding:
        return None
    best = max(holding, key=lambda i: float(iou[i, 0]))
    found = logits[best] > 0
    _, comp = cv2.connectedComponents(found.view(np.uint8), connectivity=8)
    add = comp == comp[y, x]
    if fixed is not None:
        add &= fixed != -1
    add[y, x] = True
    new_logits = current.logits.copy()
    new_logits[add] = np.maximum(logits[best][add], 1e-3)
    return Segmentation(current.mask | add, new_logits, current.low_res)
