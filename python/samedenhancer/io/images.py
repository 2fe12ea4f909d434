"""2-D images and masks: OpenCV, tifffile, Pillow (palette images), numpy ``.npy`` and
single-frame DICOM in; masks out."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_atomically
from .dicom import dicom_pixels, frame_count, is_lossy, read_dataset, stored_top
from .labels import mask_from_stored
from .paths import DICOM_SUFFIXES, IMAGE_SUFFIXES, is_volume

#: Image formats that store 16-bit label maps; the others store 8 bits.
_SIXTEEN_BIT = (".png", ".tif", ".tiff")
#: Lossy formats: a label map written to them would come back with other labels.
_LOSSY = (".jpg", ".jpeg")
#: TIFF compressions that lose information (a mask stored with them is read as binary).
_LOSSY_TIFF = ("OJPEG", "JPEG", "JPEG_99", "ALT_JPEG", "JPEG_LOSSY", "JPEG_2000_LOSSY", "APERIO_JP2000_YCBC",
               "APERIO_JP2000_RGB", "JPEGXR_NDPI")


def _read_tiff(path: Path) -> tuple[np.ndarray, bool]:
    """The first image of a TIFF and whether its compression is lossy."""
    try:
        import tifffile
    except ImportError:  # OpenCV reads single-page 8/16-bit TIFFs, but drops colour on some
        return _read_cv2(path), False
    lossy = False
    try:
        with tifffile.TiffFile(path) as tiff:
            if not len(tiff.pages):
                raise ValueError("no image in it")
            lossy = getattr(tiff.pages[0], "compression", None) in [getattr(tifffile.COMPRESSION, name, None)
                                                                     for name in _LOSSY_TIFF]
            array = np.asarray(tiff.asarray())
        if array.size == 0:
            raise ValueError("no pixels in it")
    except Exception as exc:  # tifffile raises many types; OpenCV decodes some codecs it lacks
        try:
            return _read_cv2(path), lossy
        except ValueError:
            raise ValueError(f"cannot read {path}: a truncated or damaged TIFF ({exc})") from exc
    return array, lossy


def _decode_cv2(path: Path) -> np.ndarray:
    """The pixels OpenCV decodes from ``path``, as stored (colour in BGR(A) order)."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"cannot read {path}: the file is empty")
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # a header OpenCV refuses (e.g. a size past its limits)
        raise ValueError(f"cannot read {path}: not a readable image ({exc.err or exc})") from None
    if array is None:
        raise ValueError(f"cannot read {path}: not a readable image (truncated or wrong format)")
    return array


def _read_cv2(path: Path) -> np.ndarray:
    array = _decode_cv2(path)
    if array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    elif array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    return array


def _palette_indices(path: Path, suffix: str) -> np.ndarray | None:
    """The colour-table indices of a palette (indexed-colour) PNG or BMP; ``None`` for any other
    file. OpenCV would expand the palette into colours, which merges the classes of label maps
    whose palette repeats a colour and loses their numbers (VOC, Cityscapes)."""
    with open(path, "rb") as handle:
        header = handle.read(30)
    if suffix == ".png":  # the colour type byte of the IHDR chunk, 3 = indexed
        indexed = len(header) > 25 and header[:8] == b"\x89PNG\r\n\x1a\n" and header[25] == 3
    else:  # a BMP of 8 bits per pixel or fewer has a colour table
        indexed = len(header) >= 30 and header[:2] == b"BM" and int.from_bytes(header[28:30], "little") <= 8
    if not indexed:
        return None
    try:
        from PIL import Image
    except ImportError:
        if suffix == ".bmp":  # OpenCV gives a grey table's levels; colours are refused by the mask rule
            return None
        raise ImportError(f"{path} is a palette (indexed-colour) PNG: its labels are the palette indices, read with "
                          "Pillow (OpenCV gives the colours): pip install pillow") from None
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "PA"):  # a BMP with a grey table: Pillow reads its grey levels
                return None
            indices = np.asarray(image)
    except Exception as exc:  # Pillow raises many types for damaged files (and DecompressionBombError)
        raise ValueError(f"cannot read {path}: not a readable image (palette image: {exc})") from exc
    return np.ascontiguousarray(indices[..., 0] if indices.ndim == 3 else indices)


def _checked(path: str | os.PathLike) -> Path:
    """``path`` as a Path after checking that it names an existing 2-D image or ``.npy`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if is_volume(path):
        raise ValueError(f"cannot read {path} as a 2-D image: it is a NIfTI volume (read_volume; the CLI's enhance takes volumes)")
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot read {path}: unsupported suffix {suffix!r}, expected one of {IMAGE_SUFFIXES}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"cannot read {path}: not a readable .npy array ({exc})") from exc


def _single_frame(path: Path):
    """The dataset of a DICOM file holding one frame."""
    dataset = read_dataset(path)
    frames = frame_count(dataset)
    if frames != 1:
        raise ValueError(f"{path} holds {frames} frames (a cine loop or multi-frame image), not one 2-D image: "
                         "stream it (samedenhancer stream, io.DicomFrames)")
    return dataset


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
    path = _checked(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path)[0]
    if suffix in DICOM_SUFFIXES:
        return dicom_pixels(_single_frame(path), path, None)
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
    """Read a mask file as an H x W label map or soft map: the one place every command reads
    masks through, so that a mask is read the same way everywhere and never misread silently.

    - Lossless formats (PNG 8/16-bit, BMP, TIFF without JPEG compression, ``.npy``, uncompressed
      or lossless DICOM) give the stored values exactly: bool as uint8 0/1; labels stored as
      int8/int16 or as whole-number floats as uint8 / uint16; other floats (a soft map, e.g.
      probabilities) stay float; NaN or infinite values are refused.
    - Lossy formats (``.jpg`` / ``.jpeg``, JPEG-compressed TIFF, DICOM in a lossy transfer syntax)
      change values near edges (a 0/255 JPEG mask holds 15-18 grey levels), so they are binary
      masks: foreground where the brightest channel is above the middle of the range (127 for 8
      bits), returned as 0 / 255 (0 / the largest stored value). A lossy mask whose values never
      pass the middle but are not all 0 (a 0/1 mask saved as JPEG) is refused, not read as empty.
    - Palette (indexed-colour) PNG and BMP label maps give their palette indices, not the colours
      (VOC's colours share channels, so colours would merge classes). Pillow reads them; without
      Pillow a palette PNG is an ImportError and a colour-table BMP is refused as a colour mask,
      never read as colours. A palette TIFF gives its indices too (tifffile). DICOM masks give
      stored values (no palette colours, no MONOCHROME1 inversion: values are labels, not display).
    - Colour masks: channels equal everywhere read as grey; a lossless colour mask whose channels
      differ (a colour-coded label map) and an alpha channel that is not opaque everywhere are
      refused, since one channel would merge or lose classes.

    NIfTI label volumes are read by :func:`samedenhancer.io.read_volume` with ``as_mask=True``
    (the same label rule), masks in videos and DICOM loops by :func:`samedenhancer.io.open_frames`
    with ``as_mask=True`` (the same rule per frame).

    Parameters
    ----------
    path : path
        A ``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``, ``.bmp``, ``.npy`` or single-frame
        ``.dcm`` file.

    Returns
    -------
    ndarray, H x W
        uint8 / uint16 (or the ``.npy`` integer dtype) labels, or a float soft map.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be decoded (empty, truncated, unknown format) or the mask cannot be
        read without guessing (see above); the message names the file and what to do.
    TypeError
        If a ``.npy`` array holds no numbers (complex, structured).
    ImportError
        For a palette PNG without Pillow, or DICOM without pydicom.
    """
    path = _checked(path)
    suffix = path.suffix.lower()
    lossy, top = suffix in _LOSSY, None
    if suffix == ".npy":
        array = _read_npy(path)
    elif suffix in (".tif", ".tiff"):
        array, lossy = _read_tiff(path)
    elif suffix in DICOM_SUFFIXES:
        dataset = _single_frame(path)
        array, lossy, top = dicom_pixels(dataset, path, None, as_mask=True), is_lossy(dataset), stored_top(dataset)
    else:
        array = _palette_indices(path, suffix) if suffix in (".png", ".bmp") else None
        array = _decode_cv2(path) if array is None else array
    return mask_from_stored(array, str(path), lossy=lossy, top=top)


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
