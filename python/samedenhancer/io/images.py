"""2-D images and masks: OpenCV, tifffile, numpy ``.npy`` and single-frame DICOM in; masks out."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_atomically
from .dicom import dicom_pixels, frame_count, read_dataset
from .labels import stored_mask
from .paths import DICOM_SUFFIXES, IMAGE_SUFFIXES, is_volume


def _read_tiff(path: Path) -> np.ndarray:
    try:
        import tifffile
    except ImportError:  # OpenCV reads single-page 8/16-bit TIFFs, but drops colour on some
        return _read_cv2(path)
    try:
        return np.asarray(tifffile.imread(path))
    except Exception as exc:  # tifffile raises many types; OpenCV decodes some codecs it lacks
        try:
            return _read_cv2(path)
        except ValueError:
            raise ValueError(f"cannot read {path}: not a readable TIFF ({exc})") from exc


def _read_cv2(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"cannot read {path}: the file is empty")
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # a header OpenCV refuses (e.g. a size past its limits)
        raise ValueError(f"cannot read {path}: not a readable image ({exc.err or exc})") from None
    if array is None:
        raise ValueError(f"cannot read {path}: not a readable image (truncated or wrong format)")
    if array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    elif array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    return array


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (png, jpg, tif, bmp, single-frame DICOM) or ``.npy`` array; colour comes
    back as RGB.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be decoded (empty, truncated, unknown format).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if is_volume(path):
        raise ValueError(f"cannot read {path} as a 2-D image: it is a NIfTI volume (read_volume; the CLI's enhance takes volumes)")
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot read {path}: unsupported suffix {suffix!r}, expected one of {IMAGE_SUFFIXES}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read {path}: not a readable .npy array ({exc})") from exc
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path)
    if suffix in DICOM_SUFFIXES:
        dataset = read_dataset(path)
        frames = frame_count(dataset)
        if frames != 1:
            raise ValueError(f"{path} holds {frames} frames (a cine loop or multi-frame image), not one 2-D image: "
                             "stream it (samedenhancer stream, io.DicomFrames)")
        return dicom_pixels(dataset, path, None)
    return _read_cv2(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as H x W (grey) or H x W x 3 (RGB), keeping its dtype."""
    array = read_array(path)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"{path}: expected an H x W or H x W x 3 image, got shape {array.shape}")
    return array


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a label map or soft map as H x W; an RGB(A) mask keeps its first channel. Labels stored
    as int8/int16 or as whole-number floats (DICOM and NumPy writers do both) come back as uint8 /
    uint16."""
    array = stored_mask(read_array(path))
    if array.ndim != 2:
        raise ValueError(f"{path}: expected an H x W mask, got shape {array.shape}")
    return array


#: Image formats that store 16-bit label maps; the others store 8 bits.
_SIXTEEN_BIT = (".png", ".tif", ".tiff")
#: Lossy formats: a label map written to them would come back with other labels.
_LOSSY = (".jpg", ".jpeg")


def _encodable(mask: np.ndarray, path: Path, suffix: str) -> np.ndarray:
    """``mask`` in the smallest unsigned dtype ``suffix`` stores without changing a value, or a
    ValueError / TypeError saying why it cannot be stored (never a clipped label)."""
    if mask.ndim not in (2, 3) or (mask.ndim == 3 and mask.shape[2] not in (1, 3, 4)) or mask.size == 0:
        raise ValueError(f"mask must be H x W (or H x W x 3 for an RGB picture) with pixels, got shape {mask.shape} for {path}")
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if mask.dtype.kind == "f" and suffix in (".tif", ".tiff") and mask.dtype.itemsize >= 4:
        return mask  # TIFF stores float32 / float64 as they are
    if mask.dtype.kind not in "iu":
        raise TypeError(f"{suffix} stores integer label maps, got a mask of dtype {mask.dtype} for {path}: "
                        "write soft maps as .npy or .tif")
    if mask.ndim == 2 and suffix in _LOSSY:
        raise ValueError(f"{suffix} is lossy and would change the labels of {path}: write masks as .png, .tif or .npy")
    low, high = int(mask.min()), int(mask.max())
    limit = 65535 if suffix in _SIXTEEN_BIT else 255
    if low < 0 or high > limit:
        raise ValueError(f"{suffix} stores labels 0..{limit}, the mask for {path} holds labels in [{low}, {high}]: "
                         f"write it as .npy{' or .png' if limit == 255 and high <= 65535 and low >= 0 else ''}")
    return mask.astype(np.uint8 if high <= 255 else np.uint16, copy=False)


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write ``mask`` to ``path`` atomically (temporary file in the same folder, then rename).

    ``.npy`` keeps any dtype. Image formats store label maps exactly or not at all: labels up to
    255 as 8-bit, up to 65535 as 16-bit (``.png`` and ``.tif``; ``.bmp`` holds 8 bits); larger or
    negative labels, float maps (except ``.tif``) and 2-D masks as lossy ``.jpg`` raise instead of
    being clipped.

    Raises
    ------
    ValueError
        For labels the format cannot hold, or an empty / badly shaped mask.
    TypeError
        For a dtype the format cannot hold (float in an 8/16-bit format, complex, object).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy array, got {type(mask).__name__}")
    if suffix == ".npy":
        if mask.dtype.hasobject:
            raise TypeError(f"mask must be a numeric array, got dtype {mask.dtype}")
        return write_atomically(path, suffix, lambda tmp: np.save(tmp, mask, allow_pickle=False))
    if suffix not in IMAGE_SUFFIXES or suffix in DICOM_SUFFIXES:
        raise ValueError(f"cannot write a mask as {suffix!r}: expected .png, .tif, .bmp or .npy for {path}")
    mask = _encodable(mask, path, suffix)
    ok, encoded = cv2.imencode(suffix, mask)
    if not ok:
        raise ValueError(f"cannot encode a {mask.dtype} mask as {suffix}")
    return write_atomically(path, suffix, lambda tmp: Path(tmp).write_bytes(encoded.tobytes()))
