"""The studies' encoder: an in-memory LRU over the package's embedding store (no pickle), so a rerun
encodes nothing and gives the same embeddings."""

from __future__ import annotations

import numpy as np

from samedenhancer import EmbeddingStore, Predictor, data
from studies import embeddings


def test_a_rerun_reads_the_store_and_gets_the_same_embedding(tmp_path, monkeypatch):
    predictor = Predictor("litemedsam")
    image = data.fundus().image
    first = embeddings.CachedEncoder(predictor, tmp_path / "store")
    embedding = first.encode(image)
    assert first.encode(image) is embedding  # the current run's memory
    assert first.encodes == 1 and first.encode_seconds > 0
    files = [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert len(EmbeddingStore(tmp_path / "store")) == 1 and not [name for name in files if name.endswith(".pkl")]

    again = embeddings.CachedEncoder(predictor, tmp_path / "store")
    reread = again.encode(image)
    assert again.encodes == 0 and again.encode_seconds == 0 and again.store.stats.hits == 1
    for a, b in zip(embedding.features, reread.features):
        assert np.array_equal(a, b)
    plain = predictor.encode(image)  # the store changes nothing: the encoder's own bytes
    assert all(np.array_equal(a, b) for a, b in zip(plain.features, reread.features))

    monkeypatch.setattr(embeddings, "MEMORY", 1)
    small = embeddings.CachedEncoder(predictor, None)
    small.encode(image)
    small.encode(image[::-1].copy())  # pushes the first out of memory
    small.encode(image)
    assert small.encodes == 3 and small.store is None
