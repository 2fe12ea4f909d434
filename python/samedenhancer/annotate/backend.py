"""The model behind the page: one Predictor shared by the Enhancer (refine on open), the
interactive sessions (clicks) and the background pass (its embedding store)."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["ModelBackend"]


class ModelBackend:
    """Opens images for :class:`~.workflow.Annotator` with a real model.

    Parameters
    ----------
    model : str, path or Predictor
        Any :class:`samedenhancer.Predictor` model name or exported model folder, or a ready
        Predictor (with its embedding store, ``as_predictor(model, embeddings=store)``).
    threshold : float, optional
        The Enhancer's threshold for soft coarse maps.
    providers : sequence of str, optional
        ONNX Runtime execution providers.
    """

    def __init__(self, model="litemedsam", *, threshold: float | None = None, providers=None) -> None:
        from ..enhancer import Enhancer

        self.enhancer = Enhancer(model, providers=providers, threshold=threshold)
        self.predictor = self.enhancer.predictor
        #: The predictor's :class:`samedenhancer.EmbeddingStore` (``None``: none).
        self.embeddings = getattr(self.predictor, "embeddings", None)

    def embed(self, image: np.ndarray) -> None:
        """Put ``image``'s embedding into the store (read back when it is there already)."""
        self.predictor.encode(image)

    def open(self, image: np.ndarray, coarse: np.ndarray | None):
        """``(session, refined, timings_ms)`` for ``image``: the session encodes the image once and
        the Enhancer refines ``coarse`` on that same embedding (``refined`` is ``None`` without
        ``coarse``)."""
        from ..interactive import InteractiveSession

        begin = time.perf_counter()
        session = InteractiveSession(image, model=self.predictor)
        after_encode = time.perf_counter()
        refined = None
        if coarse is not None:
            encoded = self.enhancer.encode(image, coarse, embedding=session.embedding)
            refined = self.enhancer.refine(encoded).mask > 0
        done = time.perf_counter()
        return session, refined, {"encode": 1e3 * (after_encode - begin), "refine": 1e3 * (done - after_encode)}
