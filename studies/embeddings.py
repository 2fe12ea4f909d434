"""The studies' encoder: every method of a study decodes from one encode per image or slice. The
embeddings of the current run are kept in memory; with a folder, every encode also goes through the
package's :class:`samedenhancer.EmbeddingStore` there, so a rerun (or another study, or a command
given the same ``--embeddings`` folder) encodes nothing."""

from __future__ import annotations

import collections
import hashlib
import os
import time

import numpy as np

from samedenhancer import EmbeddingStore

#: Embeddings kept in memory (LiteMedSAM's is 4 MB): a volume's slices stay there while every
#: method runs on it.
MEMORY = 64


class CachedEncoder:
    """A predictor whose ``encode`` looks an image up in memory, then in the embedding store at
    ``folder`` (none when ``None``), before running the encoder; everything else is the wrapped
    predictor's.

    Attributes
    ----------
    store : EmbeddingStore or None
    encodes : int
        Encoder calls made (neither in memory nor in the store).
    encode_seconds : float
        Their wall time.
    """

    def __init__(self, predictor, folder: str | os.PathLike | None) -> None:
        self.store = None if folder is None else EmbeddingStore(folder)
        self._predictor = predictor if self.store is None else predictor.with_embeddings(self.store)
        self.manifest = predictor.manifest
        self._memory: collections.OrderedDict[str, object] = collections.OrderedDict()
        self.encode_seconds = 0.0
        self.encodes = 0

    @staticmethod
    def _key(image: np.ndarray) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(image).data)
        digest.update(f"{image.shape}{image.dtype}".encode())
        return digest.hexdigest()

    def encode(self, image: np.ndarray):
        key = self._key(image)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        misses = None if self.store is None else self.store.stats.misses
        start = time.perf_counter()
        embedding = self._predictor.encode(image)
        if misses is None or self.store.stats.misses > misses:  # the encoder ran
            self.encode_seconds += time.perf_counter() - start
            self.encodes += 1
        self._memory[key] = embedding
        while len(self._memory) > MEMORY:
            self._memory.popitem(last=False)
        return embedding

    def __getattr__(self, name: str):
        # decode, upscale, upscale_window...: the wrapped predictor's; the split encode is hidden so
        # that every encode goes through the cache
        if name in ("prepare", "encode_prepared") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._predictor, name)
