"""Reading images, masks, volumes and frames from disk, and writing results atomically.

One place for file formats: every entry point (CLI, features, benchmarks) reads through here so
that unreadable or truncated files give the same clear error everywhere.

- :mod:`.paths`: which suffixes are read, stems, listing a folder by stem;
- :mod:`.images`: 2-D images and masks (OpenCV, tifffile, Pillow for palettes, ``.npy``, single-frame DICOM);
- :mod:`.dicom`: DICOM through pydicom (the ``dicom`` extra), cine loops as frames;
- :mod:`.dicom_series`: a DICOM series (folder of slices or multi-frame file) as a volume;
- :mod:`.seg`: DICOM SEG out (highdicom), and back onto a series' grid;
- :mod:`.nifti`: NIfTI volumes through nibabel (the ``nifti`` extra);
- :mod:`.video`: frames of a video file, capture device or DICOM loop;
- :mod:`.atomic`: the one atomic writer (temporary file, then rename) every output goes through;
- :mod:`.outputs`: outputs checked before any work (never reaching an input, writable), and
  recognised as complete only when they read back;
- :mod:`.labels`: the one rule that reads a stored mask (lossless exact, lossy binary, no colour guessing).
"""

from __future__ import annotations

from .atomic import remove_partial_files, temporary_file, write_atomically, write_text_atomically
from .dicom import DicomFrames
from .dicom_series import DicomSeries, read_dicom_series
from .images import read_array, read_image, read_mask, write_mask
from .nifti import read_volume, write_volume
from .outputs import prepare_output_file, prepare_output_folder, reads_back
from .seg import read_seg, write_seg
from .paths import (DICOM_SUFFIXES, IMAGE_SUFFIXES, VOLUME_SUFFIXES, Listing, files_by_stem, is_dicom, is_readable,
                    is_volume, list_by_stem, readable_files, stem)
from .video import VideoFrames, open_frames

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "VOLUME_SUFFIXES",
    "DicomFrames",
    "DicomSeries",
    "Listing",
    "VideoFrames",
    "files_by_stem",
    "is_dicom",
    "is_readable",
    "is_volume",
    "list_by_stem",
    "open_frames",
    "prepare_output_file",
    "prepare_output_folder",
    "read_array",
    "read_dicom_series",
    "read_image",
    "read_mask",
    "read_seg",
    "read_volume",
    "readable_files",
    "reads_back",
    "remove_partial_files",
    "stem",
    "temporary_file",
    "write_atomically",
    "write_mask",
    "write_seg",
    "write_text_atomically",
    "write_volume",
]
