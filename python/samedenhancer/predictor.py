"""A SAM2-style predictor on the exported engines: ``set_image`` then ``predict`` with batched
prompts, and the lower-level ``encode`` / ``decode`` / ``upscale`` the Enhancer and streaming use.

Everything runs in numpy and the engines (ONNX Runtime or TensorRT); torch is never imported.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .embeddings import EmbeddingStore, check_store
from .engines import Manifest
from .engines.manifest import DEFAULT_MODEL
from .registry import LoadedModel, load_model
from .transforms import logits_window, preprocess, prompt_inputs, resize_bilinear
from .validation import finite_array

__all__ = ["ImageEmbedding", "Prediction", "Predictor", "PreparedImage", "as_predictor"]


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
    embeddings : EmbeddingStore, optional
        Look every image up in this store after preprocessing and before the encoder, and store
        what is encoded (see :meth:`with_embeddings` to add one to a ready predictor).

    Attributes
    ----------
    manifest : Manifest
        ``name``, ``input_size``, ``default_policy``, ``trained_prompts``, ...
    embeddings : EmbeddingStore or None

    References
    ----------
    Ravi et al., "SAM 2: Segment Anything in Images and Videos", arXiv:2408.00714 (2024) (the
    predictor interface); Ma et al., "Segment anything in medical images", Nat. Commun. 15, 654
    (2024) (LiteMedSAM's preprocessing).

    Examples
    --------
    >>> from samedenhancer import Predictor, data
    >>> predictor = Predictor()                       # LiteMedSAM, exported on first use
    >>> predictor.set_image(data.fundus().image)      # 384 x 384 RGB, encoded once
    >>> masks, iou, low_res = predictor.predict(box=[98, 109, 247, 278])   # the optic disc's box
    >>> masks.shape, masks.dtype, iou.shape
    ((1, 1, 384, 384), dtype('bool'), (1, 1))
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, providers=None, *, intra_op_threads: int | None = None,
                 embeddings: EmbeddingStore | None = None):
        self._model: LoadedModel = load_model(model, providers, intra_op_threads=intra_op_threads)
        self.manifest: Manifest = self._model.manifest
        self._embedding: ImageEmbedding | None = None
        self._feature_names = self.manifest.encoder_outputs
        self._keep_on_device = bool(getattr(self._model.encoder, "on_gpu", False)) and hasattr(self._model.encoder, "session")
        self._use_store(embeddings)

    def _use_store(self, embeddings: EmbeddingStore | None) -> None:
        check_store(embeddings)
        if embeddings is not None and self.manifest.identity is None:
            raise ValueError(f"{self.manifest.name} records no file hashes to key an embedding store by: re-export it")
        self.embeddings = embeddings

    def with_embeddings(self, embeddings: EmbeddingStore | None) -> "Predictor":
        """This predictor's engines (nothing is loaded again) with the store ``embeddings``
        (``None``: none), as a new predictor with no image set; this one is unchanged."""
        twin = copy.copy(self)
        twin._embedding = None
        twin._use_store(embeddings)
        return twin

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
        """The encoder half of :meth:`encode`, for an image from :meth:`prepare` (read from the
        embedding store instead when it holds the image)."""
        tensor, scale, valid, original_size = prepared
        if self.embeddings is None:
            features = self._run_encoder(tensor)
        else:
            features = self.embeddings.fetch(self.manifest.identity, tensor, lambda: self._run_encoder(tensor))
        return ImageEmbedding(features, original_size, scale, valid, self.manifest.name)

    def _run_encoder(self, tensor: np.ndarray) -> tuple:
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
        return tuple(features)

    def _mask_prompt(self, mask_input):
        """``mask_input`` as the decoder's (M, 1, L, L) float32 ``mask_input`` and (M,) ``has_mask_input``;
        ``None`` becomes one all-zero mask flagged absent."""
        side = self.manifest.low_res_size
        if mask_input is None:
            return np.zeros((1, 1, side, side), np.float32), np.zeros(1, np.float32)
        mask = np.asarray(mask_input)
        if mask.dtype == np.bool_ or mask.dtype.kind not in "iuf":
            raise TypeError(f"mask_input must be float low-resolution logits, got dtype {mask.dtype}")
        if mask.ndim == 2 or (mask.ndim == 3 and mask.shape[0] == 1):
            mask = mask.reshape(1, 1, *mask.shape[-2:])
        if mask.ndim != 4 or mask.shape[1:] != (1, side, side) or mask.shape[0] < 1:
            raise ValueError(
                f"mask_input must be ({side}, {side}), (1, {side}, {side}) or (M, 1, {side}, {side}) low-resolution logits in "
                f"the model frame, got shape {np.shape(mask_input)}"
            )
        mask = finite_array(mask, "mask_input")
        return np.ascontiguousarray(mask, dtype=np.float32), np.ones(mask.shape[0], np.float32)

    def decode(self, embedding: ImageEmbedding, point_coords=None, point_labels=None, box=None, mask_input=None,
               multimask_output: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Decode N prompts against ``embedding`` in one decoder call.

        Parameters
        ----------
        embedding : ImageEmbedding
        point_coords : (N, P, 2) or (P, 2) array, optional
            ``x, y`` in native pixels, finite and within one image size of the image
            (``-W <= x <= 2W - 1``, ``-H <= y <= 2H - 1``).
        point_labels : (N, P) or (P,) array, optional
            1 positive, 0 negative, -1 padding (ignored by the decoder).
        box : (N, 4) or (4,) array, optional
            XYXY in native pixels, within one image size of the image as the points.
        mask_input : (L, L), (1, L, L) or (N or 1, 1, L, L) float array, optional
            Mask prompt: low-resolution logits in the padded model frame, ``L = manifest.low_res_size``
            (typically one channel of a previous ``decode``'s ``low_res_logits``); one mask is shared
            by all N prompts. ``None``: no mask prompt. Alone (no points, no box) it is decoded with
            one padding point, as SAM's ONNX export does. ``manifest.trained_prompts`` says whether
            the model saw mask prompts in training.
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
        mask, has_mask = self._mask_prompt(mask_input)
        coords, labels = prompt_inputs(point_coords, point_labels, box, embedding.original_size, embedding.scale,
                                       self.manifest.pad_point == "always", None if mask_input is None else len(mask))
        if len(mask) not in (1, len(coords)):
            raise ValueError(f"mask_input must hold 1 mask or one per prompt ({len(coords)}), got {len(mask)}")
        decoder = self._model.decoder
        step = decoder.max_prompts or len(coords)
        names = [o.name for o in decoder.outputs]
        masks, iou = [], []
        for start in range(0, len(coords), step):
            feeds = dict(zip(self._feature_names, embedding.features))
            feeds["point_coords"], feeds["point_labels"] = coords[start : start + step], labels[start : start + step]
            rows = slice(None) if len(mask) == 1 else slice(start, start + step)
            feeds["mask_input"], feeds["has_mask_input"] = mask[rows], has_mask[rows]
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

    def _valid(self, embedding: ImageEmbedding, logits: np.ndarray) -> np.ndarray:
        """Low-resolution logits without the padding of the model frame."""
        factor = logits.shape[-1] / self.manifest.input_size
        valid_h, valid_w = (int(round(v * factor)) for v in embedding.valid_size)
        return logits[..., :valid_h, :valid_w]

    def upscale(self, embedding: ImageEmbedding, low_res_logits: np.ndarray) -> np.ndarray:
        """Low-resolution logits ``(..., h, w)`` -> float32 logits at the native resolution.

        The padding is cropped, then the valid part is resized bilinearly (``align_corners=False``)
        to ``embedding.original_size``.
        """
        logits = np.asarray(low_res_logits, dtype=np.float32)
        if logits.ndim < 2:
            raise ValueError(f"low_res_logits must be (..., h, w), got shape {logits.shape}")
        return resize_bilinear(self._valid(embedding, logits), embedding.original_size)

    def upscale_window(self, embedding: ImageEmbedding, low_res_logits: np.ndarray, floor: float = 0.0,
                       include=None) -> tuple[tuple, np.ndarray]:
        """One prompt's native-resolution logits inside the smallest window that holds every pixel
        where they can exceed ``floor`` (and the box ``include``, when given).

        Parameters
        ----------
        embedding : ImageEmbedding
        low_res_logits : (h, w) array
            One mask of :meth:`decode`'s output.
        floor : float
            Outside the window the native logits are ``<= floor``.
        include : (x0, y0, x1, y1), optional
            An inclusive box of native pixels the window must contain.

        Returns
        -------
        window : (x0, y0, x1, y1)
            Inclusive, native pixels.
        logits : (y1 - y0 + 1, x1 - x0 + 1) float32
            Equal to the same window of :meth:`upscale`'s result.
        """
        logits = np.asarray(low_res_logits, dtype=np.float32)
        if logits.ndim != 2:
            raise ValueError(f"low_res_logits must be one (h, w) mask, got shape {logits.shape}")
        logits = self._valid(embedding, logits)
        window = logits_window(logits, embedding.original_size, floor, include)
        return window, resize_bilinear(logits, embedding.original_size, window)

    # -- SAM2-style ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` ((H, W) grey or (H, W, 3) RGB; uint8, uint16 or float) for ``predict``.

        A failed call (a bad image, an engine error) leaves no image set: ``predict`` then raises
        instead of answering for an earlier image.
        """
        self._embedding = None
        self._embedding = self.encode(image)

    def reset_image(self) -> None:
        self._embedding = None

    @property
    def embedding(self) -> ImageEmbedding | None:
        """The embedding of the image given to ``set_image`` (``None`` before)."""
        return self._embedding

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output: bool = False,
                return_logits: bool = False) -> Prediction:
        """Masks for N prompts (N boxes and/or N point sets, optionally a mask prompt) at the native
        resolution, one decoder call.

        ``mask_input`` is a previous prediction's ``low_res_logits`` (one channel; see ``decode``).
        Returns ``Prediction(masks (N, C, H, W) bool or float32 logits, iou_predictions (N, C),
        low_res_logits (N, C, h, w))``; masks are ``logits > 0``.
        """
        if self._embedding is None:
            raise RuntimeError("call set_image(image) before predict(): no image has been set")
        low_res, iou = self.decode(self._embedding, point_coords, point_labels, box, mask_input=mask_input,
                                   multimask_output=multimask_output)
        logits = self.upscale(self._embedding, low_res)
        masks = logits if return_logits else logits > 0
        return Prediction(masks, iou, low_res)


#: What a ready predictor must offer to stand in for a :class:`Predictor` (a test double may).
_PREDICTOR_INTERFACE = ("encode", "decode", "manifest")


def as_predictor(model, *, providers=None, threads: int | None = None, needs: tuple = _PREDICTOR_INTERFACE,
                 embeddings: EmbeddingStore | None = None):
    """The one place where "a model name, an export folder or a ready Predictor" becomes a predictor.

    ``model`` as a name or folder opens a :class:`Predictor` with ``providers``, ``threads``
    (ONNX Runtime threads per operator) and the store ``embeddings``; a ready predictor is returned
    as is (then ``providers`` and ``threads`` must be ``None``: they belong to the engine it already
    has), or with ``embeddings`` as :meth:`Predictor.with_embeddings` gives it. Anything offering
    the methods ``needs`` counts as a predictor. A non-store ``embeddings`` is a ``TypeError``
    before any model is loaded.
    """
    check_store(embeddings)
    if isinstance(model, (str, os.PathLike)):
        return Predictor(model, providers=providers, intra_op_threads=threads, embeddings=embeddings)
    if all(hasattr(model, name) for name in needs):
        if providers is not None or threads is not None:
            raise ValueError("providers and threads cannot be given together with a ready Predictor: they belong to its engine")
        if embeddings is None:
            return model
        if not hasattr(model, "with_embeddings"):
            raise TypeError(f"embeddings= needs a samedenhancer Predictor (with_embeddings); got {type(model).__name__}")
        return model.with_embeddings(embeddings)
    raise TypeError(f"model must be a model name, a model folder or a Predictor, got {type(model).__name__}")
