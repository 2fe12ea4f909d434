"""Slice embeddings cached on disk, so that every method of a benchmark decodes from one encode
per slice (and a rerun encodes nothing)."""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from pathlib import Path

import numpy as np

from samedenhancer.io import write_atomically


class CachedEncoder:
    """A predictor whose ``encode`` looks an image up in a folder of pickled embeddings (keyed by
    the model and the image's bytes) before running the encoder; everything else is the wrapped
    predictor's. ``encode_seconds`` counts the time of the encodes it did run."""

    def __init__(self, predictor, folder: str | os.PathLike | None) -> None:
        self._predictor = predictor
        self.manifest = predictor.manifest
        self.folder = None if folder is None else Path(folder)
        self._memory: dict[str, object] = {}
        self.encode_seconds = 0.0
        self.encodes = 0

    def _key(self, image: np.ndarray) -> str:
        digest = hashlib.sha1(np.ascontiguousarray(image).tobytes())
        digest.update(f"{self.manifest.name}{image.shape}{image.dtype}".encode())
        return digest.hexdigest()

    def encode(self, image: np.ndarray):
        key = self._key(image)
        if key in self._memory:
            return self._memory[key]
        path = None if self.folder is None else self.folder / f"{key}.pkl"
        if path is not None and path.is_file():
            with open(path, "rb") as handle:
                embedding = pickle.load(handle)
        else:
            start = time.perf_counter()
            embedding = self._predictor.encode(image)
            self.encode_seconds += time.perf_counter() - start
            self.encodes += 1
            if path is not None:
                def dump(tmp):
                    with open(tmp, "wb") as handle:
                        pickle.dump(embedding, handle, protocol=pickle.HIGHEST_PROTOCOL)
                write_atomically(path, ".pkl", dump)
        if len(self._memory) > 64:
            self._memory.clear()
        self._memory[key] = embedding
        return embedding

    def __getattr__(self, name: str):
        # decode, upscale, upscale_window...: the wrapped predictor's; the split encode is hidden so
        # that every encode goes through the cache
        if name in ("prepare", "encode_prepared") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._predictor, name)
