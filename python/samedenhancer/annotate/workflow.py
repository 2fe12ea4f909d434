"""The annotation workflow without the web: open an image (refine its coarse mask), correct it with
clicks, undo, reset, box, accept, skip. The server (:mod:`.server`) only validates requests and
calls this.

Every change to an image's mask goes through :class:`Annotator` under that image's lock and
carries the version of the mask the page last saw and an operation id chosen by the page:

- an operation whose id is the last one applied is a replay (the page sent it again after losing
  the answer) and gets the same answer without being applied twice;
- an operation on another version than the current one (another tab changed the mask meanwhile)
  is refused with :class:`Conflict`, which carries the current state so the page can catch up;
- accepting writes ``OUT/<stem>.<format>`` through :func:`samedenhancer.io.write_mask` (temporary
  file, then rename) while holding the lock, so with two tabs the last accept wins and the file is
  always one whole mask.

An accepted mask is the user's work. An image whose ``OUT/<stem>.<format>`` exists opens with that
mask as saved (``start="saved"``), after a restart and after it left the images kept in memory
alike: its refined and coarse masks stay one reset away. Accepting a mask that differs from the
saved one keeps the saved one as ``OUT/history/<stem>.v<n>.<format>`` (n = 1, 2, ...) before
writing the new one, and the ledger keeps a row per accept: no accepted version is ever lost.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from .. import io, metrics, validation
from ..core import as_label_map
from .background import BackgroundPass, Progress
from .catalog import Catalog, Entry
from .views import (
    AnnotateError,
    Conflict,
    ImageView,
    Invalid,
    ListedImage,
    Listing,
    MaskView,
    UnknownImage,
    Unprocessable,
    display_png,
)

__all__ = ["Annotator", "ImageState"]


@dataclass
class ImageState:
    """An open image: its pixels, coarse and refined masks, its correction session and history."""

    entry: Entry
    image: np.ndarray
    coarse: np.ndarray | None  # bool H x W
    refined: np.ndarray | None  # bool H x W
    session: object
    start: str | None  # "saved", "refined", "coarse", "box", "point" or None (nothing started yet)
    opened_at: float
    timings_ms: dict
    notice: str | None = None  # what the page should tell when the image opens (a saved mask it cannot use)
    version: int = 0
    last_op: tuple[str, dict] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def mask(self) -> np.ndarray:
        if self.start is None:
            return np.zeros(self.image.shape[:2], bool)
        return np.asarray(self.session.mask, bool)

    @property
    def clicks(self) -> list[list]:
        if self.start is None:
            return []
        return [[int(x), int(y), bool(positive)] for x, y, positive in self.session.clicks]


class Annotator:
    """The workflow over a :class:`~.catalog.Catalog` and a model backend.

    Parameters
    ----------
    catalog : Catalog
    backend : object
        Has ``open(image, coarse) -> (session, refined, timings_ms)``: ``session`` an
        :class:`samedenhancer.InteractiveSession` for ``image`` (not started), ``refined`` the
        refined coarse mask as bool H x W (``None`` without ``coarse``), ``timings_ms`` a dict of
        milliseconds; :class:`~.backend.ModelBackend` is the real one.
    threshold : float, optional
        Threshold of soft coarse maps, as the Enhancer's (the coarse outline shown and "reset to
        coarse" use it).
    keep : int
        How many open images stay in memory (their embeddings and histories); the least recently
        used beyond that is closed and re-opened (refined again) when asked for.
    prefetch : bool
        When an image is opened, open the next image to do in the background (one at a time), so
        that going on to it does not wait for the encoder.
    precompute : bool
        Once the first image is opened, encode every image into the backend's embedding store in a
        low-priority thread (:mod:`.background`); the backend needs ``embeddings`` (the store) and
        ``embed(image)``.
    """

    def __init__(self, catalog: Catalog, backend, *, threshold: float | None = None, keep: int = 8,
                 prefetch: bool = False, precompute: bool = False) -> None:
        self.catalog = catalog
        self.backend = backend
        self.threshold = threshold
        self.keep = validation.integer(keep, "keep", low=2)  # the image shown and the next
        self.prefetch = validation.flag(prefetch, "prefetch")
        self._open: collections.OrderedDict[str, ImageState] = collections.OrderedDict()
        self._opening = {image_id: threading.Lock() for image_id in catalog.ids()}
        self._lock = threading.Lock()
        self._prefetcher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="annotate-prefetch")
        self._prefetching: concurrent.futures.Future | None = None
        self._pass = None
        if validation.flag(precompute, "precompute"):
            if getattr(backend, "embeddings", None) is None:
                raise ValueError("precompute=True needs a backend with an embedding store (backend.embeddings)")
            self._pass = BackgroundPass(catalog.ids(), self._embed, self._opening, backend.embeddings)

    def close(self) -> None:
        """Stop the background pass and prefetch (each waits for the image it is on)."""
        if self._pass is not None:
            self._pass.stop()
        self._prefetcher.shutdown(wait=True, cancel_futures=True)

    def progress(self) -> Progress | None:
        """Where the background pass stands (``None`` without ``precompute``)."""
        return None if self._pass is None else self._pass.progress()

    def _foreground(self):
        """A user's request: the background pass waits for it to end before its next image."""
        return contextlib.nullcontext() if self._pass is None else self._pass.foreground()

    def _embed(self, image_id: str) -> None:
        entry = self.catalog[image_id]
        self.backend.embed(self._read(entry.image, io.read_image))

    # -- listing -----------------------------------------------------------------------------
    def listing(self) -> Listing:
        states = self.catalog.ledger.states()
        images = [ListedImage(e.id, e.image.name, e.coarse is not None, states.get(e.id, "todo"))
                  for e in self.catalog.entries.values()]
        return Listing(images, sum(item.state != "todo" for item in images), len(images))

    def entry(self, image_id) -> Entry:
        try:
            return self.catalog[image_id]
        except (KeyError, TypeError):
            raise UnknownImage(f"unknown image id {image_id!r}") from None

    def image_png(self, image_id) -> bytes:
        entry = self.entry(image_id)
        with self._lock:
            state = self._open.get(entry.id)
        image = state.image if state is not None else self._read(entry.image, io.read_image)
        return display_png(image)

    # -- opening -----------------------------------------------------------------------------
    @staticmethod
    def _read(path, reader):
        try:
            return reader(path)
        except (OSError, ValueError, TypeError) as error:
            raise Unprocessable(f"cannot read {path.name}: {error}") from error

    def open(self, image_id) -> ImageView:
        """Open ``image_id`` (read, encode, refine its coarse mask, start the session from it) or
        return its state when it is open already."""
        entry = self.entry(image_id)
        with self._foreground(), self._opening[entry.id]:  # a second tab opening the same image waits
            with self._lock:
                state = self._open.get(entry.id)
                if state is not None:
                    self._open.move_to_end(entry.id)
            if state is None:
                state = self._load(entry)
                with self._lock:
                    self._open[entry.id] = state
                    while len(self._open) > self.keep:
                        self._open.popitem(last=False)
        if self._pass is not None:
            self._pass.mark_ready(entry.id)
            self._pass.begin(entry.id)
        if self.prefetch:
            self._prefetch_after(entry.id)
        with state.lock:
            return ImageView.of(state, self._status(state))

    def next_todo(self, image_id: str) -> str | None:
        """The first image after ``image_id`` (in name order, wrapping) still to do, if any."""
        ids, states = self.catalog.ids(), self.catalog.ledger.states()
        at = ids.index(image_id)
        for other in ids[at + 1 :] + ids[:at]:
            if states.get(other, "todo") == "todo":
                return other
        return None

    def _prefetch_after(self, image_id: str) -> None:
        following = self.next_todo(image_id)
        with self._lock:
            busy = self._prefetching is not None and not self._prefetching.done()
            if following is None or busy or following in self._open:
                return
            try:
                self._prefetching = self._prefetcher.submit(self._prefetch, following)
            except RuntimeError:  # closed
                pass

    def _prefetch(self, image_id: str) -> None:
        entry = self.catalog[image_id]
        with self._foreground(), self._opening[entry.id]:
            with self._lock:
                if entry.id in self._open:
                    return
            try:
                state = self._load(entry)
            except AnnotateError:
                return  # the page hears about it when it opens the image itself
            with self._lock:
                self._open[entry.id] = state
                while len(self._open) > self.keep:
                    self._open.popitem(last=False)

    def _load(self, entry: Entry) -> ImageState:
        begin = time.perf_counter()
        image = self._read(entry.image, io.read_image)
        coarse_raw = None if entry.coarse is None else self._read(entry.coarse, io.read_mask)
        coarse = None
        if coarse_raw is not None:
            if coarse_raw.shape != image.shape[:2]:
                raise Unprocessable(f"coarse mask {entry.coarse.name} is {coarse_raw.shape[1]} x {coarse_raw.shape[0]} px, "
                                    f"image {entry.image.name} is {image.shape[1]} x {image.shape[0]} px")
            try:
                coarse = as_label_map(coarse_raw, self.threshold) > 0
            except (ValueError, TypeError) as error:
                raise Unprocessable(f"coarse mask {entry.coarse.name}: {error}") from error
        read_ms = 1e3 * (time.perf_counter() - begin)
        try:
            session, refined, timings = self.backend.open(image, coarse_raw)
        except (ValueError, TypeError, RuntimeError) as error:
            raise Unprocessable(f"cannot refine {entry.image.name}: {type(error).__name__}: {error}") from error
        state = ImageState(entry, image, coarse, None if refined is None else np.asarray(refined, bool), session,
                           None, time.time(), {"read": read_ms, **timings})
        saved, state.notice = self.catalog.saved_mask(entry, image.shape[:2])
        begin = time.perf_counter()
        if saved is not None:
            self._start(state, "saved", mask=saved)
        elif state.refined is not None and state.refined.any():
            self._start(state, "refined", mask=state.refined)
        state.timings_ms["start"] = 1e3 * (time.perf_counter() - begin)
        return state

    # -- operations --------------------------------------------------------------------------
    def _start(self, state: ImageState, kind: str, **prompt) -> None:
        try:
            state.session.start(**prompt)
        except ValueError as error:
            raise Invalid(str(error)) from error
        state.start = kind

    def apply(self, image_id, op: str, version, action: str, **args) -> MaskView:
        """Apply ``action`` (``"click"``, ``"undo"``, ``"reset"``, ``"box"``, ``"accept"``,
        ``"skip"``) to the open image ``image_id`` and return its new state.

        ``version`` is the mask version the page shows; ``op`` a fresh id per operation (a replay of
        the last one is answered without applying it again).
        """
        entry = self.entry(image_id)
        with self._lock:
            state = self._open.get(entry.id)
        if state is None:
            raise Conflict(f"image {entry.id!r} is not open (open it first)", reason="closed")
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            raise Invalid(f"unknown action {action!r}")
        with self._foreground(), state.lock:
            if state.last_op is not None and state.last_op[0] == op:
                return state.last_op[1]
            if version != state.version:
                raise Conflict(f"the mask changed meanwhile (version {state.version}, the page had {version})",
                               MaskView.of(state, self._status(state)), reason="stale")
            begin = time.perf_counter()
            changed = handler(state, **args)
            took_ms = 1e3 * (time.perf_counter() - begin)
            if changed:
                state.version += 1
            view = MaskView.of(state, self._status(state), round(took_ms, 1))
            state.last_op = (op, view)
            return view

    def _do_click(self, state: ImageState, x, y, positive: bool) -> bool:
        width, height = state.size
        if not (0 <= x < width and 0 <= y < height):
            raise Invalid(f"click ({x}, {y}) is outside the image (0 <= x < {width}, 0 <= y < {height})")
        x, y = int(math.floor(x)), int(math.floor(y))
        if state.start is None:
            if not positive:
                raise Conflict("there is no mask to remove from yet: start with a positive click or a box", reason="refused")
            self._start(state, "point", point=(x, y))
            return True
        try:
            state.session.click(x, y, positive=positive)
        except ValueError as error:
            raise Invalid(str(error)) from error
        return True

    def _do_undo(self, state: ImageState) -> bool:
        if not state.clicks:
            raise Conflict("nothing to undo: no click since the mask was started", reason="refused")
        try:
            state.session.undo()
        except (ValueError, RuntimeError, IndexError) as error:
            raise Conflict(f"cannot undo: {error}", reason="refused") from error
        return True

    def _do_reset(self, state: ImageState, to: str) -> bool:
        if to not in ("refined", "coarse"):
            raise Invalid(f"reset goes to 'refined' or 'coarse', got {to!r}")
        mask = state.refined if to == "refined" else state.coarse
        if mask is None:
            raise Conflict(f"there is no {to} mask for {state.entry.id} (no coarse mask given)", reason="refused")
        if not mask.any():
            raise Conflict(f"the {to} mask of {state.entry.id} is empty: draw a box or click instead", reason="refused")
        self._start(state, to, mask=mask)
        return True

    def _do_box(self, state: ImageState, box) -> bool:
        """``box`` in the page's continuous coordinates (pixel ``i`` spans ``[i, i + 1)``), given to
        the session as the inclusive pixels it covers."""
        width, height = state.size
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise Invalid(f"box {list(box)} must satisfy 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}")
        pixels = [math.floor(x0), math.floor(y0), min(math.ceil(x1), width) - 1, min(math.ceil(y1), height) - 1]
        if pixels[2] <= pixels[0] or pixels[3] <= pixels[1]:
            raise Invalid(f"box {list(box)} must cover at least two pixels each way")
        self._start(state, "box", box=pixels)
        return True

    def _do_accept(self, state: ImageState) -> bool:
        mask = state.mask
        self.catalog.keep_previous(state.entry, mask)
        io.write_mask(state.entry.output, mask.astype(np.uint8))
        self._record(state, "accepted", mask)
        return False

    def _do_skip(self, state: ImageState) -> bool:
        self._record(state, "skipped", state.mask)
        return False

    def _record(self, state: ImageState, action: str, mask: np.ndarray) -> None:
        def score(other):
            return "" if other is None else f"{metrics.dice(mask, other):.4f}"

        self.catalog.ledger.append({
            "file": state.entry.id,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "action": action,
            "clicks": len(state.clicks),
            "start": state.start or "",
            "dice_vs_coarse": score(state.coarse),
            "dice_vs_refined": score(state.refined),
            "seconds": f"{time.time() - state.opened_at:.1f}",
        })

    # -- answers -----------------------------------------------------------------------------
    def mask(self, image_id) -> np.ndarray:
        """The current mask of the open image ``image_id`` (bool H x W)."""
        entry = self.entry(image_id)
        with self._lock:
            state = self._open.get(entry.id)
        if state is None:
            raise Conflict(f"image {entry.id!r} is not open (open it first)", reason="closed")
        with state.lock:
            return state.mask

    def _status(self, state: ImageState) -> str:
        return self.catalog.ledger.states().get(state.entry.id, "todo")
