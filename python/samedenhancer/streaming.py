"""Streaming frames through the Enhancer: one refined mask per frame, pipelined, with a latency budget.

Two worker threads and the consumer run concurrently::

    source --> [encode thread: mine, preprocess, encode] --q1--> [decode thread: decode, paste] --q2--> consumer

While frame ``i`` is decoded and pasted, frame ``i + 1`` is mined, preprocessed and encoded (the C++
core and ONNX Runtime release the GIL, so the threads really overlap). Prompts are mined before the
encoder runs because they decide whether it runs at all: a frame whose coarse mask has no region
costs no model call (mining costs about a millisecond).

Both queues are bounded. With ``drop="none"`` a full queue blocks the stage before it (back
pressure up to the source) and every frame comes out, in order. With ``drop="oldest"`` (for live
devices) a full queue discards its oldest waiting frame instead of blocking, and with
``max_latency_ms`` a frame that is older than the budget (from the moment it was taken from the
source) when it reaches the decoder or the consumer is discarded; every discarded frame is still
reported, in order, as a result with status ``"dropped"``.

A bad frame (not an image, wrong shape, NaN, no pixels, a coarse mask of another size, a decoder
error, a frame or mask the source could not decode) gives a result with status ``"error"`` and the
message; the stream goes on.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import io
from .enhancer import Encoded, EnhanceOptions, Enhancer, Timings
from .validation import choice, instance, integer, number

__all__ = ["FrameResult", "coarse_source", "default_drop", "frame_source", "stream"]

#: What a full queue does: discard its oldest frame (live devices) or block (keep every frame).
_DROP_POLICIES = ("oldest", "none")


@dataclass(frozen=True)
class FrameResult:
    """What the stream made of one input frame.

    Attributes
    ----------
    index : int
        Position of the frame in the input (0-based).
    status : {"ok", "dropped", "error"}
    mask : ndarray or None
        The refined mask, in the coarse mask's encoding (as :meth:`Enhancer.enhance` gives it: a
        label map keeps its dtype and labels, a thresholded soft map gives 0/255), when
        ``status == "ok"``, else ``None``.
    timings : Timings
        Per-stage seconds (the stages that ran before a drop or an error keep their times).
    latency : float
        Seconds from the frame being taken from the source to the result being handed over.
    error : str or None
        ``"TypeName: message"`` when ``status == "error"``; why the frame was dropped when
        ``status == "dropped"``.
    """

    index: int
    status: str
    mask: np.ndarray | None
    timings: Timings
    latency: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_MISSING = object()


@dataclass
class _Work:
    """One frame on its way through the pipeline (mutable; only one thread holds it at a time)."""

    index: int
    arrived: float
    image: object = None
    coarse: object = None
    encoded: Encoded | None = None
    mask: np.ndarray | None = None
    times: dict = field(default_factory=dict)
    status: str = "pending"  # pending -> encoded -> ok, or dropped / error at any point
    error: str | None = None

    @property
    def droppable(self) -> bool:
        return self.status in ("pending", "encoded", "ok")

    def drop(self, why: str) -> None:
        self.status, self.error = "dropped", why
        self.image = self.coarse = self.encoded = self.mask = None

    def fail(self, error: BaseException) -> None:
        self.status, self.error = "error", f"{type(error).__name__}: {error}"
        self.image = self.coarse = self.encoded = self.mask = None

    def result(self) -> FrameResult:
        status = self.status
        return FrameResult(
            index=self.index,
            status=status,
            mask=self.mask if status == "ok" else None,
            timings=Timings(**self.times),
            latency=time.perf_counter() - self.arrived,
            error=self.error,
        )


_END = object()  # end of the stream, passed from stage to stage


class _Channel:
    """A bounded FIFO between two threads. Only frames still being worked on count against the
    capacity; with ``drop_oldest`` a put into a full channel turns the oldest such frame into a
    drop report (kept in place, so order is kept) instead of waiting. ``abort`` wakes every waiter."""

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self._items: collections.deque = collections.deque()
        self._capacity = capacity
        self._drop_oldest = drop_oldest
        self._cond = threading.Condition()
        self._aborted = False

    def _live(self) -> int:
        return sum(1 for item in self._items if isinstance(item, _Work) and item.droppable)

    def put(self, item) -> bool:
        """Append ``item``; ``False`` when the channel was aborted."""
        with self._cond:
            if isinstance(item, _Work) and item.droppable:
                while not self._aborted and self._live() >= self._capacity:
                    if self._drop_oldest:
                        oldest = next(i for i in self._items if isinstance(i, _Work) and i.droppable)
                        oldest.drop("queue full: a newer frame replaced it (drop='oldest')")
                        break
                    self._cond.wait()
            if self._aborted:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self):
        """The oldest item, waiting for one; ``None`` when the channel was aborted."""
        with self._cond:
            while not self._items and not self._aborted:
                self._cond.wait()
            if self._aborted:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._items.clear()
            self._cond.notify_all()


def frame_source(source) -> Iterable:
    """The frames of ``source`` (see :func:`stream`): a folder's images in name order (an
    unreadable one is that frame's error), a video, DICOM loop or device, or an iterable as it is."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return _folder(Path(source), "frames", io.read_image)
    if isinstance(source, (str, os.PathLike)) or (isinstance(source, int) and not isinstance(source, bool)):
        return io.open_frames(source)
    single = isinstance(source, np.ndarray) and source.ndim in (2, 3) and source.dtype != object
    return _iterable(source, single, "frames", "an iterable of frames, a folder, a video or DICOM path or a device index")


def coarse_source(source) -> Iterable:
    """The coarse masks of ``source`` (see :func:`stream`): a folder's masks in name order (an
    unreadable one is that frame's error), a mask video or DICOM file, or an iterable as it is."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _folder(path, "coarse_masks", io.read_mask)
        if not path.exists():
            raise FileNotFoundError(f"coarse_masks {path} does not exist (expected a mask folder, a mask video or a DICOM file)")
        return io.open_frames(path, as_mask=True)
    single = isinstance(source, np.ndarray) and source.ndim == 2
    return _iterable(source, single, "coarse_masks", "an iterable of masks, a mask folder, a mask video or DICOM file")


def _folder(path: Path, name: str, read) -> Iterable:
    files = io.readable_files(path, io.IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{name} folder {path} holds no image files ({', '.join(io.IMAGE_SUFFIXES)})")
    return (_read_or_error(p, read) for p in files)


def _read_or_error(path: Path, read):
    """``read(path)``, or the error reading it (handed to that frame, not to the stream)."""
    try:
        return read(path)
    except Exception as error:  # whatever the reader raises is this frame's error
        return error


def _iterable(source, single: bool, name: str, expected: str) -> Iterable:
    """``source`` itself when it is an iterable of items; a ``TypeError`` naming ``name`` when it is
    one item (``single``) or not iterable."""
    if single:
        raise TypeError(f"{name} must be {expected}, got a single array of shape {source.shape}")
    try:
        iter(source)
    except TypeError:
        raise TypeError(f"{name} must be {expected}, got {type(source).__name__}") from None
    return source


def _check_options(max_latency_ms, drop, queue_size) -> None:
    choice(drop, "drop", _DROP_POLICIES)
    if max_latency_ms is not None:
        number(max_latency_ms, "max_latency_ms", above=0)
        if drop == "none":
            raise ValueError("max_latency_ms drops stale frames, drop='none' keeps every frame: give one or the other")
    integer(queue_size, "queue_size", 1)


def default_drop(frames, max_latency_ms=None) -> str:
    """The drop policy that follows the source: a live capture device (an int index) or a latency
    budget keeps latency low (``"oldest"``); anything finite or recorded (a list, a generator, a
    video or DICOM file, a folder) keeps every frame (``"none"``)."""
    live = isinstance(frames, (int, np.integer)) and not isinstance(frames, (bool, np.bool_))
    return "oldest" if live or max_latency_ms is not None else "none"


class _Stages:
    """The two public halves of :meth:`Enhancer.enhance` for one frame, with errors kept per frame."""

    def __init__(self, enhancer: Enhancer) -> None:
        self.enhancer = enhancer

    def encode(self, work: _Work) -> None:
        """Validate, mine, preprocess and encode (no model call when no region was mined)."""
        try:
            if work.image is _MISSING:
                raise ValueError(f"frame {work.index}: coarse_masks has a mask but frames has no frame")
            if work.coarse is _MISSING:
                raise ValueError(f"frame {work.index}: frames has a frame but coarse_masks has no mask")
            if isinstance(work.image, BaseException):  # the frame source could not decode this frame only
                raise work.image
            if isinstance(work.coarse, BaseException):  # the mask source failed on this frame only
                raise work.coarse
            work.encoded = self.enhancer.encode(work.image, work.coarse)
            t = work.encoded.timings
            work.times.update(mine=t.mine, preprocess=t.preprocess, encode=t.encode)
            work.image = work.coarse = None
            work.status = "encoded"
        except Exception as error:  # a bad frame is reported in its result; the stream goes on
            work.fail(error)

    def decode(self, work: _Work) -> None:
        """Decode and paste an encoded frame."""
        try:
            result = self.enhancer.refine(work.encoded)
            work.mask = result.mask
            work.times["decode"], work.times["paste"] = result.timings.decode, result.timings.paste
            work.encoded = None
            work.status = "ok"
        except Exception as error:
            work.fail(error)


def _stale(work: _Work, budget: float | None) -> bool:
    return budget is not None and work.droppable and time.perf_counter() - work.arrived > budget


def _pipelined(stages: _Stages, pairs, budget, drop_oldest: bool, queue_size: int) -> Iterator[FrameResult]:
    encoded, finished = _Channel(queue_size, drop_oldest), _Channel(queue_size, drop_oldest)
    stop = threading.Event()
    failure: list[BaseException] = []

    def encode_loop() -> None:
        try:
            for index, (image, coarse) in enumerate(pairs):
                if stop.is_set():
                    return
                work = _Work(index, time.perf_counter(), image, coarse)
                stages.encode(work)
                if not encoded.put(work):
                    return
        except BaseException as error:  # the source itself failed: end the stream with its error
            failure.append(error)
        encoded.put(_END)

    def decode_loop() -> None:
        while True:
            work = encoded.get()
            if work is None:
                return
            if work is not _END:
                if _stale(work, budget):
                    work.drop(f"older than max_latency_ms={budget * 1e3:g} before decoding")
                elif work.status == "encoded":
                    stages.decode(work)
            if not finished.put(work) or work is _END:
                return

    threads = [
        threading.Thread(target=encode_loop, name="samedenhancer-stream-encode", daemon=True),
        threading.Thread(target=decode_loop, name="samedenhancer-stream-decode", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            work = finished.get()
            if work is None or work is _END:
                break
            if _stale(work, budget):
                work.drop(f"older than max_latency_ms={budget * 1e3:g} when handed over")
            yield work.result()
        if failure:
            raise failure[0]
    finally:
        stop.set()
        encoded.abort()
        finished.abort()
        for thread in threads:
            thread.join()


def stream(frames, coarse_masks, *, enhancer: Enhancer | None = None, model: str = "litemedsam",
           options: EnhanceOptions | None = None, max_latency_ms: float | None = None, drop: str | None = None,
           queue_size: int = 1, **option_fields) -> Iterator[FrameResult]:
    """Refine a stream of frames: a generator of one :class:`FrameResult` per input frame, in input
    order.

    Parameters
    ----------
    frames : iterable of ndarray, folder, video or DICOM path, or int
        Images as for :meth:`Enhancer.enhance`, a folder of images (in name order), a video file /
        capture device index read with OpenCV, or a DICOM cine loop (``.dcm``, read with pydicom);
        frames come as RGB or grey.
    coarse_masks : iterable of ndarray, folder, video or DICOM path
        One coarse mask per frame (a folder: files in name order; a video or multi-frame DICOM:
        its first channel). A mask that cannot be read is that frame's error.
    enhancer : Enhancer, optional
        The Enhancer to run (one engine for many streams); else one is built from ``model`` and
        ``options`` (an :class:`EnhanceOptions`, whose fields may also be given as keywords).
    max_latency_ms : float, optional
        Budget from a frame being taken from the source to its result; older frames are dropped
        (reported with status ``"dropped"``). Needs ``drop="oldest"`` (the default with a budget).
    drop : {"oldest", "none"}, optional
        ``"oldest"``: a full queue discards its oldest frame (live devices); ``"none"``: every
        frame is refined and comes out, the pipeline waits for the consumer. ``None`` (default)
        follows the source: ``"oldest"`` for a capture device index or with ``max_latency_ms``,
        ``"none"`` for everything recorded or finite (lists, generators, files, folders).
    queue_size : int
        Frames waiting between the encoder and decoder stages, and between the decoder and the
        consumer.

    Yields
    ------
    FrameResult
        ``index``, ``status`` ("ok", "dropped", "error"), ``mask``, per-stage ``timings``,
        ``latency`` and ``error``. A bad frame gives an error result and the stream goes on; a
        frame whose coarse mask has no region costs no model call. Closing the generator early
        (``close()``, ``break`` out of a ``for`` loop) stops and joins its threads.

    Examples
    --------
    >>> from samedenhancer import data, stream
    >>> sample = data.fundus()
    >>> frames, masks = [sample.image] * 2, [sample.coarse, sample.coarse[:9]]  # the second does not fit
    >>> for result in stream(frames, masks, threshold=sample.threshold):
    ...     print(result.index, result.status, None if result.mask is None else result.mask.max())
    0 ok 255
    1 error None
    """
    drop = default_drop(frames, max_latency_ms) if drop is None else drop
    _check_options(max_latency_ms, drop, queue_size)
    if enhancer is None:
        enhancer = Enhancer(model, options, **option_fields)
    else:
        instance(enhancer, "enhancer", Enhancer, "a samedenhancer.Enhancer")
        if options is not None or option_fields:
            raise TypeError("options cannot be given together with a ready enhancer: they are the enhancer's")
    frames, coarse_masks = frame_source(frames), coarse_source(coarse_masks)
    budget = None if max_latency_ms is None else max_latency_ms / 1e3
    pairs = itertools.zip_longest(frames, coarse_masks, fillvalue=_MISSING)
    return _pipelined(_Stages(enhancer), pairs, budget, drop == "oldest", queue_size)
