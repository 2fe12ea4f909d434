"""The background pass of ``annotate``: encode the folder's images into the embedding store while the
user works, so that opening one later reads its embedding back instead of running the encoder.

The pass starts when the first image is opened and goes through the catalog in name order from the
image after it (wrapping). It runs at low priority: it starts no image while a user's request is
in progress (:meth:`BackgroundPass.foreground`), so a request waits at most for the one image the
pass is encoding when it arrives, and it holds that image's opening lock meanwhile, so that a user
opening the very image being encoded waits for it and reads it back rather than encoding it a
second time. :meth:`BackgroundPass.stop` ends it between two images and joins its thread; an image
the store is writing is written whole or not at all (:class:`samedenhancer.EmbeddingStore` writes
atomically).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["BackgroundPass", "Progress"]

#: Name of the pass's thread.
THREAD_NAME = "annotate-embeddings"


@dataclass(frozen=True)
class Progress:
    """Where the background pass stands (JSON through ``dataclasses.asdict``).

    Attributes
    ----------
    ready : int
        Images whose embedding is in the store: encoded or found there by the pass, or opened.
    failed : int
        Images the pass could not read or encode (the page says why when they are opened).
    total : int
        Images in the catalog.
    running : bool
        Whether the pass is still going through the catalog.
    encoded : int
        Encoder calls through the store in this server (the pass's and the openings').
    reused : int
        Embeddings read back from the store instead (no encoder call).
    """

    ready: int
    failed: int
    total: int
    running: bool
    encoded: int
    reused: int


class BackgroundPass:
    """Encodes ``ids`` with ``embed`` in one low-priority thread.

    Parameters
    ----------
    ids : sequence of str
        The catalog's image ids, in name order.
    embed : callable
        ``embed(image_id)`` puts the image's embedding into the store; raises for an image that
        cannot be read or encoded.
    locks : dict of str to threading.Lock
        Each image's opening lock (held while the pass encodes that image).
    store : EmbeddingStore, optional
        Its ``stats`` give :attr:`Progress.encoded` and :attr:`Progress.reused`.
    """

    def __init__(self, ids: Sequence[str], embed: Callable[[str], None], locks: dict, store=None) -> None:
        self._ids = list(ids)
        self._embed = embed
        self._locks = locks
        self._store = store
        self._ready: set[str] = set()
        self._failed = 0
        self._busy = 0  # user requests in progress
        self._stopping = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def begin(self, shown: str) -> None:
        """Start the pass (once) with the image after ``shown``, the first image shown."""
        with self._changed:
            if self._thread is not None or self._stopping:
                return
            at = self._ids.index(shown)
            order = self._ids[at + 1 :] + self._ids[:at]
            self._thread = threading.Thread(target=self._run, args=(order,), name=THREAD_NAME, daemon=True)
            self._thread.start()

    @contextlib.contextmanager
    def foreground(self):
        """Mark a user's request in progress: the pass starts no image until every one has ended."""
        with self._changed:
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def mark_ready(self, image_id: str) -> None:
        """``image_id`` was opened, so its embedding is in the store: the pass skips it."""
        with self._changed:
            self._ready.add(image_id)

    def _run(self, order: list[str]) -> None:
        for image_id in order:
            with self._changed:
                while self._busy and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                if image_id in self._ready:
                    continue
            with self._locks[image_id]:  # an opening of this image waits, then reads it back
                if self._stopping:
                    return
                try:
                    self._embed(image_id)
                except Exception:  # noqa: BLE001 - any failure is the page's to report when it opens the image
                    with self._changed:
                        self._failed += 1
                    continue
            self.mark_ready(image_id)

    def progress(self) -> Progress:
        stats = None if self._store is None else self._store.stats
        with self._changed:
            running = self._thread is not None and self._thread.is_alive()
            return Progress(len(self._ready), self._failed, len(self._ids), running,
                            0 if stats is None else stats.misses, 0 if stats is None else stats.hits)

    def stop(self) -> None:
        """End the pass after the image it is encoding (if any) and wait for its thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
