"""NIfTI volumes through nibabel (the ``nifti`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import write_atomically
from .labels import stored_labels
from .paths import VOLUME_SUFFIXES, is_volume


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
        array = stored_labels(array)
    elif array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.float32)
    return np.ascontiguousarray(array), volume


def write_volume(path: str | os.PathLike, volume: np.ndarray, like=None, *, affine: np.ndarray | None = None) -> Path:
    """Write ``volume`` (H x W x D) as NIfTI atomically, with the affine and header of ``like``
    (the ``nifti_image`` from :func:`read_volume`), or with ``affine`` (4 x 4 RAS, e.g.
    ``DicomSeries.affine``: spacing and orientation of a DICOM series); identity without either."""
    nibabel = _nibabel()
    path = Path(path)
    if not is_volume(path):
        raise ValueError(f"cannot write {path}: not a NIfTI name (expected one of {VOLUME_SUFFIXES})")
    volume = np.asarray(volume)
    if volume.ndim != 3 or volume.size == 0:
        raise ValueError(f"volume must be H x W x D with voxels, got shape {volume.shape}")
    if volume.dtype == bool:
        volume = volume.astype(np.uint8)
    if volume.dtype.kind not in "iuf" or volume.dtype == np.float16:
        raise TypeError(f"volume must hold integers or float32/float64 (what NIfTI stores), got dtype {volume.dtype}")
    if like is not None and tuple(like.shape[:3]) != volume.shape:
        raise ValueError(f"volume shape {volume.shape} does not match the reference volume {tuple(like.shape)}")
    if like is not None and affine is not None:
        raise ValueError("give like or affine, not both")
    header = None if like is None else like.header.copy()
    image = nibabel.Nifti1Image(volume, like.affine if like is not None else affine, header)
    image.set_data_dtype(volume.dtype)
    if header is not None:
        image.header.set_slope_inter(1, 0)  # labels are stored as they are, never rescaled
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"  # nibabel compresses by name
    return write_atomically(path, suffix, lambda tmp: nibabel.save(image, tmp))
