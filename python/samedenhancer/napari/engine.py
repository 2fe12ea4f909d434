"""One engine per model for all the widgets, and each image encoded once.

:func:`shared` opens a model once per process; the :class:`CachedPredictor` it returns keeps the
embeddings of the images it encoded, keyed by their pixels, so that refining an image, correcting
it by clicks and propagating through its stack encode each slice once, whichever widget asks first.
It stands in for a :class:`~samedenhancer.Predictor` wherever the public API takes one
(:class:`~samedenhancer.Enhancer`, :class:`~samedenhancer.InteractiveSession`,
:func:`~samedenhancer.propagate`). A :meth:`CachedPredictor.watched` view reports every model call
to a job (:mod:`.jobs`), which counts progress and stops a cancelled run at its next call.
"""

from __future__ import annotations

import collections
import hashlib
import threading

import numpy as np

from ..predictor import ImageEmbedding, Predictor

__all__ = ["CACHE_SIZE", "CachedPredictor", "Cancelled", "opened", "shared"]

#: Embeddings kept per model (LiteMedSAM's is 4 MiB): a stack of a few dozen slices stays encoded.
CACHE_SIZE = 48

_engines: dict[str, "CachedPredictor"] = {}
_engines_lock = threading.Lock()


class Cancelled(Exception):
    """The user cancelled the run (raised at the run's next model call)."""


def shared(model: str) -> "CachedPredictor":
    """The process's :class:`CachedPredictor` of ``model`` (a model name or an exported model
    folder), opened on first use."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a model name or an exported model folder, got {model!r}")
    with _engines_lock:
        if model not in _engines:
            _engines[model] = CachedPredictor(Predictor(model.strip()))
        return _engines[model]


def opened(model: str) -> "CachedPredictor | None":
    """The process's :class:`CachedPredictor` of ``model`` if it is open already (nothing is loaded)."""
    with _engines_lock:
        return _engines.get(model)


class _Store:
    """Embeddings by image content, least recently used out first; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: collections.OrderedDict[tuple, ImageEmbedding] = collections.OrderedDict()
        self.lock = threading.Lock()
        self.encodes = 0

    @staticmethod
    def key(image: np.ndarray) -> tuple:
        image = np.ascontiguousarray(image)
        return image.shape, image.dtype.str, hashlib.blake2b(image.view(np.uint8).reshape(-1)).hexdigest()

    def get(self, key: tuple) -> ImageEmbedding | None:
        with self.lock:
            embedding = self.entries.get(key)
            if embedding is not None:
                self.entries.move_to_end(key)
            return embedding

    def put(self, key: tuple, embedding: ImageEmbedding) -> None:
        with self.lock:
            self.entries[key] = embedding
            self.encodes += 1
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


class CachedPredictor:
    """A :class:`~samedenhancer.Predictor` whose :meth:`encode` remembers what it encoded.

    Parameters
    ----------
    predictor : Predictor
        The engine (shared by every view of this cache).
    size : int
        How many embeddings are kept.

    Attributes
    ----------
    manifest : Manifest
        The model's manifest.
    encodes : int
        Images this cache encoded (cache misses), over all its views.
    """

    def __init__(self, predictor: Predictor, size: int = CACHE_SIZE, *, _store: _Store | None = None,
                 _watch=None) -> None:
        self.predictor = predictor
        self.manifest = predictor.manifest
        self._store = _store if _store is not None else _Store(size)
        self._watch = _watch

    @property
    def encodes(self) -> int:
        return self._store.encodes

    def watched(self, watch) -> "CachedPredictor":
        """A view on the same engine and cache that calls ``watch.check()`` before every model call
        (it raises :class:`Cancelled` to stop the run) and ``watch.tick()`` after every image."""
        return CachedPredictor(self.predictor, _store=self._store, _watch=watch)

    def cached(self, image: np.ndarray) -> ImageEmbedding | None:
        """The embedding of ``image`` if it was encoded already (no model call)."""
        return self._store.get(self._store.key(image))

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """The embedding of ``image``: from the cache, or from the encoder (once)."""
        if self._watch is not None:
            self._watch.check()
        key = self._store.key(image)
        embedding = self._store.get(key)
        if embedding is None:
            embedding = self.predictor.encode(image)
            self._store.put(key, embedding)
        if self._watch is not None:
            self._watch.tick()
        return embedding

    def decode(self, *args, **kwargs):
        if self._watch is not None:
            self._watch.check()
        return self.predictor.decode(*args, **kwargs)

    def upscale(self, embedding: ImageEmbedding, low_res_logits: np.ndarray) -> np.ndarray:
        return self.predictor.upscale(embedding, low_res_logits)

    def upscale_window(self, embedding: ImageEmbedding, low_res_logits: np.ndarray, floor: float = 0.0, include=None):
        return self.predictor.upscale_window(embedding, low_res_logits, floor, include)
