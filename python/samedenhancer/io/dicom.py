"""DICOM through pydicom (the ``dicom`` extra): single-frame images and multi-frame cine loops."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .labels import mask_from_stored


def _pydicom():
    try:
        import pydicom
    except ImportError as exc:
        raise ImportError("reading DICOM files needs pydicom: pip install 'samedenhancer[dicom]'") from exc
    return pydicom


def read_dataset(path: Path):
    """The dataset of a DICOM file that holds an image (pixel data not decoded yet)."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    pydicom = _pydicom()
    from pydicom import uid

    try:
        try:
            dataset = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:  # no preamble / File Meta (older devices): read the raw dataset
            dataset = pydicom.dcmread(path, force=True)
            if "PixelData" not in dataset:
                raise
    except Exception as exc:  # pydicom raises many types for damaged files
        raise ValueError(f"cannot read {path}: not a readable DICOM file ({exc})") from exc
    if "PixelData" not in dataset:
        kind = dataset.get("Modality", "") or getattr(dataset.get("SOPClassUID", ""), "name", "")
        raise ValueError(f"{path}: the DICOM file holds no image (no pixel data; {kind or 'unknown kind'})")
    if "TransferSyntaxUID" not in dataset.file_meta:  # uncompressed, as the raw dataset was encoded
        implicit, little = dataset.original_encoding
        dataset.file_meta.TransferSyntaxUID = (
            uid.ImplicitVRLittleEndian if implicit else uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian
        )
    return dataset


def frame_count(dataset) -> int:
    return int(dataset.get("NumberOfFrames") or 1)


def dicom_pixels(dataset, path: Path, index: int | None, *, as_mask: bool = False) -> np.ndarray:
    """Frame ``index`` (all frames when None) as the model reads it: colour as RGB (YBR converted,
    palettes applied); grey through the modality LUT (Rescale Slope / Intercept: CT in HU) with
    MONOCHROME1 inverted so that higher is brighter; uint8 / uint16 kept, float32 otherwise.

    With ``as_mask`` the values a mask stores: the modality LUT applies (it says what the values
    mean), but neither a palette (its indices are the labels) nor the MONOCHROME1 inversion (a
    matter of display).
    """
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    try:
        pixels = pixel_array(dataset, index=index)
    except Exception as exc:  # a missing decoder plugin, truncated or inconsistent pixel data
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "unknown transfer syntax")
        what = f"frame {index} of {path}" if index is not None and frame_count(dataset) > 1 else f"the pixel data of {path}"
        raise ValueError(f"cannot decode {what} ({name}): {exc}") from exc
    photometric = str(dataset.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR" and not as_mask:
        return np.ascontiguousarray(apply_color_lut(pixels, dataset))
    if photometric.startswith("MONOCHROME"):
        slope, intercept = float(dataset.get("RescaleSlope", 1) or 1), float(dataset.get("RescaleIntercept", 0) or 0)
        if "ModalityLUTSequence" in dataset or (slope, intercept) != (1.0, 0.0):
            pixels = apply_modality_lut(pixels, dataset)
        if pixels.dtype not in (np.uint8, np.uint16) and not (as_mask and pixels.dtype.kind in "iu"):
            pixels = pixels.astype(np.float32)
        if photometric == "MONOCHROME1" and not as_mask:  # stored low = white
            if pixels.dtype == np.float32:
                pixels = -pixels
            else:
                top = min(2 ** int(dataset.get("BitsStored") or 8 * pixels.itemsize) - 1, np.iinfo(pixels.dtype).max)
                pixels = (top - np.minimum(pixels, top)).astype(pixels.dtype)
    return np.ascontiguousarray(pixels)


def is_lossy(dataset) -> bool:
    """Whether the pixel data went through lossy compression: Lossy Image Compression says so, or
    the transfer syntax is one that loses information (JPEG baseline / extended, JPEG-LS
    near-lossless, JPEG 2000 or HTJ2K not marked lossless, MPEG / H.264 / HEVC)."""
    from pydicom import uid

    marked = str(dataset.get("LossyImageCompression", "")).strip()
    if marked in ("00", "01"):
        return marked == "01"
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    lossy = {uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLSNearLossless, uid.JPEG2000, uid.JPEG2000MC, uid.HTJ2K}
    return syntax in lossy or syntax in getattr(uid, "MPEGTransferSyntaxes", ())


def stored_top(dataset) -> int | None:
    """The largest value a file's pixels can hold (``2**BitsStored - 1``), or None when it does not say."""
    bits = dataset.get("BitsStored")
    return 2 ** int(bits) - 1 if bits else None


def _dicom_fps(dataset) -> float:
    """Frame rate a DICOM cine loop declares (Cine Rate, Recommended Display Frame Rate or Frame
    Time), 0 when it declares none."""
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        value = dataset.get(keyword)
        if value:
            return float(value)
    frame_time = dataset.get("FrameTime")  # milliseconds
    return 1000.0 / float(frame_time) if frame_time else 0.0


class DicomFrames:
    """Frames of a DICOM file (an ultrasound or endoscopy cine loop, any multi-frame image; a
    single-frame file gives one frame), decoded one at a time as :func:`read_image` decodes a
    single-frame file.

    Parameters
    ----------
    path : path
        A DICOM file with pixel data.
    as_mask : bool
        Yield H x W masks read as :func:`samedenhancer.io.read_mask` reads a DICOM mask (stored
        values; binary 0 / top for a lossy transfer syntax): for coarse masks stored as DICOM.

    Attributes
    ----------
    fps : float
        Frame rate the file declares (Cine Rate, Recommended Display Frame Rate or Frame Time);
        0 when it declares none.
    size : tuple of int
        ``(H, W)`` of its frames.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not readable DICOM or holds no image.
    ImportError
        pydicom is not installed.

    Yields
    ------
    ndarray or ValueError
        Each frame; a frame that cannot be decoded (damaged data), or a mask frame that cannot be
        read, is yielded as the ``ValueError`` saying which frame and why, in its place, so that
        one bad frame does not end the loop (:func:`samedenhancer.stream` makes it that frame's
        error result).
    """

    def __init__(self, path: str | os.PathLike, *, as_mask: bool = False) -> None:
        self.path = Path(path)
        self.as_mask = as_mask
        self._dataset = read_dataset(self.path)
        self.fps = _dicom_fps(self._dataset)
        self.size = (int(self._dataset.Rows), int(self._dataset.Columns))

    def __len__(self) -> int:
        return frame_count(self._dataset)

    def __iter__(self):
        lossy, top = is_lossy(self._dataset), stored_top(self._dataset)
        for index in range(len(self)):
            try:
                frame = dicom_pixels(self._dataset, self.path, index, as_mask=self.as_mask)
                if self.as_mask:
                    frame = mask_from_stored(frame, f"frame {index} of {self.path}", lossy=lossy, top=top)
            except ValueError as error:  # this frame's error, not the loop's
                yield error
                continue
            yield frame
