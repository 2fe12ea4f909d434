"""Frames of a video file, capture device or DICOM cine loop, one at a time."""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from .dicom import DicomFrames
from .labels import stored_mask
from .paths import is_dicom


def open_frames(source: str | os.PathLike | int, *, as_mask: bool = False):
    """The frames of ``source`` as an iterable with ``fps`` and ``size``: :class:`DicomFrames` for a
    DICOM file, :class:`VideoFrames` for a video file or capture device index."""
    if isinstance(source, (str, os.PathLike)) and is_dicom(source):
        return DicomFrames(source, as_mask=as_mask)
    return VideoFrames(source, as_mask=as_mask)


class VideoFrames:
    """Frames of a video file or capture device through OpenCV, as an iterable of arrays.

    Parameters
    ----------
    source : path or int
        A video file (anything OpenCV's FFmpeg / MJPG backends read) or a capture device index.
    as_mask : bool
        Yield H x W maps (the first channel) instead of H x W x 3 RGB frames: for coarse masks
        stored as a video.

    Attributes
    ----------
    fps : float
        Frame rate the source declares (0 when it declares none).
    size : tuple of int
        ``(H, W)`` of its frames.

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist.
    ValueError
        OpenCV cannot open ``source``.
    """

    def __init__(self, source: str | os.PathLike | int, *, as_mask: bool = False) -> None:
        if isinstance(source, bool) or not isinstance(source, (str, os.PathLike, int)):
            raise TypeError(f"source must be a video path or a device index (int), got {type(source).__name__}")
        if not isinstance(source, int) and not Path(source).is_file():
            raise FileNotFoundError(f"no such video file: {source}")
        self.source = source if isinstance(source, int) else os.fspath(source)
        self.as_mask = as_mask
        capture = cv2.VideoCapture(self.source)
        try:
            if not capture.isOpened():
                raise ValueError(f"cannot open video {self.source!r} with OpenCV")
            self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self.size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        finally:
            capture.release()

    def __iter__(self):
        capture = cv2.VideoCapture(self.source)
        try:
            if not capture.isOpened():
                raise ValueError(f"cannot open video {self.source!r} with OpenCV")
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                if self.as_mask:
                    yield stored_mask(frame)
                else:
                    yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
        finally:
            capture.release()
