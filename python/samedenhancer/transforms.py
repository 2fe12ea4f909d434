"""The transforms between a native image and a model's frame: preprocessing an image into the
model input (as the manifest says), prompts in native pixels into the decoder's point inputs, and
resizing low-resolution logits back to native pixels.

Pure numpy / OpenCV; no engine, no state.
"""

from __future__ import annotations

import cv2
import numpy as np

from .engines import Manifest
from .validation import coordinates, finite_array, instance

__all__ = ["PREPROCESS_VERSION", "check_image", "logits_window", "preprocess", "prompt_inputs",
           "resize_bilinear"]

#: Version of :func:`preprocess`'s arithmetic: bump it whenever one image and one manifest could give
#: another model input, so that an embedding store never reuses an entry of the older version.
PREPROCESS_VERSION = 1


def check_image(image) -> None:
    """Raise ``TypeError``/``ValueError`` naming the problem unless ``image`` is a finite H x W,
    H x W x 1 or H x W x 3 integer or float array with at least one pixel."""
    instance(image, "image", np.ndarray, "a numpy array")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ValueError(f"image must be H x W (grey) or H x W x 3 (RGB), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must have at least one pixel, got shape {image.shape}")
    if image.dtype == np.bool_ or not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"image dtype must be an integer (uint8, uint16, ...) or float type, got {image.dtype}")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError("image must be finite (it contains NaN or infinity)")


def _as_image(image) -> np.ndarray:
    check_image(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    return np.ascontiguousarray(image)


def _minmax(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    return (image - low) / max(high - low, 1e-8)


def preprocess(image: np.ndarray, manifest: Manifest) -> tuple[np.ndarray, tuple, tuple]:
    """Turn a native image into the model input, per the manifest.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array
        uint8, uint16, any other integer type or float (finite).
    manifest : Manifest

    Returns
    -------
    tensor : (1, 3, S, S) float32
    scale : (sx, sy)
        Native pixel coordinate x scale = model-frame coordinate.
    valid_size : (h, w)
        The image's extent inside the model frame.

    Raises
    ------
    ValueError
        For an image the model cannot take (so elongated that its short side would vanish).

    Notes
    -----
    Grey images are replicated to 3 channels. ``manifest.resize`` says the geometry:
    ``longest_side`` (LiteMedSAM) scales the longest side to S and zero-pads the bottom / right
    after normalisation, ``square`` (SAM2) stretches to S x S; area interpolation when shrinking
    (or always with ``interpolation == "area"``), bilinear when enlarging. ``manifest.normalisation``
    says the intensities (see ``_NORMALISATIONS``): ``minmax`` (LiteMedSAM, MedSAM: resize in the
    image's dtype, then per-image min-max) or ``imagenet`` (SAM2, SAM: to [0, 1], resize,
    ``(x - mean) / std``; SAM's ``pixel_mean`` / ``pixel_std`` on 0..255 are these constants x 255).
    """
    image = _as_image(image)
    height, width = image.shape[:2]
    size = manifest.input_size
    if manifest.resize == "longest_side":
        factor = size / max(height, width)
        new_h, new_w = int(height * factor + 0.5), int(width * factor + 0.5)
        if min(new_h, new_w) < 1:
            raise ValueError(
                f"image of {height}x{width} pixels is too elongated for {manifest.name}: with its longest side at "
                f"{size} px its shortest is {min(height, width) * factor:.2f} px (the model needs an aspect ratio up to "
                f"{2 * size - 1}:1)"
            )
        scale, valid = (factor, factor), (new_h, new_w)
    else:
        new_h = new_w = size
        scale, valid = (size / width, size / height), (size, size)
    shrink = new_h <= height and new_w <= width
    interpolation = cv2.INTER_AREA if (manifest.interpolation == "area" or shrink) else cv2.INTER_LINEAR
    normalise = _NORMALISATIONS[manifest.normalisation]
    tensor = normalise(image, lambda x: cv2.resize(x, (new_w, new_h), interpolation=interpolation), manifest)
    if (new_h, new_w) != (size, size):  # longest side: zero padding at the bottom / right, after normalisation
        padded = np.zeros((size, size, 3), np.float32)
        padded[:new_h, :new_w] = tensor
        tensor = padded
    return np.ascontiguousarray(tensor.transpose(2, 0, 1)[None], dtype=np.float32), scale, valid


def _normalise_minmax(image: np.ndarray, resize, manifest: Manifest) -> np.ndarray:
    """LiteMedSAM's upstream recipe: resize in the image's own dtype (uint8 stays uint8), then
    per-image min-max to [0, 1] (a constant image becomes zeros)."""
    return _minmax(resize(image))


def _normalise_imagenet(image: np.ndarray, resize, manifest: Manifest) -> np.ndarray:
    """SAM2's recipe: to [0, 1] first (uint8 / 255, other types min-max), resize, then
    ``(x - mean) / std`` with the manifest's mean and std."""
    unit = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else _minmax(image)
    return (resize(unit) - np.asarray(manifest.mean, np.float32)) / np.asarray(manifest.std, np.float32)


#: What ``manifest.normalisation`` names: ``f(image, resize, manifest) -> (h, w, 3) float32``.
_NORMALISATIONS = {"minmax": _normalise_minmax, "imagenet": _normalise_imagenet}


def prompt_inputs(point_coords, point_labels, box, size: tuple, scale: tuple, pad_always: bool,
                  mask_count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Prompts in native pixels as a SAM decoder's ``point_coords`` / ``point_labels`` in the model frame.

    Parameters
    ----------
    point_coords : (N, P, 2) or (P, 2) array, optional
        ``x, y`` in native pixels, finite and within one image size of the image.
    point_labels : (N, P) or (P,) array, optional
        1 positive, 0 negative, -1 padding; with ``point_coords`` only.
    box : (N, 4) or (4,) array, optional
        XYXY in native pixels, as the points; appended as two points labelled 2 and 3.
    size : (H, W)
        The native image's size.
    scale : (sx, sy)
        Model-frame coordinate = native pixel coordinate x scale.
    pad_always : bool
        Append SAM's padding point (label -1) even with a box (SAM2's exports); without a box it
        is always appended.
    mask_count : int, optional
        With no point and no box: the number of mask prompts, each given one padding point.

    Returns
    -------
    point_coords : (N, K, 2) float32
    point_labels : (N, K) float32
    """
    if point_coords is None and box is None:
        if mask_count is None:
            raise ValueError("give point_coords (with point_labels) and/or a box, or a mask_input; got none")
        # A mask prompt alone: one padding point per mask (as SAM's ONNX export feeds it).
        return np.zeros((mask_count, 1, 2), np.float32), -np.ones((mask_count, 1), np.float32)
    if (point_coords is None) != (point_labels is None):
        raise ValueError("point_coords and point_labels go together; got only " + ("point_coords" if point_labels is None else "point_labels"))
    size = tuple(size)
    coords, labels = (None, None) if point_coords is None else _check_points(point_coords, point_labels, size)
    boxes = None if box is None else _check_boxes(box, size)
    if coords is not None and boxes is not None and len(boxes) != len(coords):
        raise ValueError(f"box and point_coords must describe the same number of prompts, got {len(boxes)} boxes and {len(coords)} point sets")
    n = len(coords) if coords is not None else len(boxes)
    factor = np.array(scale)
    parts_c, parts_l = [], []
    if coords is not None:
        parts_c.append(coords * factor)
        parts_l.append(labels.astype(np.float64))
    if boxes is not None:
        parts_c.append(boxes.reshape(n, 2, 2) * factor)
        parts_l.append(np.tile([[2.0, 3.0]], (n, 1)))
    if boxes is None or pad_always:
        parts_c.append(np.zeros((n, 1, 2)))
        parts_l.append(-np.ones((n, 1)))
    return np.concatenate(parts_c, 1).astype(np.float32), np.concatenate(parts_l, 1).astype(np.float32)


def _check_points(point_coords, point_labels, size: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``point_coords`` as (N, P, 2) float64 native pixels and ``point_labels`` as (N, P)."""
    coords = coordinates(point_coords, "point_coords")
    if coords.ndim == 2:
        coords = coords[None]
    if coords.ndim != 3 or coords.shape[2] != 2 or coords.shape[1] < 1 or coords.shape[0] < 1:
        raise ValueError(f"point_coords must be (P, 2) or (N, P, 2) with P >= 1, got shape {np.shape(point_coords)}")
    coords = coordinates(coords, "point_coords", size)
    labels = finite_array(point_labels, "point_labels")
    if labels.ndim == 1:
        labels = labels[None]
    if labels.shape != coords.shape[:2]:
        raise ValueError(f"point_labels must have shape {coords.shape[:2]} to match point_coords, got {np.shape(point_labels)}")
    if not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError(f"point_labels must be 1 (positive), 0 (negative) or -1 (padding), got {np.unique(labels).tolist()}")
    return coords, labels


def _check_boxes(box, size: tuple) -> np.ndarray:
    """``box`` as (N, 4) float64 XYXY native pixels, x0 <= x1 and y0 <= y1."""
    boxes = coordinates(box, "box")
    if boxes.ndim == 1:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"box must be (4,) or (N, 4) XYXY, got shape {np.shape(box)}")
    if boxes.shape[0] == 0:
        raise ValueError("box must hold at least one box, got an array of shape (0, 4)")
    boxes = coordinates(boxes, "box", size)
    reversed_ = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if reversed_.any():
        raise ValueError(f"box must be XYXY with x0 <= x1 and y0 <= y1, got {boxes[reversed_][0].tolist()}")
    return boxes


def _axis_table(n_in: int, n_out: int, start: int, stop: int):
    """Source indices and weights of bilinear resampling (align_corners=False, as
    ``torch.nn.functional.interpolate``) for output positions ``start..stop-1``."""
    ratio = n_in / n_out
    src = (np.arange(start, stop, dtype=np.float64) + 0.5) * ratio - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, 1.0 - w1, w1


def resize_bilinear(logits: np.ndarray, size: tuple, roi: tuple | None = None) -> np.ndarray:
    """Bilinear resize of ``(..., h, w)`` to ``size = (H, W)`` (``align_corners=False``, no
    antialiasing: the convention of SAM's ``postprocess_masks``), computing only the window
    ``roi = (x0, y0, x1, y1)`` (inclusive, output coordinates) when given.

    Returns ``(..., H, W)`` float32, or ``(..., y1 - y0 + 1, x1 - x0 + 1)`` with ``roi``.

    The full frame goes through ``cv2.resize`` (``INTER_LINEAR`` on float32 is this same
    interpolation, about 10x faster than numpy); a window, whose offset cv2 cannot express, is
    computed in numpy from the same index/weight formula.
    """
    out_h, out_w = size
    in_h, in_w = logits.shape[-2:]
    lead = logits.shape[:-2]
    flat = np.ascontiguousarray(logits, dtype=np.float32).reshape(-1, in_h, in_w)
    if roi is None:
        out = np.empty((flat.shape[0], out_h, out_w), np.float32)
        for i, plane in enumerate(flat):
            out[i] = cv2.resize(plane, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        return out.reshape(*lead, out_h, out_w)
    x0, y0, x1, y1 = roi
    cx0, cx1, cwx0, cwx1 = _axis_table(in_w, out_w, x0, x1 + 1)
    ry0, ry1, rwy0, rwy1 = _axis_table(in_h, out_h, y0, y1 + 1)
    # Columns first, on the source rows the window needs; then rows (contiguous row gathers).
    rows_needed = np.unique(np.concatenate([ry0, ry1]))
    needed = flat[:, rows_needed]
    cols = needed[:, :, cx0] * cwx0 + needed[:, :, cx1] * cwx1
    top, bottom = np.searchsorted(rows_needed, ry0), np.searchsorted(rows_needed, ry1)
    out = cols[:, top] * rwy0[:, None] + cols[:, bottom] * rwy1[:, None]
    return out.reshape(*lead, out.shape[-2], out.shape[-1])


def logits_window(logits: np.ndarray, size: tuple, floor: float = 0.0, include=None) -> tuple:
    """The inclusive native-pixel box ``(x0, y0, x1, y1)`` outside of which the bilinear resize of
    ``logits`` (h, w) to ``size = (H, W)`` is ``<= floor``, grown to contain ``include``.

    A resized pixel is a convex combination of (at most) four source pixels, so it can exceed
    ``floor`` only where one of them does: the window holds the output rows and columns whose
    source rows and columns meet the source's rows and columns above ``floor``. Without any value
    above ``floor`` it is ``include``, or the single pixel (0, 0).
    """
    out_h, out_w = size
    above = logits > floor
    rows, cols = np.flatnonzero(above.any(axis=1)), np.flatnonzero(above.any(axis=0))
    boxes = []
    if len(rows):
        spans = []
        for first, last, n_in, n_out in ((cols[0], cols[-1], logits.shape[1], out_w), (rows[0], rows[-1], logits.shape[0], out_h)):
            i0, i1, _, _ = _axis_table(n_in, n_out, 0, n_out)
            hit = np.flatnonzero((i1 >= first) & (i0 <= last))
            spans.append((int(hit[0]), int(hit[-1])) if len(hit) else None)
        if spans[0] is not None and spans[1] is not None:
            boxes.append((spans[0][0], spans[1][0], spans[0][1], spans[1][1]))
    if include is not None:
        x0, y0, x1, y1 = (int(v) for v in np.asarray(include).reshape(-1))
        boxes.append((max(x0, 0), max(y0, 0), min(x1, out_w - 1), min(y1, out_h - 1)))
    if not boxes:
        return (0, 0, 0, 0)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
