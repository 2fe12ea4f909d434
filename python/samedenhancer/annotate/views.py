"""What the annotation page receives: the views of an image and of its mask after an operation
(JSON through ``dataclasses.asdict``), the image as a browser PNG, and the refusals, each with the
HTTP status the server answers with. :mod:`.workflow` makes them; :mod:`.server` sends them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "AnnotateError",
    "Conflict",
    "ImageView",
    "Invalid",
    "ListedImage",
    "Listing",
    "MaskView",
    "UnknownImage",
    "Unprocessable",
    "display_png",
    "outline",
]


class AnnotateError(Exception):
    """A request the workflow refuses; ``status`` is the HTTP status the server answers with."""

    status = 400

    def __init__(self, message: str, state: MaskView | None = None, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.reason = reason


class Invalid(AnnotateError, ValueError):
    """Bad input: a click outside the image, a reversed box, a wrong type."""

    status = 400


class UnknownImage(AnnotateError):
    """An id that is not in the catalog."""

    status = 404


class Conflict(AnnotateError):
    """The operation does not fit the image's current state. ``reason``: ``"stale"`` (another
    version; ``state`` holds the current one), ``"closed"`` (the image is not open) or ``"refused"``
    (nothing to undo, no mask to reset to)."""

    status = 409


class Unprocessable(AnnotateError):
    """The image or its coarse mask cannot be read or refined."""

    status = 422


def outline(mask: np.ndarray) -> list[list[int]]:
    """The boundary of ``mask`` as polygons ``[x0, y0, x1, y1, ...]`` (pixel centres, outer
    boundaries and holes; filled with the even-odd rule they give the mask back)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).tolist() for c in contours]


def display_png(image: np.ndarray) -> bytes:
    """``image`` as an 8-bit PNG for the browser: uint8 as it is, other types stretched between
    their 0.5th and 99.5th percentiles (16-bit MRI, CT in HU)."""
    if image.dtype != np.uint8:
        low, high = np.percentile(image, (0.5, 99.5))
        scaled = (image.astype(np.float32) - low) / max(float(high - low), 1e-6)
        image = (255 * np.clip(scaled, 0, 1)).astype(np.uint8)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise Unprocessable(f"cannot encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()


@dataclass(frozen=True, kw_only=True)
class MaskView:
    """What the page shows of an image's mask after an operation (JSON through ``dataclasses.asdict``).

    Attributes
    ----------
    id : str
    version : int
        Bumped by every change of the mask; operations carry the version they were made on.
    start : {"saved", "refined", "coarse", "box", "point"} or None
        What the session was started from (``None``: nothing yet; ``"saved"``: the mask an earlier
        accept wrote).
    clicks : list of [x, y, positive]
    area : int
        Pixels in the mask.
    mask : list of list of int
        The mask's outline, :func:`outline`.
    state : {"todo", "accepted", "skipped"}
    took_ms : float or None
        Milliseconds the operation took on the server (``None`` for a view not made by one).
    """

    id: str
    version: int
    start: str | None
    clicks: list
    area: int
    mask: list
    state: str
    took_ms: float | None = None

    @staticmethod
    def fields(state, status: str) -> dict:
        """The fields of an open image's ``state`` (:class:`~.workflow.ImageState`) whose ledger
        status is ``status``."""
        mask = state.mask
        return dict(id=state.entry.id, version=state.version, start=state.start, clicks=state.clicks,
                    area=int(mask.sum()), mask=outline(mask), state=status)

    @classmethod
    def of(cls, state, status: str, took_ms: float | None = None) -> "MaskView":
        """The view of an open image's ``state`` after an operation that took ``took_ms``."""
        return cls(**MaskView.fields(state, status), took_ms=took_ms)


@dataclass(frozen=True, kw_only=True)
class ImageView(MaskView):
    """:class:`MaskView` and what does not change while the image is open: its size, the coarse and
    refined outlines (``None`` without a coarse mask), the milliseconds opening took (read,
    encode, refine, start) and a notice for the user (a saved mask that could not be used)."""

    width: int
    height: int
    coarse: list | None
    refined: list | None
    timings_ms: dict
    notice: str | None = None

    @classmethod
    def of(cls, state, status: str, took_ms: float | None = None) -> "ImageView":
        """The view of an open image's ``state`` as it opens."""
        width, height = state.size
        return cls(**MaskView.fields(state, status), width=width, height=height,
                   coarse=None if state.coarse is None else outline(state.coarse),
                   refined=None if state.refined is None else outline(state.refined),
                   timings_ms={k: round(v, 1) for k, v in state.timings_ms.items()}, notice=state.notice)


@dataclass(frozen=True)
class ListedImage:
    """One line of the page's list."""

    id: str
    name: str
    coarse: bool
    state: str


@dataclass(frozen=True)
class Listing:
    """The images in name order and how many are done (accepted or skipped)."""

    images: list
    done: int
    total: int
