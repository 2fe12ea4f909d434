"""Reading images, masks, volumes and frames from disk, and writing results atomically.

One place for file formats: every entry point (CLI, features, benchmarks) reads through here so
that unreadable or truncated files give the same clear error everywhere.

- :mod:`.paths`: which suffixes are read, stems, matching files by stem;
- :mod:`.images`: 2-D images and masks (OpenCV, tifffile, Pillow for palettes, ``.npy``, single-frame DICOM);
- :mod:`.dicom`: DICOM through pydicom (the ``dicom`` extra), cine loops as frames;
- :mod:`.dicom_series`: a DICOM series (folder of slices or multi-frame file) as a volume;
- :mod:`.seg`: DICOM SEG out (highdicom), and back onto a series' grid;
- :mod:`.nifti`: NIfTI volumes through nibabel (the ``nifti`` extra);
- :mod:`.video`: frames of a video file, capture device or DICOM loop;
- :mod:`.atomic`: the one atomic writer (temporary file, then rename) every output goes through;
- :mod:`.outputs`: output folders checked before any work (never an input folder, writable);
- :mod:`.labels`: the one rule that reads a stored mask (lossless exact, lossy binary, no colour guessing).
"""

from __future__ import annotations

from .atomic import remove_partial_files, write_atomically, write_text_atomically
from .dicom import DicomFrames
from .dicom_series import DicomSeries, read_dicom_series
from .images import read_array, read_image, read_mask, write_mask
from .nifti import read_volume, write_volume
from .outputs import prepare_output_folder
from .seg import read_seg, write_seg
from .paths import DICOM_SUFFIXES, IMAGE_SUFFIXES, VOLUME_SUFFIXES, files_by_stem, is_dicom, is_readable, is_volume, stem
from .video import VideoFrames, open_frames

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "VOLUME_SUFFIXES",
    "DicomFrames",
    "DicomSeries",
    "VideoFrames",
    "files_by_stem",
    "is_dicom",
    "is_readable",
    "is_volume",
    "open_frames",
    "prepare_output_folder",
    "read_array",
    "read_dicom_series",
    "read_image",
    "read_mask",
    "read_seg",
    "read_volume",
    "remove_partial_files",
    "stem",
    "write_atomically",
    "write_mask",
    "write_seg",
    "write_text_atomically",
    "write_volume",
]
