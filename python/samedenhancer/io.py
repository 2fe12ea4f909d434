"""Reading images and masks from disk, and writing masks atomically.

One place for file formats: every entry point (CLI, datasets, benchmarks) reads through here so
that unreadable or truncated files give the same clear error everywhere. 2-D images and masks
through OpenCV / tifffile / numpy, DICOM files through pydicom (optional), NIfTI volumes through
nibabel (optional), videos through OpenCV.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

#: DICOM files (read with pydicom, the ``dicom`` extra): a single-frame file is a 2-D image, a
#: multi-frame one (an ultrasound cine loop) a stream of frames (:class:`DicomFrames`).
DICOM_SUFFIXES = (".dcm",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy") + DICOM_SUFFIXES
#: NIfTI volumes (read and written with nibabel, the ``nifti`` extra).
VOLUME_SUFFIXES = (".nii", ".nii.gz")


def stem(path: str | os.PathLike) -> str:
    """The file name without its format suffix (``case.nii.gz`` -> ``case``)."""
    name = Path(path).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def is_volume(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a NIfTI volume."""
    return Path(path).name.lower().endswith(VOLUME_SUFFIXES)


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a DICOM file (by its suffix)."""
    return Path(path).suffix.lower() in DICOM_SUFFIXES


def is_readable(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a suffix this module reads (an image, ``.npy``, DICOM or a NIfTI volume)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES or is_volume(path)


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
        dataset = _read_dicom(path)
        frames = _frame_count(dataset)
        if frames != 1:
            raise ValueError(f"{path} holds {frames} frames (a cine loop or multi-frame image), not one 2-D image: "
                             "stream it (samedenhancer stream, io.DicomFrames)")
        return _dicom_pixels(dataset, path, None)
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
    array = _as_mask(read_array(path))
    if array.ndim != 2:
        raise ValueError(f"{path}: expected an H x W mask, got shape {array.shape}")
    return array


def _as_mask(array: np.ndarray) -> np.ndarray:
    """A mask as stored in an image or frame: the first channel of a colour one, labels in a label
    dtype (:func:`_as_stored_labels`). Shared by :func:`read_mask` and the frame readers."""
    if array.ndim == 3:
        array = np.ascontiguousarray(array[..., 0])
    return _as_stored_labels(array)


def _as_stored_labels(array: np.ndarray) -> np.ndarray:
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


def _write_atomically(path: Path, suffix: str, write) -> Path:
    """Call ``write(temporary_path)`` on a temporary file (same folder, same ``suffix``), then
    rename it to ``path``: a killed process never leaves a half-written file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write ``mask`` to ``path`` atomically (temporary file in the same folder, then rename).

    ``.npy`` keeps any dtype; image formats take uint8 or uint16 label maps.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _write_atomically(path, suffix, lambda tmp: np.save(tmp, mask, allow_pickle=False))
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    ok, encoded = cv2.imencode(suffix, mask)
    if not ok:
        raise ValueError(f"cannot encode a {mask.dtype} mask as {suffix}")
    return _write_atomically(path, suffix, lambda tmp: Path(tmp).write_bytes(encoded.tobytes()))


def _pydicom():
    try:
        import pydicom
    except ImportError as exc:
        raise ImportError("reading DICOM files needs pydicom: pip install 'samedenhancer[dicom]'") from exc
    return pydicom


def _read_dicom(path: Path):
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


def _frame_count(dataset) -> int:
    return int(dataset.get("NumberOfFrames") or 1)


def _dicom_pixels(dataset, path: Path, index: int | None) -> np.ndarray:
    """Frame ``index`` (all frames when None) as the model reads it: colour as RGB (YBR converted,
    palettes applied); grey through the modality LUT (Rescale Slope / Intercept: CT in HU) with
    MONOCHROME1 inverted so that higher is brighter; uint8 / uint16 kept, float32 otherwise."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    try:
        pixels = pixel_array(dataset, index=index)
    except Exception as exc:  # a missing decoder plugin, truncated or inconsistent pixel data
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "unknown transfer syntax")
        raise ValueError(f"cannot decode the pixel data of {path} ({name}): {exc}") from exc
    photometric = str(dataset.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        return np.ascontiguousarray(apply_color_lut(pixels, dataset))
    if photometric.startswith("MONOCHROME"):
        slope, intercept = float(dataset.get("RescaleSlope", 1) or 1), float(dataset.get("RescaleIntercept", 0) or 0)
        if "ModalityLUTSequence" in dataset or (slope, intercept) != (1.0, 0.0):
            pixels = apply_modality_lut(pixels, dataset)
        if pixels.dtype not in (np.uint8, np.uint16):
            pixels = pixels.astype(np.float32)
        if photometric == "MONOCHROME1":  # stored low = white
            if pixels.dtype == np.float32:
                pixels = -pixels
            else:
                top = min(2 ** int(dataset.get("BitsStored") or 8 * pixels.itemsize) - 1, np.iinfo(pixels.dtype).max)
                pixels = (top - np.minimum(pixels, top)).astype(pixels.dtype)
    return np.ascontiguousarray(pixels)


def _dicom_fps(dataset) -> float:
    """Frame rate a DICOM cine loop declares (Cine Rate, Recommended Display Frame Rate or Frame
    Time), 0 when it declares none."""
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        value = dataset.get(keyword)
        if value:
            return float(value)
    frame_time = dataset.get("FrameTime")  # milliseconds
    return 1000.0 / float(frame_time) if frame_time else 0.0


def _nibabel():
    try:
        import nibabel
    except ImportError as exc:
        raise ImportError("reading and writing NIfTI volumes needs nibabel: pip install 'samedenhancer[nifti]'") from exc
    return nibabel


def read_volume(path: str | os.PathLike, *, as_mask: bool = False):
    """Read a 3-D NIfTI volume (``.nii`` / ``.nii.gz``) as ``(array, nifti_image)``.

    The array is H x W x D in the file's voxel order (slices along the last axis). Images keep
    uint8 / uint16 voxels and come back as float32 otherwise (signed CT / MRI intensities, scaled
    data). With ``as_mask`` the stored values are kept; labels saved as int8/int16 or as
    whole-number floats become uint8 / uint16 (as :func:`read_mask`). ``nifti_image`` carries the affine and
    header for :func:`write_volume`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable NIfTI volume or is not 3-D.
    ImportError
        If nibabel is not installed.
    """
    path = Path(path)
    if not is_volume(path):
        raise ValueError(f"cannot read {path}: not a NIfTI volume (expected one of {VOLUME_SUFFIXES})")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    nibabel = _nibabel()
    try:
        volume = nibabel.load(os.fspath(path))
        raw = np.asanyarray(volume.dataobj)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise ValueError(f"cannot read {path}: not a readable NIfTI volume ({exc})") from exc
    shape = raw.shape[:3] if raw.ndim == 4 and raw.shape[3] == 1 else raw.shape + (1,) * (raw.ndim == 2)
    if len(shape) != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {raw.shape}")
    array = np.asarray(raw).reshape(shape)
    if as_mask:
        array = _as_stored_labels(array)
    elif array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.float32)
    return np.ascontiguousarray(array), volume


def write_volume(path: str | os.PathLike, volume: np.ndarray, like=None) -> Path:
    """Write ``volume`` (H x W x D) as NIfTI atomically, with the affine and header of ``like``
    (the ``nifti_image`` from :func:`read_volume`; identity affine without it)."""
    nibabel = _nibabel()
    path = Path(path)
    if not is_volume(path):
        raise ValueError(f"cannot write {path}: not a NIfTI name (expected one of {VOLUME_SUFFIXES})")
    volume = np.asarray(volume)
    if volume.dtype == bool:
        volume = volume.astype(np.uint8)
    if like is not None and tuple(like.shape[:3]) != volume.shape:
        raise ValueError(f"volume shape {volume.shape} does not match the reference volume {tuple(like.shape)}")
    header = None if like is None else like.header.copy()
    image = nibabel.Nifti1Image(volume, None if like is None else like.affine, header)
    image.set_data_dtype(volume.dtype)
    if header is not None:
        image.header.set_slope_inter(1, 0)  # labels are stored as they are, never rescaled
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"  # nibabel compresses by name
    return _write_atomically(path, suffix, lambda tmp: nibabel.save(image, tmp))


def open_frames(source: str | os.PathLike | int, *, as_mask: bool = False):
    """The frames of ``source`` as an iterable with ``fps`` and ``size``: :class:`DicomFrames` for a
    DICOM file, :class:`VideoFrames` for a video file or capture device index."""
    if isinstance(source, (str, os.PathLike)) and is_dicom(source):
        return DicomFrames(source, as_mask=as_mask)
    return VideoFrames(source, as_mask=as_mask)


class DicomFrames:
    """Frames of a DICOM file (an ultrasound or endoscopy cine loop, any multi-frame image; a
    single-frame file gives one frame), decoded one at a time as :func:`read_image` decodes a
    single-frame file.

    Parameters
    ----------
    path : path
        A DICOM file with pixel data.
    as_mask : bool
        Yield H x W maps (the first channel of colour frames; int16 or whole-float labels as uint8 /
        uint16, as :func:`read_mask`): for coarse masks stored as DICOM.

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
        The file is not readable DICOM or holds no image; a frame that cannot be decoded raises it
        when it is reached.
    ImportError
        pydicom is not installed.
    """

    def __init__(self, path: str | os.PathLike, *, as_mask: bool = False) -> None:
        self.path = Path(path)
        self.as_mask = as_mask
        self._dataset = _read_dicom(self.path)
        self.fps = _dicom_fps(self._dataset)
        self.size = (int(self._dataset.Rows), int(self._dataset.Columns))

    def __len__(self) -> int:
        return _frame_count(self._dataset)

    def __iter__(self):
        for index in range(len(self)):
            frame = _dicom_pixels(self._dataset, self.path, index)
            yield _as_mask(frame) if self.as_mask else frame


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
                    yield _as_mask(frame)
                else:
                    yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
        finally:
            capture.release()
