"""The interactive session: one image, one encode, a start and a history of clicks with undo.

The state lives here; every mask comes from a plain function of
:mod:`samedenhancer.interactive.mechanisms`.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..embeddings import EmbeddingStore
from ..predictor import ImageEmbedding, Predictor, as_predictor
from ..transforms import check_image
from ..validation import choice, coordinates, finite_array, flag, instance, pixel
from . import mechanisms as mech

__all__ = ["InteractiveSession"]


class _Step(NamedTuple):
    segmentation: mech.Segmentation
    clicks: tuple  # ((x, y, positive), ...) up to this step
    fixed: np.ndarray | None  # int8 labels the clicks fixed (local correction only)


class InteractiveSession:
    """Segment one object of one image from a start, then correct it click by click.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array
        Grey or RGB; uint8, uint16 or float. Encoded once, here.
    model : str, path or Predictor
        Any :class:`samedenhancer.Predictor` model name or export folder (default LiteMedSAM), or a
        ready predictor (reused, not copied).
    correction : {"local", "prompt"}, optional
        How a click corrects the mask (see :mod:`samedenhancer.interactive.mechanisms`); default:
        what the model's manifest says (``mechanisms.correction_for``): ``"prompt"`` (MedicoSAM's
        protocol) for point-trained models, ``"local"`` for LiteMedSAM.
    embedding : ImageEmbedding, optional
        The image's embedding if it is already encoded by this model (then nothing is encoded).
    embeddings : EmbeddingStore, optional
        Read the image's embedding from this store (or encode and store it): reopening an image
        costs no encoder call.

    Attributes
    ----------
    predictor : Predictor
    correction : str
    encodes : int
        How many times this session ran the encoder (0 or 1).

    Examples
    --------
    >>> from samedenhancer import InteractiveSession, data
    >>> session = InteractiveSession(data.fundus().image)      # encodes the image once
    >>> mask = session.start(box=[98, 109, 247, 278])          # the optic disc's box
    >>> mask.shape, mask.dtype
    ((384, 384), dtype('bool'))
    >>> corrected = session.click(172, 193, positive=False)    # remove what lies around the click
    >>> session.clicks
    ((172, 193, False),)
    >>> bool((session.undo() == mask).all()), session.clicks, session.encodes
    (True, (), 1)
    """

    def __init__(self, image: np.ndarray, model: str | os.PathLike | Predictor = "litemedsam", *,
                 correction: str | None = None, embedding: ImageEmbedding | None = None,
                 local_options: mech.LocalOptions = mech.LocalOptions(),
                 embeddings: EmbeddingStore | None = None) -> None:
        check_image(image)
        self.predictor = as_predictor(model, needs=("encode", "decode", "upscale", "manifest"), embeddings=embeddings)
        if correction is None:
            correction = mech.correction_for(self.predictor.manifest)
        choice(correction, "correction", ("local", "prompt"))
        instance(local_options, "local_options", mech.LocalOptions, "a samedenhancer.interactive.mechanisms.LocalOptions")
        self.correction = correction
        self.local_options = local_options
        self.size = tuple(image.shape[:2])
        self.encodes = 0
        if embedding is None:
            embedding = self.predictor.encode(image)
            self.encodes = 1
        else:
            instance(embedding, "embedding", ImageEmbedding, "a samedenhancer.ImageEmbedding or None")
            if tuple(embedding.original_size) != self.size:
                raise ValueError(f"embedding is of a {embedding.original_size} image, image is {self.size}")
        self.embedding = embedding
        self._guide = mech.guide_image(image) if correction == "local" else None
        self._box = None
        self._history: list[_Step] = []

    # -- state -------------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current mask, (H, W) bool (a copy)."""
        return self._current().segmentation.mask.copy()

    @property
    def clicks(self) -> tuple:
        """The clicks so far, ``((x, y, positive), ...)`` in order (undone ones removed)."""
        return self._history[-1].clicks if self._history else ()

    def _current(self) -> _Step:
        if not self._history:
            raise RuntimeError("call start(box=, point= or mask=) first: the session has no mask yet")
        return self._history[-1]

    # -- actions -----------------------------------------------------------------------------
    def start(self, *, box=None, point=None, mask=None) -> np.ndarray:
        """Begin (or begin again, clearing the clicks) from exactly one of a box ``[x0, y0, x1, y1]``
        (inclusive native pixels), a positive point ``(x, y)`` or a mask ((H, W), nonzero =
        object, e.g. a refined coarse mask). Returns the mask, (H, W) bool."""
        given = [name for name, value in (("box", box), ("point", point), ("mask", mask)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"start takes exactly one of box=, point=, mask=; got {given or 'none'}")
        start_box = None
        if box is not None:
            values = coordinates(box, "box", self.size, inside=True)
            if values.shape != (4,):
                raise ValueError(f"box must be [x0, y0, x1, y1] (4 numbers), got shape {values.shape}")
            x0, y0, x1, y1 = values
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"box must have x0 < x1 and y0 < y1, got {values.tolist()}")
            start_box = values
            segmentation = mech.segment_from_box(self.predictor, self.embedding, values)
            clicks: tuple = ()
        elif point is not None:
            x, y = pixel(point, "point", self.size)
            segmentation = mech.segment_from_points(self.predictor, self.embedding, [(x, y)], [1])
            clicks = ((x, y, True),)
        else:
            mask = finite_array(mask, "mask")
            if mask.shape != self.size:
                raise ValueError(f"mask must have the image's shape {self.size}, got {mask.shape}")
            segmentation = mech.segment_from_mask(self.predictor, self.embedding, mask != 0)
            clicks = ()
        fixed = None
        if self.correction == "local":
            fixed = np.zeros(self.size, np.int8)
            for x, y, positive in clicks:
                fixed[y, x] = 1 if positive else -1
        self._box, self._history = start_box, [_Step(segmentation, clicks, fixed)]
        return segmentation.mask.copy()

    def click(self, x, y, positive: bool = True) -> np.ndarray:
        """One correction at pixel ``(x, y)``: ``positive=True`` adds the object there, ``False``
        removes it. Never runs the encoder. Returns the new mask, (H, W) bool."""
        step = self._current()
        x, y = pixel((x, y), "click", self.size)
        positive = flag(positive, "positive")
        clicks = step.clicks + ((x, y, positive),)
        if self.correction == "prompt":
            segmentation = mech.correct_by_prompts(self.predictor, self.embedding, clicks, step.segmentation, self._box)
            fixed = None
        else:
            segmentation = None
            if not positive and self._box is None:
                segmentation = mech.delete_component(step.segmentation, x, y, self.local_options, step.fixed)
            elif positive and not step.segmentation.mask.any():
                segmentation = mech.segment_around_click(self.predictor, self.embedding, x, y, step.segmentation,
                                                         self.local_options, step.fixed)
            if segmentation is None:
                segmentation = mech.correct_locally(self._guide, step.segmentation, x, y, positive, self.local_options, step.fixed)
            fixed = step.fixed.copy()
            fixed[y, x] = 1 if positive else -1
        self._history.append(_Step(segmentation, clicks, fixed))
        return segmentation.mask.copy()

    def undo(self) -> np.ndarray:
        """Take back the last click; returns the mask before it. Undoing past the start is a
        ``RuntimeError``."""
        self._current()
        if len(self._history) == 1:
            raise RuntimeError("nothing to undo: the session is at its start (no clicks)")
        self._history.pop()
        return self._history[-1].segmentation.mask.copy()
