"""A SAM2-style predictor on the exported engines: ``set_image`` then ``predict`` with batched
prompts, and the lower-level ``encode`` / ``decode`` / ``upscale`` the Enhancer and streaming use.

Everything runs in numpy and the engines (ONNX Runtime or TensorRT); torch is never imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from .engines import LoadedModel, Manifest, load_model
from .engines.manifest import DEFAULT_MODEL

__all__ = ["ImageEmbedding", "Prediction", "Predictor", "PreparedImage", "check_image", "preprocess", "resize_bilinear"]


@dataclass(frozen=True)
class ImageEmbedding:
    """The encoder's output for one image, with what is needed to map prompts in and logits out.

    Attributes
    ----------
    features : tuple
        Encoder outputs in manifest order (read-only float32 numpy arrays, or device ``OrtValue``
        objects on a GPU).
    original_size : tuple of int
        ``(H, W)`` of the native image.
    scale : tuple of float
        ``(sx, sy)``: model-frame coordinate = native pixel coordinate x ``scale``.
    valid_size : tuple of int
        ``(h, w)`` of the image inside the model input (the rest is padding).
    model : str
        Name of the model that made it (an embedding only fits that model's decoder).
    """

    features: tuple
    original_size: tuple
    scale: tuple
    valid_size: tuple
    model: str


class PreparedImage(NamedTuple):
    """An image turned into the model input (``Predictor.prepare``), not yet encoded.

    tensor : (1, 3, S, S) float32
    scale : (sx, sy), model-frame coordinate = native pixel coordinate x scale
    valid_size : (h, w) of the image inside the model input
    original_size : (H, W) of the native image
    """

    tensor: np.ndarray
    scale: tuple
    valid_size: tuple
    original_size: tuple


class Prediction(NamedTuple):
    """``Predictor.predict`` result (unpacks as SAM2's ``masks, iou_predictions, low_res_logits``).

    masks : (N, C, H, W) bool, or float32 logits with ``return_logits=True``
    iou_predictions : (N, C) float32
    low_res_logits : (N, C, h, w) float32 (the decoder's output in the model frame)
    """

    masks: np.ndarray
    iou_predictions: np.ndarray
    low_res_logits: np.ndarray


def check_image(image) -> None:
    """Raise ``TypeError``/``ValueError`` naming the problem unless ``image`` is a finite H x W,
    H x W x 1 or H x W x 3 integer or float array with at least one pixel."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
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

    Notes
    -----
    ``longest_side`` (LiteMedSAM's upstream recipe): grey to 3 channels, longest side to S with
    ``cv2.INTER_AREA`` in the image's own dtype (uint8 stays uint8), per-image min-max to [0, 1]
    (a constant image becomes zeros), zero padding at the bottom/right. ``square`` (SAM2): uint8 /
    255, other types min-max to [0, 1], stretched to S x S (area when shrinking, bilinear when
    enlarging), then ``(x - mean) / std``.
    """
    image = _as_image(image)
    height, width = image.shape[:2]
    size = manifest.input_size
    if manifest.resize == "longest_side":
        factor = size / max(height, width)
        new_h, new_w = int(height * factor + 0.5), int(width * factor + 0.5)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        resized = _minmax(resized)
        tensor = np.zeros((size, size, 3), np.float32)
        tensor[:new_h, :new_w] = resized
        scale, valid = (factor, factor), (new_h, new_w)
    else:
        unit = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else _minmax(image)
        shrink = size <= height and size <= width
        interpolation = cv2.INTER_AREA if (manifest.interpolation == "area" or shrink) else cv2.INTER_LINEAR
        tensor = cv2.resize(unit, (size, size), interpolation=interpolation)
        tensor = (tensor - np.asarray(manifest.mean, np.float32)) / np.asarray(manifest.std, np.float32)
        scale, valid = (size / width, size / height), (size, size)
    return np.ascontiguousarray(tensor.transpose(2, 0, 1)[None], dtype=np.float32), scale, valid


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


class Predictor:
    """SAM2-style predictor for the exported models.

    Parameters
    ----------
    model : str or path
        ``"litemedsam"`` (default; exported on first use when torch is available), ``"medsam2"``,
        ``"sam2.1_hiera_tiny"``, or a folder made by ``samedenhancer.export.export``.
    providers : str or list, optional
        ONNX Runtime execution providers (default CPU only; ``"cuda"``, ``"tensorrt"`` or explicit
        names); must be ``None`` for a TensorRT export.
    intra_op_threads : int, optional
        ONNX Runtime threads per operator.

    Attributes
    ----------
    manifest : Manifest
        ``name``, ``input_size``, ``default_policy``, ``trained_prompts``, ...

    References
    ----------
    Ravi et al., "SAM 2: Segment Anything in Images and Videos", arXiv:2408.00714 (2024) (the
    predictor interface); Ma et al., "Segment anything in medical images", Nat. Commun. 15, 654
    (2024) (LiteMedSAM's preprocessing).

    Examples
    --------
    >>> import numpy as np
    >>> from samedenhancer import Predictor
    >>> predictor = Predictor()  # doctest: +SKIP
    >>> image = np.zeros((64, 80), np.uint8); image[20:40, 30:60] = 200
    >>> predictor.set_image(image)  # doctest: +SKIP
    >>> masks, iou, low_res = predictor.predict(box=[28, 18, 61, 41])  # doctest: +SKIP
    >>> masks.shape  # doctest: +SKIP
    (1, 1, 64, 80)
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, providers=None, *, intra_op_threads: int | None = None):
        self._model: LoadedModel = load_model(model, providers, intra_op_threads=intra_op_threads)
        self.manifest: Manifest = self._model.manifest
        self._embedding: ImageEmbedding | None = None
        self._feature_names = self.manifest.encoder_outputs
        self._keep_on_device = bool(getattr(self._model.encoder, "on_gpu", False)) and hasattr(self._model.encoder, "session")

    @property
    def providers(self) -> tuple:
        """Execution providers the decoder runs on."""
        return self._model.decoder.providers

    # -- lower level ---------------------------------------------------------------------------
    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """Run the image encoder on ``image`` ((H, W) or (H, W, 3); uint8, uint16, float).

        Thread-safe: one image can be encoded while another embedding is decoded.
        """
        return self.encode_prepared(self.prepare(image))

    def prepare(self, image: np.ndarray) -> PreparedImage:
        """The preprocessing half of :meth:`encode` (the streaming path times the two apart)."""
        tensor, scale, valid = preprocess(image, self.manifest)
        return PreparedImage(tensor, scale, valid, tuple(np.shape(image)[:2]))

    def encode_prepared(self, prepared: PreparedImage) -> ImageEmbedding:
        """The encoder half of :meth:`encode`, for an image from :meth:`prepare`."""
        tensor, scale, valid, original_size = prepared
        outputs = self._model.encoder.run({"image": tensor}, keep_on_device=self._keep_on_device)
        names = [info.name for info in self._model.encoder.outputs]
        by_name = dict(zip(names, outputs))
        features = []
        for name in self._feature_names:
            value = by_name[name]
            if isinstance(value, np.ndarray):
                value = np.ascontiguousarray(value)
                value.setflags(write=False)
            features.append(value)
        return ImageEmbedding(tuple(features), original_size, scale, valid, self.manifest.name)

    def _prompts(self, embedding: ImageEmbedding, point_coords, point_labels, boxes):
        coords = None if point_coords is None else np.asarray(point_coords, dtype=np.float64)
        labels = None if point_labels is None else np.asarray(point_labels)
        box = None if boxes is None else np.asarray(boxes, dtype=np.float64)
        if coords is None and box is None:
            raise ValueError("give point_coords (with point_labels) and/or a box; got neither")
        if (coords is None) != (labels is None):
            raise ValueError("point_coords and point_labels go together; got only " + ("point_coords" if labels is None else "point_labels"))
        n = None
        if coords is not None:
            if coords.ndim == 2:
                coords = coords[None]
            if coords.ndim != 3 or coords.shape[2] != 2 or coords.shape[1] < 1:
                raise ValueError(f"point_coords must be (P, 2) or (N, P, 2) with P >= 1, got shape {np.shape(point_coords)}")
            if labels.ndim == 1:
                labels = labels[None]
            if labels.shape != coords.shape[:2]:
                raise ValueError(f"point_labels must have shape {coords.shape[:2]} to match point_coords, got {np.shape(point_labels)}")
            if not np.isin(labels, (-1, 0, 1)).all():
                raise ValueError(f"point_labels must be 1 (positive), 0 (negative) or -1 (padding), got {np.unique(labels).tolist()}")
            if not np.isfinite(coords).all():
                raise ValueError("point_coords must be finite")
            n = coords.shape[0]
        if box is not None:
            if box.ndim == 1:
                box = box[None]
            if box.ndim != 2 or box.shape[1] != 4:
                raise ValueError(f"box must be (4,) or (N, 4) XYXY, got shape {np.shape(boxes)}")
            if not np.isfinite(box).all():
                raise ValueError("box must be finite")
            if n is not None and box.shape[0] != n:
                raise ValueError(f"box and point_coords must describe the same number of prompts, got {box.shape[0]} boxes and {n} point sets")
            n = box.shape[0]
        sx, sy = embedding.scale
        factor = np.array([sx, sy])
        parts_c, parts_l = [], []
        if coords is not None:
            parts_c.append(coords * factor)
            parts_l.append(labels.astype(np.float64))
        if box is not None:
            parts_c.append(box.reshape(n, 2, 2) * factor)
            parts_l.append(np.tile([[2.0, 3.0]], (n, 1)))
        if box is None or self.manifest.pad_point == "always":
            parts_c.append(np.zeros((n, 1, 2)))
            parts_l.append(-np.ones((n, 1)))
        return np.concatenate(parts_c, 1).astype(np.float32), np.concatenate(parts_l, 1).astype(np.float32)

    def decode(self, embedding: ImageEmbedding, point_coords=None, point_labels=None, boxes=None,
               multimask_output: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Decode N prompts against ``embedding`` in one decoder call.

        Parameters
        ----------
        embedding : ImageEmbedding
        point_coords : (N, P, 2) or (P, 2) array, optional
            ``x, y`` in native pixels.
        point_labels : (N, P) or (P,) array, optional
            1 positive, 0 negative, -1 padding (ignored by the decoder).
        boxes : (N, 4) or (4,) array, optional
            XYXY in native pixels.
        multimask_output : bool
            Three masks per prompt instead of one.

        Returns
        -------
        low_res_logits : (N, C, h, w) float32
            ``C`` = 3 with ``multimask_output`` else 1; in the model frame (see ``upscale``).
        iou_predictions : (N, C) float32
        """
        if not isinstance(embedding, ImageEmbedding):
            raise TypeError(f"embedding must be an ImageEmbedding (from encode), got {type(embedding).__name__}")
        if embedding.model != self.manifest.name:
            raise ValueError(f"embedding was made by {embedding.model!r}, this predictor runs {self.manifest.name!r}")
        coords, labels = self._prompts(embedding, point_coords, point_labels, boxes)
        decoder = self._model.decoder
        step = decoder.max_prompts or len(coords)
        names = [o.name for o in decoder.outputs]
        masks, iou = [], []
        for start in range(0, len(coords), step):
            feeds = dict(zip(self._feature_names, embedding.features))
            feeds["point_coords"], feeds["point_labels"] = coords[start : start + step], labels[start : start + step]
            by_name = dict(zip(names, decoder.run(feeds)))
            masks.append(np.asarray(by_name["low_res_masks"], np.float32))
            iou.append(np.asarray(by_name["iou_predictions"], np.float32))
        masks = masks[0] if len(masks) == 1 else np.concatenate(masks)
        iou = iou[0] if len(iou) == 1 else np.concatenate(iou)
        return self._select(masks, iou, multimask_output)

    def _select(self, masks: np.ndarray, iou: np.ndarray, multimask_output: bool):
        m = self.manifest
        if multimask_output:
            start, stop = m.multimask_tokens
            return np.ascontiguousarray(masks[:, start:stop]), np.ascontiguousarray(iou[:, start:stop])
        single, single_iou = masks[:, m.single_mask_token : m.single_mask_token + 1], iou[:, m.single_mask_token : m.single_mask_token + 1]
        if m.stability_delta is None:
            return np.ascontiguousarray(single), np.ascontiguousarray(single_iou)
        # SAM2's dynamic fallback: an unstable single mask is replaced by the best multimask output.
        start, stop = m.multimask_tokens
        best = start + np.argmax(iou[:, start:stop], axis=1)
        rows = np.arange(masks.shape[0])
        flat = single.reshape(single.shape[0], -1)
        inter = (flat > m.stability_delta).sum(1).astype(np.float32)
        union = (flat > -m.stability_delta).sum(1).astype(np.float32)
        stability = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        stable = stability >= m.stability_threshold
        out = np.where(stable[:, None, None, None], single, masks[rows, best][:, None])
        out_iou = np.where(stable[:, None], single_iou, iou[rows, best][:, None])
        return out.astype(np.float32), out_iou.astype(np.float32)

    def upscale(self, embedding: ImageEmbedding, low_res_logits: np.ndarray, roi=None) -> np.ndarray:
        """Low-resolution logits -> float32 logits at the native resolution.

        The padding is cropped, then the valid part is resized bilinearly (``align_corners=False``)
        to ``embedding.original_size``. With ``roi = (x0, y0, x1, y1)`` (inclusive, native pixels)
        only that window is computed and returned: shape ``(..., y1 - y0 + 1, x1 - x0 + 1)``, equal
        to the same window of the full result.
        """
        logits = np.asarray(low_res_logits, dtype=np.float32)
        if logits.ndim < 2:
            raise ValueError(f"low_res_logits must be (..., h, w), got shape {logits.shape}")
        height, width = embedding.original_size
        factor = logits.shape[-1] / self.manifest.input_size
        valid_h, valid_w = (int(round(v * factor)) for v in embedding.valid_size)
        logits = logits[..., :valid_h, :valid_w]
        if roi is not None:
            roi = tuple(int(v) for v in np.asarray(roi).reshape(-1))
            if len(roi) != 4 or not (0 <= roi[0] <= roi[2] < width and 0 <= roi[1] <= roi[3] < height):
                raise ValueError(f"roi must be (x0, y0, x1, y1) inside the {width}x{height} image with x0 <= x1, y0 <= y1, got {roi}")
        return resize_bilinear(logits, (height, width), roi)

    # -- SAM2-style ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` ((H, W) grey or (H, W, 3) RGB; uint8, uint16 or float) for ``predict``."""
        self._embedding = self.encode(image)

    def reset_image(self) -> None:
        self._embedding = None

    @property
    def embedding(self) -> ImageEmbedding | None:
        """The embedding of the image given to ``set_image`` (``None`` before)."""
        return self._embedding

    def predict(self, point_coords=None, point_labels=None, box=None, multimask_output: bool = False,
                return_logits: bool = False) -> Prediction:
        """Masks for N prompts (N boxes and/or N point sets) at the native resolution, one decoder call.

        Returns ``Prediction(masks (N, C, H, W) bool or float32 logits, iou_predictions (N, C),
        low_res_logits (N, C, h, w))``; masks are ``logits > 0``.
        """
        if self._embedding is None:
            raise RuntimeError("call set_image(image) before predict(): no image has been set")
        low_res, iou = self.decode(self._embedding, point_coords, point_labels, box, multimask_output)
        logits = self.upscale(self._embedding, low_res)
        masks = logits if return_logits else logits > 0
        return Prediction(masks, iou, low_res)
