"""DICOM series as volumes (the ``dicom`` extra): a folder of single-frame slices, or one
multi-frame (enhanced) file, read into an H x W x D array with its spacing, origin and direction.

Slices are grouped by Series Instance UID and sorted by their position along the slice normal
(``ImagePositionPatient`` projected on ``row x column`` of ``ImageOrientationPatient``), never by
file name or Instance Number. What would give a silently wrong stack is an error that says which
slices are at fault: several series in one folder (pick one with ``series_uid``), slices of another
orientation or size, two slices at one position, and a missing slice or an uneven step (a
``UserWarning`` naming the gap instead with ``on_gap="warn"``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dicom import _pydicom, dicom_pixels, frame_count, read_dataset

__all__ = ["DicomSeries", "read_dicom_series"]

#: Relative tolerance on the slice step (and on orientation cosines, absolute).
STEP_TOLERANCE = 0.05


@dataclass(frozen=True)
class DicomSeries:
    """A DICOM series read as a volume.

    Attributes
    ----------
    volume : ndarray, (rows, columns, slices)
        Voxels as :func:`samedenhancer.io.read_image` reads a slice (grey through the modality LUT:
        CT in HU as float32; uint8 / uint16 kept when no rescale applies), slices in order along
        the slice normal.
    spacing : tuple of float
        Millimetres between voxel centres along the three array axes: (row spacing, column
        spacing, slice step).
    origin : ndarray, (3,)
        Patient position (DICOM LPS, mm) of voxel (0, 0, 0).
    direction : ndarray, (3, 3)
        Column ``i`` is the unit LPS vector along array axis ``i``, so the position of voxel
        ``ijk`` is ``origin + direction @ (spacing * ijk)``.
    datasets : tuple
        The pydicom datasets, one per slice in volume order (one dataset for a multi-frame file):
        the source a DICOM SEG refers to.
    frames : tuple of int
        For a multi-frame file, the frame number (1-based) of each slice; empty for a folder.
    series_uid : str
    """

    volume: np.ndarray
    spacing: tuple
    origin: np.ndarray
    direction: np.ndarray
    datasets: tuple
    frames: tuple
    series_uid: str

    @property
    def affine(self) -> np.ndarray:
        """4 x 4 voxel-to-world matrix in NIfTI's RAS convention (LPS with x and y negated), for
        :func:`samedenhancer.io.write_volume`."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        affine[:3, 3] = self.origin
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def read_dicom_series(path: str | os.PathLike, *, series_uid: str | None = None, on_gap: str = "error") -> DicomSeries:
    """Read a DICOM series (a folder of single-frame slices, or one multi-frame file) as a volume.

    Parameters
    ----------
    path : path
        A folder (files that are not DICOM images are skipped; sub-folders are not searched) or
        one multi-frame DICOM file (enhanced CT / MR, legacy-converted enhanced, any multi-frame
        image with per-frame plane positions).
    series_uid : str, optional
        The Series Instance UID to read when the folder holds more than one series.
    on_gap : {"error", "warn"}
        A missing slice or a slice step that varies by more than 5 %: ``"error"`` raises
        ``ValueError`` naming the gap, ``"warn"`` stacks the slices anyway (spacing = the median
        step) and says so with a ``UserWarning``.

    Returns
    -------
    DicomSeries

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        No DICOM image, several series without ``series_uid``, slices of different orientation or
        size, two slices at one position, missing position / orientation attributes, or a gap
        (with ``on_gap="error"``).
    ImportError
        pydicom is not installed.
    """
    if on_gap not in ("error", "warn"):
        raise ValueError(f"on_gap must be 'error' or 'warn', got {on_gap!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        return _read_multiframe(path, on_gap)
    pydicom = _pydicom()
    headers = []
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception:  # not DICOM (a README, a DICOMDIR without File Meta...): skipped
            continue
        if "Rows" in header and "SeriesInstanceUID" in header:
            headers.append((file, header))
    if not headers:
        raise ValueError(f"{path}: no DICOM image found in the folder")
    series = {}
    for file, header in headers:
        series.setdefault(str(header.SeriesInstanceUID), []).append((file, header))
    if series_uid is None:
        if len(series) > 1:
            listing = "; ".join(
                f"{uid} ({len(items)} files, {items[0][1].get('SeriesDescription', '') or 'no description'})"
                for uid, items in sorted(series.items())
            )
            raise ValueError(f"{path} holds {len(series)} series: pass series_uid= one of {listing}")
        series_uid = next(iter(series))
    if series_uid not in series:
        raise ValueError(f"series_uid {series_uid!r} is not in {path}; it holds {sorted(series)}")
    items = series[series_uid]
    multiframe = [file.name for file, header in items if frame_count(header) > 1]
    if multiframe:
        raise ValueError(f"{path}: series {series_uid} mixes multi-frame files ({', '.join(multiframe)}); "
                         "read a multi-frame file on its own")
    names = [file.name for file, _ in items]
    orientations = [_floats(h, "ImageOrientationPatient", 6, file.name) for file, h in items]
    positions = [_floats(h, "ImagePositionPatient", 3, file.name) for file, h in items]
    spacings = [_floats(h, "PixelSpacing", 2, file.name) for file, h in items]
    sizes = [(int(h.Rows), int(h.Columns)) for _, h in items]
    order, step = _order(names, orientations, positions, spacings, sizes, f"{path}", on_gap)
    datasets = [read_dataset(items[i][0]) for i in order]
    slices = [dicom_pixels(d, items[i][0], None) for d, i in zip(datasets, order)]
    if any(s.ndim != 2 for s in slices):
        raise ValueError(f"{path}: series {series_uid} holds colour slices; a volume needs grey slices")
    volume = _stack(slices)
    first = order[0]
    return DicomSeries(volume, (spacings[first][0], spacings[first][1], step), positions[first],
                       _direction(orientations[first]), tuple(datasets), (), series_uid)


def _read_multiframe(path: Path, on_gap: str) -> DicomSeries:
    """A multi-frame file as a volume: per-frame plane positions from the functional groups."""
    dataset = read_dataset(path)
    n = frame_count(dataset)
    shared = dataset.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != n:
        raise ValueError(f"{path}: a multi-frame file without per-frame plane positions "
                         "(PerFrameFunctionalGroupsSequence) is not a volume (a cine loop? see DicomFrames)")

    def group(index: int, sequence: str, keyword: str, count: int):
        for groups in (per_frame[index], shared):
            if groups is not None and sequence in groups and keyword in groups[sequence][0]:
                return _floats(groups[sequence][0], keyword, count, f"{path.name} frame {index + 1}")
        if keyword in dataset:
            return _floats(dataset, keyword, count, path.name)
        raise ValueError(f"{path}: frame {index + 1} has no {keyword} (in {sequence} or the dataset)")

    names = [f"frame {i + 1}" for i in range(n)]
    orientations = [group(i, "PlaneOrientationSequence", "ImageOrientationPatient", 6) for i in range(n)]
    positions = [group(i, "PlanePositionSequence", "ImagePositionPatient", 3) for i in range(n)]
    spacings = [group(i, "PixelMeasuresSequence", "PixelSpacing", 2) for i in range(n)]
    sizes = [(int(dataset.Rows), int(dataset.Columns))] * n
    order, step = _order(names, orientations, positions, spacings, sizes, str(path), on_gap)
    pixels = dicom_pixels(dataset, path, None)
    if pixels.ndim != 3:
        raise ValueError(f"{path}: expected {n} grey frames, got pixel data of shape {pixels.shape}")
    slopes = []
    for i in range(n):  # enhanced CT / MR keep Rescale Slope / Intercept in the functional groups
        for groups in (per_frame[i], shared):
            if groups is not None and "PixelValueTransformationSequence" in groups:
                item = groups.PixelValueTransformationSequence[0]
                slopes.append((float(item.get("RescaleSlope", 1)), float(item.get("RescaleIntercept", 0))))
                break
        else:
            slopes.append((1.0, 0.0))
    slices = [pixels[i] for i in order]
    if any(s != (1.0, 0.0) for s in slopes):
        slices = [pixels[i].astype(np.float32) * np.float32(slopes[i][0]) + np.float32(slopes[i][1]) for i in order]
    first = order[0]
    return DicomSeries(_stack(slices), (spacings[first][0], spacings[first][1], step), positions[first],
                       _direction(orientations[first]), (dataset,), tuple(i + 1 for i in order),
                       str(dataset.SeriesInstanceUID))


def _floats(dataset, keyword: str, count: int, name: str) -> np.ndarray:
    value = dataset.get(keyword)
    if value is None or len(value) != count:
        raise ValueError(f"{name}: {keyword} must hold {count} numbers, got {value!r} "
                         "(a slice without it cannot be placed in a volume)")
    return np.asarray([float(v) for v in value])


def _direction(orientation: np.ndarray) -> np.ndarray:
    """Columns: LPS unit vectors of array axes (rows, columns, slices)."""
    row_cosine, column_cosine = orientation[:3], orientation[3:]  # along a row (x), down a column (y)
    return np.stack([column_cosine, row_cosine, np.cross(row_cosine, column_cosine)], axis=1)


def _order(names, orientations, positions, spacings, sizes, where: str, on_gap: str):
    """Indices of the slices sorted along the slice normal and the slice step, after checking that
    they form one regular stack."""
    for name, orientation, spacing, size in zip(names, orientations, spacings, sizes):
        if np.abs(orientation - orientations[0]).max() > 1e-3:
            raise ValueError(f"{where}: {name} has orientation {orientation.round(4).tolist()}, {names[0]} "
                             f"{orientations[0].round(4).tolist()}: not one stack (a localizer in the series?)")
        if size != sizes[0] or np.abs(spacing - spacings[0]).max() > 1e-3:
            raise ValueError(f"{where}: {name} is {size} pixels of {spacing.tolist()} mm, {names[0]} "
                             f"{sizes[0]} of {spacings[0].tolist()} mm: not one stack")
    normal = _direction(orientations[0])[:, 2]
    along = np.array([float(p @ normal) for p in positions])
    order = [int(i) for i in np.argsort(along, kind="stable")]
    if len(order) == 1:
        return order, 1.0  # one slice: no step to measure (1 mm, as ITK assumes)
    steps = np.diff(along[order])
    for k, step in enumerate(steps):
        if step < 1e-3:
            a, b = names[order[k]], names[order[k + 1]]
            raise ValueError(f"{where}: {a} and {b} lie at the same position {along[order[k]]:.3f} mm along the "
                             "slice normal (several phases, echoes or a duplicate in one series)")
    median = float(np.median(steps))
    for k, step in enumerate(steps):
        if abs(step - median) > STEP_TOLERANCE * median:
            a, b = names[order[k]], names[order[k + 1]]
            missing = round(step / median) - 1
            what = f"{missing} missing slice(s)" if missing >= 1 else "an uneven step"
            message = (f"{where}: {what} between {a} ({along[order[k]]:.2f} mm) and {b} ({along[order[k + 1]]:.2f} mm):"
                       f" step {step:.2f} mm, the others {median:.2f} mm")
            if on_gap == "error":
                raise ValueError(message + " (on_gap='warn' stacks them anyway)")
            warnings.warn(message + f"; stacked with a {median:.2f} mm step", UserWarning, stacklevel=3)
    return order, median


def _stack(slices) -> np.ndarray:
    """Slices -> (rows, columns, slices); one dtype (float32 when the slices' rescaling differs)."""
    dtypes = {s.dtype for s in slices}
    if len(dtypes) > 1:
        slices = [s.astype(np.float32) for s in slices]
    return np.ascontiguousarray(np.stack(slices, axis=2))
