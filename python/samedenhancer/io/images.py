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
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
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


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write ``mask`` to ``path`` atomically (temporary file in the same folder, then rename).

    ``.npy`` keeps any dtype; image formats take uint8 or uint16 label maps.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return write_atomically(path, suffix, lambda tmp: np.save(tmp, mask, allow_pickle=False))
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    ok, encoded = cv2.imencode(suffix, mask)
    if not ok:
        raise ValueError(f"cannot encode a {mask.dtype} mask as {suffix}")
    return write_atomically(path, suffix, lambda tmp: Path(tmp).write_bytes(encoded.tobytes()))
