"""File names: which suffixes samedenhancer reads, stems, and matching files by stem."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Listing:
    """What a folder (or one file) holds for a command that matches files by stem.

    Attributes
    ----------
    files : dict of str to Path
        The readable files by stem, in name order.
    unusable : dict of str to str
        Entries that look like inputs but cannot be read, by stem, with why: a broken symbolic
        link, a folder named like an image (``x.jpg/``). Reported where the stem's file is missed.
    """

    files: dict[str, Path]
    unusable: dict[str, str]


def readable_files(folder: str | os.PathLike, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The readable files of ``folder`` in name order (hidden files skipped; ``suffixes`` narrows
    the choice, e.g. :data:`IMAGE_SUFFIXES` for frames)."""
    return [item for item in sorted(Path(folder).iterdir())
            if not item.name.startswith(".") and item.is_file()
            and (is_readable(item) if suffixes is None else item.suffix.lower() in suffixes)]


def list_by_stem(path: str | os.PathLike) -> Listing:
    """The readable files of folder ``path`` by stem (hidden files skipped), or ``{stem(path): path}``
    when ``path`` is one file; see :class:`Listing`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (a broken symbolic link is named as one).
    ValueError
        If two files share a stem (``x.png`` and ``x.npy``): which one is meant is not known.
    """
    path = Path(path)
    if path.is_file():
        return Listing({stem(path): path}, {})
    if not path.is_dir():
        if path.is_symlink():
            raise FileNotFoundError(f"{path} is a broken symbolic link (to {os.readlink(path)})")
        raise FileNotFoundError(f"no such file or directory: {path}")
    files: dict[str, Path] = {}
    unusable: dict[str, str] = {}
    for item in sorted(path.iterdir()):
        if item.name.startswith(".") or not is_readable(item):
            continue
        key = stem(item)
        if item.is_file():
            if key in files:
                raise ValueError(f"{path} holds two files with the stem {key!r}: {files[key].name} and {item.name}; "
                                 "keep one (which one is meant is not known)")
            files[key] = item
        elif item.is_symlink() and not item.exists():
            unusable[key] = f"{item.name} is a broken symbolic link (to {os.readlink(item)})"
        elif item.is_dir():
            unusable[key] = f"{item.name} is a folder, not a file"
    return Listing(files, {key: why for key, why in unusable.items() if key not in files})


def files_by_stem(path: str | os.PathLike) -> dict[str, Path]:
    """The readable files of folder ``path`` by stem, or ``{stem(path): path}`` when ``path`` is one
    file: :attr:`Listing.files` of :func:`list_by_stem` (same errors)."""
    return list_by_stem(path).files
