"""File names: which suffixes samedenhancer reads, stems, and matching files by stem."""

from __future__ import annotations

import os
from pathlib import Path

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


def files_by_stem(path: str | os.PathLike) -> dict[str, Path]:
    """The readable files of folder ``path`` by stem (``{stem: path}``, first in name order wins;
    hidden files skipped), or ``{stem(path): path}`` when ``path`` is one file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if path.is_file():
        return {stem(path): path}
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or directory: {path}")
    found: dict[str, Path] = {}
    for item in sorted(path.iterdir()):
        if item.is_file() and is_readable(item) and not item.name.startswith("."):
            found.setdefault(stem(item), item)
    return found
