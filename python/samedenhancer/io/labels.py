"""The one rule that turns a mask as a file stores it into the label map or soft map the runtime
reads: :func:`mask_from_stored`, shared by :func:`samedenhancer.io.read_mask` and the frame
readers (videos and DICOM loops of masks), and :func:`stored_labels` for label volumes."""

from __future__ import annotations

import numpy as np


def mask_from_stored(array: np.ndarray, source: str, *, lossy: bool = False, top: int | None = None,
                     faint: str = "refuse") -> np.ndarray:
    """The H x W mask in ``array`` as a file stored it, or a ``ValueError`` naming ``source`` when
    it cannot be read without guessing.

    Parameters
    ----------
    array : ndarray, H x W or H x W x C
        Decoded pixels: grey, colour (any channel order) with an optional last alpha channel, or
        palette indices.
    source : str
        What the mask is (a path, ``"frame 3 of loop.avi"``), for messages.
    lossy : bool
        Whether the format compressed it lossily (JPEG, an MJPG / H.264 video, a JPEG DICOM).
        A lossy mask is binary: foreground where the brightest colour channel is above the
        midpoint of the range (127 for 8 bits), returned as ``0`` / ``top`` in the stored dtype
        (a 0/255 JPEG comes back 0/255).
    top : int, optional
        The largest value the format stores (default: the dtype's; ``2**BitsStored - 1`` for DICOM).
    faint : {"refuse", "background"}
        A lossy mask with values above 0 but none above the midpoint: ``"refuse"`` (still images:
        a 0/1 mask stored lossily cannot be told from compression noise) or ``"background"``
        (inter-frame video codecs leave such residue in empty frames).

    Returns
    -------
    ndarray, H x W
        Lossless: the stored values, as :func:`stored_labels` gives them (exact labels; soft float
        maps kept). Lossy: ``0`` / ``top``.

    Raises
    ------
    TypeError
        A dtype that holds no numbers (complex, structured).
    ValueError
        Colour channels that differ in a lossless mask (a colour-coded map: its classes cannot be
        read from one channel), an alpha channel that is not opaque everywhere, NaN or infinite
        values, or a faint lossy mask with ``faint="refuse"``.
    """
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{source}: a mask holds numbers (bool, integers or floats), got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] in (2, 4):  # grey + alpha, colour + alpha
        array = _opaque(array, source)
    if lossy:
        return _binary(array, source, top, faint)
    if array.ndim == 3 and array.shape[2] == 3:
        array = _grey(array, source)
    if array.ndim != 2:
        raise ValueError(f"{source}: expected an H x W mask (or grey / colour pixels), got shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{source}: the mask holds {int(np.isnan(array).sum())} NaN and "
                         f"{int(np.isinf(array).sum())} infinite values; a mask needs finite values")
    return stored_labels(np.ascontiguousarray(array))


def _opaque(array: np.ndarray, source: str) -> np.ndarray:
    """``array`` without its last (alpha) channel, which must be opaque everywhere."""
    alpha = array[..., -1]
    full = np.iinfo(array.dtype).max if array.dtype.kind in "iu" else True if array.dtype == bool else 1.0
    if not (alpha == full).all():
        raise ValueError(f"{source}: its alpha channel is not opaque everywhere, so whether the mask is in the "
                         "colours or in the transparency cannot be told: store the mask as a grey or palette PNG")
    return array[..., :-1] if array.shape[2] == 4 else array[..., 0]


def _grey(array: np.ndarray, source: str) -> np.ndarray:
    """One channel of a colour mask whose channels are equal everywhere."""
    differ = int((array != array[..., :1]).any(axis=2).sum())
    if differ:
        raise ValueError(f"{source}: a colour mask whose channels differ at {differ} of {array.shape[0] * array.shape[1]} "
                         "pixels (a colour-coded label map): its classes cannot be read from one channel; store labels "
                         "as a grey or palette (indexed) PNG, or as .npy")
    return array[..., 0]


def _binary(array: np.ndarray, source: str, top: int | None, faint: str) -> np.ndarray:
    """A lossily stored mask as 0 / ``top``: foreground above the midpoint of the range."""
    if array.dtype.kind not in "iu":
        raise ValueError(f"{source}: a lossy mask of dtype {array.dtype} (expected integer pixels)")
    grey = array.max(axis=2) if array.ndim == 3 else array
    if grey.ndim != 2:
        raise ValueError(f"{source}: expected an H x W mask (or grey / colour pixels), got shape {array.shape}")
    top = int(np.iinfo(array.dtype).max if top is None else top)
    middle = top // 2
    foreground = grey > middle
    brightest = int(grey.max()) if grey.size else 0
    if faint == "refuse" and 0 < brightest <= middle:
        raise ValueError(f"{source}: a lossy mask is read as binary (foreground above {middle}, the middle of 0..{top}), "
                         f"but its values reach only {brightest}: labels such as 0/1 do not survive lossy compression; "
                         f"store masks as PNG, TIFF or .npy (or 0/{top} if it must be lossy)")
    out = np.zeros(grey.shape, array.dtype)
    out[foreground] = top
    return out


def stored_labels(array: np.ndarray) -> np.ndarray:
    """Labels as the file stored them, in a label dtype: bool -> uint8; signed integers and floats
    holding only whole numbers >= 0 (labels saved as int16 or float) -> uint8 / uint16; anything
    else (soft maps, negative values) unchanged."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    signed = array.dtype.kind == "i" and array.dtype.itemsize < 4  # int8/int16: not a label dtype
    whole = array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all()
    if (signed or whole) and array.size and array.min() >= 0 and array.max() <= 65535:
        return array.astype(np.uint8 if array.max() <= 255 else np.uint16)
    return array
