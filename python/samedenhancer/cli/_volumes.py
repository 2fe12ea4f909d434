"""Volumes on the command line: a scan is a NIfTI file, a DICOM series folder or a multi-frame
DICOM file; labels go out as NIfTI (with the scan's geometry) or as a DICOM SEG referencing the
series."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import io


def is_series(path: Path) -> bool:
    """A DICOM series: a folder holding DICOM files, or a multi-frame DICOM file with per-frame
    plane positions."""
    if path.is_dir():
        return any(io.is_dicom(p) for p in path.iterdir() if p.is_file())
    if not (path.is_file() and io.is_dicom(path)):
        return False
    import pydicom

    header = pydicom.dcmread(path, stop_before_pixels=True)
    return "PerFrameFunctionalGroupsSequence" in header


def read_scan(path: Path):
    """``(volume H x W x D, reference)``: reference is the NIfTI image or the DicomSeries."""
    if io.is_volume(path):
        return io.read_volume(path)
    series = io.read_dicom_series(path)
    return series.volume, series


def read_labels(path: Path, reference) -> np.ndarray:
    """A label volume for ``reference``'s grid: NIfTI, or a DICOM SEG of the series."""
    if io.is_volume(path):
        labels, _ = io.read_volume(path, as_mask=True)
    elif isinstance(reference, io.DicomSeries):
        labels = io.read_seg(path, reference)
    else:
        raise ValueError(f"{path}: a label volume for a NIfTI scan must be NIfTI")
    return labels


def write_labels(out: Path, labels: np.ndarray, reference, fmt: str) -> Path:
    """``fmt`` "seg" (DICOM source only) or "nifti"."""
    if fmt == "seg":
        if not isinstance(reference, io.DicomSeries):
            raise ValueError("--format seg needs a DICOM series as the scan (a SEG references its images)")
        return io.write_seg(out, labels, reference)
    if isinstance(reference, io.DicomSeries):
        return io.write_volume(out, labels, affine=reference.affine)
    return io.write_volume(out, labels, reference)


def output_path(out: Path, name: str, fmt: str) -> Path:
    """``out`` itself when it names a file of the format, else ``out/<name>.<suffix>``."""
    suffix = ".dcm" if fmt == "seg" else ".nii.gz"
    if out.name.lower().endswith((".dcm", ".nii", ".nii.gz")):
        return out
    return out / f"{name}{suffix}"
