"""Frames of a video file, capture device or DICOM cine loop, one at a time."""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from .dicom import DicomFrames
from .labels import mask_from_stored
from .paths import is_dicom

#: Video codecs (FourCC as OpenCV reports it) that store frames exactly; masks in any other codec
#: are read as binary (:func:`samedenhancer.io.read_mask`'s rule for lossy formats).
_LOSSLESS_CODECS = ("ffv1", "FFV1", "HFYU", "FFVH", "MPNG", "png ", "LAGS", "UTVD")
#: Pixel formats of uncompressed video (FourCC 0) that hold grey or RGB values exactly (not
#: chroma-subsampled YUV).
_EXACT_RAW_FORMATS = ("Y800", "GREY", "RGB\x18", "BGR\x18", "RGBA", "BGRA", "ARGB", "ABGR")


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
        Yield H x W masks instead of H x W x 3 RGB frames: for coarse masks stored as a video,
        read as :func:`samedenhancer.io.read_mask` reads images. A lossless codec (FFV1,
        HuffYUV, PNG, uncompressed RGB / grey) keeps the values; any other codec is lossy, so its
        frames are binary: foreground above 127, returned as 0 / 255 (a frame with nothing above
        127 is empty: inter-frame codecs leave faint residue there).

    Attributes
    ----------
    fps : float
        Frame rate the source declares (0 when it declares none).
    size : tuple of int
        ``(H, W)`` of its frames.

    Yields
    ------
    ndarray or ValueError
        Each frame; a frame OpenCV cannot decode before the end the file declares (damaged or
        truncated data) is yielded as the ``ValueError`` naming it, in its place, and the frames
        after it are read on (:func:`samedenhancer.stream` makes it that frame's error result).
        A capture device ends at its first failed read.

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
        capture = self._open()
        try:
            self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self.size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        finally:
            capture.release()

    def _open(self):
        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            raise ValueError(f"cannot open video {self.source!r} with OpenCV")
        return capture

    def __iter__(self):
        capture = self._open()
        try:
            declared = 0 if isinstance(self.source, int) else max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
            lossy = not _lossless(capture)
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok and index >= declared:
                    return
                yield self._frame(frame, index, lossy) if ok else ValueError(
                    f"frame {index} of {self.source} cannot be decoded: OpenCV read no image where the file declares "
                    f"{declared} frames (damaged or truncated data, or a codec OpenCV lacks); the frames after it are read on")
                index += 1
        finally:
            capture.release()

    def _frame(self, frame, index: int, lossy: bool):
        """A decoded BGR frame as RGB, or as a mask (the error in its place if it cannot be one)."""
        if not self.as_mask:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
        try:
            return mask_from_stored(frame, f"frame {index} of {self.source}", lossy=lossy, faint="background")
        except ValueError as error:
            return error


def _lossless(capture) -> bool:
    """Whether the opened video stores its frames exactly (by codec and pixel format)."""

    def fourcc(prop: int) -> str:
        return (int(capture.get(prop)) & 0xFFFFFFFF).to_bytes(4, "little").decode("latin-1")

    codec = fourcc(cv2.CAP_PROP_FOURCC)
    if codec == "\x00" * 4:  # uncompressed: exact unless stored as chroma-subsampled YUV
        return fourcc(cv2.CAP_PROP_CODEC_PIXEL_FORMAT) in _EXACT_RAW_FORMATS
    return codec in _LOSSLESS_CODECS
