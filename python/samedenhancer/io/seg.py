"""DICOM SEG through highdicom (the ``dicom`` extra): refined label volumes written as a
Segmentation that references its source series, one segment per class, so that a PACS or
3D Slicer shows it over the images; and SEG files read back onto a series' voxel grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .atomic import write_atomically
from .dicom_series import DicomSeries

__all__ = ["read_seg", "write_seg"]


def _highdicom():
    try:
        import highdicom
    except ImportError as exc:
        raise ImportError("writing DICOM SEG needs highdicom: pip install 'samedenhancer[dicom]'") from exc
    return highdicom


def write_seg(path: str | os.PathLike, labels: np.ndarray, series: DicomSeries, *,
              class_names: Mapping[int, str] | None = None, series_description: str = "samedenhancer refined") -> Path:
    """Write a label volume as a DICOM SEG (binary, one segment per class) referencing ``series``.

    Parameters
    ----------
    path : path
        Output file (written atomically).
    labels : ndarray, (rows, columns, slices)
        Label volume on the grid of ``series.volume`` (0 = background; bool or unsigned integers).
    series : DicomSeries
        The source series, from :func:`samedenhancer.io.read_dicom_series`.
    class_names : dict, optional
        Segment label per class (default ``"class <id>"``).
    series_description : str
        Series Description of the SEG.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Labels of another shape, negative, or without any class; a source image without a type-1
        attribute the SEG must copy (Study / Series / SOP Instance UID, SOP Class UID), or one
        highdicom cannot use otherwise (the message says which).
    TypeError
        Labels that are not bool or integers.

    Notes
    -----
    Segments are numbered 1..K in increasing class order (a DICOM SEG numbers its segments from 1
    without gaps); each segment's label carries the class name, and :func:`read_seg` maps the
    segments back as labels 1..K. Every class present in ``labels`` gets a segment; slices where a
    class is absent are omitted from its frames. The SEG copies the source's patient and study
    attributes; type-2 ones the source leaves out (Patient's Birth Date, Sex, Study ID, ...) are
    written empty, as the standard allows, without changing ``series``.
    """
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    labels = np.asarray(labels)
    if labels.shape != series.volume.shape:
        raise ValueError(f"labels must have the series' shape {series.volume.shape}, got {labels.shape}")
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if labels.dtype.kind not in "ui":
        raise TypeError(f"labels must be a bool or integer label volume, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got a minimum of {labels.min()}")
    classes = [int(c) for c in np.unique(labels) if c != 0]
    if not classes:
        raise ValueError("labels hold no class: a DICOM SEG needs at least one segment")
    names = dict(class_names or {})
    numbered = np.zeros(labels.shape, np.uint16)
    for number, class_id in enumerate(classes, start=1):
        numbered[labels == class_id] = number
    frames = np.moveaxis(numbered, 2, 0)  # (slices, rows, columns): one frame per source slice
    if series.frames:  # a multi-frame source: frames in the file's order
        frames = frames[np.argsort(series.frames)]
    algorithm = hd.AlgorithmIdentificationSequence(
        name="samedenhancer", version=_version(), family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=str(names.get(class_id, f"class {class_id}"))[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, class_id in enumerate(classes, start=1)
    ]
    source = _with_type2_attributes(series)
    try:
        seg = _segmentation(hd, source, frames, series, descriptions, series_description)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # what highdicom raises for a source it cannot use
        raise ValueError(f"cannot write a DICOM SEG referencing series {series.series_uid}: {exc}") from exc
    path = Path(path)
    return write_atomically(path, ".dcm", lambda tmp: seg.save_as(tmp))


#: Patient and study attributes of type 2 (present, may be empty) that highdicom copies from the
#: source into the SEG; sources written by some tools leave them out.
_TYPE2_SOURCE_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                            "StudyID", "AccessionNumber", "ReferringPhysicianName")
#: Attributes of type 1 (a value is required) that a SEG needs from its source.
_TYPE1_SOURCE_ATTRIBUTES = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def _with_type2_attributes(series: DicomSeries) -> list:
    """The source datasets, as shallow copies where a type-2 attribute was missing (added empty,
    as the standard allows), so that the SEG copies what the source has; a missing type-1
    attribute is a ``ValueError`` naming it."""
    source = []
    for dataset in series.datasets:
        missing = [k for k in _TYPE1_SOURCE_ATTRIBUTES if not dataset.get(k)]
        if missing:
            name = getattr(dataset, "filename", None) or dataset.get("SOPInstanceUID", "a source image")
            raise ValueError(f"cannot write a DICOM SEG referencing {name}: it has no {', '.join(missing)} "
                             "(required to reference the source)")
        absent = [k for k in _TYPE2_SOURCE_ATTRIBUTES if k not in dataset]
        if absent:
            dataset = _sharing_copy(dataset)
            for keyword in absent:
                setattr(dataset, keyword, "")
        source.append(dataset)
    return source


def _sharing_copy(dataset):
    """A new dataset holding the same data elements (pixel data not copied), so that elements added
    to it leave ``dataset`` as it was (``Dataset.copy`` shares the element table)."""
    from pydicom.dataset import Dataset

    copied = Dataset()
    for element in dataset:
        copied.add(element)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None:
        copied.file_meta = meta
    return copied


def _segmentation(hd, source, frames, series, descriptions, series_description):
    return hd.seg.Segmentation(
        source_images=source,
        pixel_array=frames if len(source) > 1 or series.frames else frames[0],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=int(source[0].get("SeriesNumber") or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="samedenhancer",
        manufacturer_model_name="samedenhancer",
        software_versions=_version(),
        device_serial_number="0",
        series_description=series_description,
    )


def read_seg(path: str | os.PathLike, series: DicomSeries) -> np.ndarray:
    """A DICOM SEG as a label volume on ``series``' grid (rows, columns, slices), uint16.

    Segment ``k`` becomes label ``k`` (:func:`write_seg` numbers the classes 1..K in increasing
    order, so a SEG written from labels 1..K reads back as written). Slices the SEG does not cover
    are 0.

    Raises
    ------
    ValueError
        The file is not a readable SEG, or it references none of ``series``' images.
    """
    hd = _highdicom()
    try:
        seg = hd.seg.segread(os.fspath(path))
    except Exception as exc:
        raise ValueError(f"cannot read {path}: not a readable DICOM SEG ({exc})") from exc
    out = np.zeros(series.volume.shape, np.uint16)
    if series.frames:
        uid = str(series.datasets[0].SOPInstanceUID)
        try:
            pixels = seg.get_pixels_by_source_frame(uid, list(series.frames), combine_segments=True,
                                                    ignore_spatial_locations=True)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{path} does not segment the frames of {uid}: {exc}") from exc
        return np.ascontiguousarray(np.moveaxis(pixels, 0, 2).astype(np.uint16))
    referenced = {str(u[2]) for u in seg.get_source_image_uids()}
    uids = [str(d.SOPInstanceUID) for d in series.datasets]
    present = [k for k, u in enumerate(uids) if u in referenced]
    if not present:
        raise ValueError(f"{path} references none of the series' {len(uids)} images")
    pixels = seg.get_pixels_by_source_instance([uids[k] for k in present], combine_segments=True,
                                               ignore_spatial_locations=True)
    out[:, :, present] = np.moveaxis(pixels, 0, 2)
    return out


def _version() -> str:
    from .._core import __version__

    return str(__version__)
