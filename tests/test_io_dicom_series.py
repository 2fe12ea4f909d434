"""DICOM series in (folders of slices, multi-frame enhanced files, mixed folders, gaps) and DICOM
SEG out, on a real ACDC cardiac MRI volume written as an MR series and on pydicom's real CT
series."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from samedenhancer import io

pydicom = pytest.importorskip("pydicom", reason="DICOM support needs the dicom extra (pydicom)")
h5py = pytest.importorskip("h5py", reason="the ACDC volumes are HDF5 (h5py, in the test extra)")

SPACING = (1.5625, 1.40625, 10.0)  # rows, columns, slices (mm): ACDC-like, deliberately anisotropic
ORIENTATION = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)  # oblique rows, columns going down


def acdc_volume(data_root, name="patient011_frame01"):
    """A real ACDC volume as (image uint16 H x W x D, labels uint8 H x W x D)."""
    with h5py.File(Path(data_root) / "acdc" / "raw_h5" / f"{name}.h5") as handle:
        image, label = handle["image"][:], handle["label"][:]
    image = np.round(np.moveaxis(image, 0, 2) * 4095).astype(np.uint16)
    return np.ascontiguousarray(image), np.ascontiguousarray(np.moveaxis(label, 0, 2))


def write_series(folder: Path, volume: np.ndarray, *, series_uid=None, skip=(), names=None, positions=None):
    """Write ``volume`` (rows, columns, slices) as an MR series of single-frame files with the
    geometry above; files are named in reverse order so that sorting by name would be wrong."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study, frame_of_reference = generate_uid(prefix="1.2.826.0.1.3680043.8.498.1."), generate_uid()
    row, column = np.array(ORIENTATION[:3]), np.array(ORIENTATION[3:])
    normal = np.cross(row, column)
    origin = np.array([-120.0, 30.0, 80.0])
    depth = volume.shape[2]
    for k in range(depth):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame_of_reference
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "ACDC^011", "p011", "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "20260101", "120000", "1", "", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", 7, depth - k  # Instance Number runs backwards too
        ds.Manufacturer, ds.SeriesDescription = "test", "cine SA"
        ds.ImageOrientationPatient = list(ORIENTATION)
        at = origin + normal * SPACING[2] * k if positions is None else positions[k]
        ds.ImagePositionPatient = [float(v) for v in at]
        ds.PixelSpacing = [SPACING[0], SPACING[1]]
        ds.SliceThickness = SPACING[2]
        ds.Rows, ds.Columns = volume.shape[:2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(volume[:, :, k]).astype(np.uint16).tobytes()
        name = f"im{depth - k:03d}.dcm" if names is None else names[k]
        ds.save_as(folder / name, enforce_file_format=True)
    return series_uid


@pytest.fixture(scope="module")
def acdc(data_root):
    return acdc_volume(data_root)


def test_series_folder_reads_sorted_along_the_normal_with_geometry(tmp_path, acdc):
    image, _ = acdc
    write_series(tmp_path / "s", image)
    (tmp_path / "s" / "README.txt").write_text("not dicom")
    series = io.read_dicom_series(tmp_path / "s")
    assert series.volume.dtype == np.uint16 and np.array_equal(series.volume, image)  # file names run backwards
    assert np.allclose(series.spacing, SPACING)
    assert np.allclose(series.origin, [-120.0, 30.0, 80.0])
    row, column = np.array(ORIENTATION[:3]), np.array(ORIENTATION[3:])
    assert np.allclose(series.direction, np.stack([column, row, np.cross(row, column)], 1))
    # voxel (i, j, k) lies where the file of slice k says, at i rows and j columns from its corner
    i, j, k = 5, 7, 3
    position = np.asarray(series.datasets[k].ImagePositionPatient, float) + column * SPACING[0] * i + row * SPACING[1] * j
    assert np.allclose(series.origin + series.direction @ (np.array(series.spacing) * [i, j, k]), position)
    assert np.allclose(series.affine[:3, 3], [120.0, -30.0, 80.0])  # RAS: x and y negated


def test_mixed_folder_needs_a_series_uid_and_reads_the_one_asked_for(tmp_path, acdc):
    image, _ = acdc
    first = write_series(tmp_path / "mixed", image)
    second = write_series(tmp_path / "mixed", image[:, :, :3] // 2, names=["b1.dcm", "b2.dcm", "b3.dcm"])
    with pytest.raises(ValueError, match="holds 2 series: pass series_uid"):
        io.read_dicom_series(tmp_path / "mixed")
    assert np.array_equal(io.read_dicom_series(tmp_path / "mixed", series_uid=second).volume, image[:, :, :3] // 2)
    assert io.read_dicom_series(tmp_path / "mixed", series_uid=first).volume.shape == image.shape
    with pytest.raises(ValueError, match="series_uid"):
        io.read_dicom_series(tmp_path / "mixed", series_uid="1.2.3")


def test_missing_slice_and_uneven_spacing_are_named_never_stacked_silently(tmp_path, acdc):
    image, _ = acdc
    write_series(tmp_path / "gap", image, skip=(4,))
    with pytest.raises(ValueError, match=r"1 missing slice\(s\) between im006.dcm .* and im004.dcm"):
        io.read_dicom_series(tmp_path / "gap")
    with pytest.warns(UserWarning, match="missing slice"):
        series = io.read_dicom_series(tmp_path / "gap", on_gap="warn")
    assert series.volume.shape[2] == image.shape[2] - 1
    normal = np.cross(ORIENTATION[:3], ORIENTATION[3:])
    uneven = [normal * (10.0 * k + (3.0 if k >= 6 else 0.0)) for k in range(image.shape[2])]
    write_series(tmp_path / "uneven", image, positions=uneven)
    with pytest.raises(ValueError, match="an uneven step"):
        io.read_dicom_series(tmp_path / "uneven")
    write_series(tmp_path / "dup", image, positions=[normal * 10.0 * min(k, 5) for k in range(image.shape[2])])
    with pytest.raises(ValueError, match="same position"):
        io.read_dicom_series(tmp_path / "dup")
    with pytest.raises(ValueError, match="on_gap"):
        io.read_dicom_series(tmp_path / "dup", on_gap="ignore")
    with pytest.raises(FileNotFoundError):
        io.read_dicom_series(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM image"):
        io.read_dicom_series(tmp_path / "empty")


def test_pydicom_real_ct_series_reads_in_hu_and_a_localizer_is_refused(tmp_path):
    tests = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
    series = io.read_dicom_series(tests / "98892001" / "CT5N")
    assert series.volume.shape[2] == 5 and series.volume.dtype == np.float32  # Rescale Intercept: HU
    along = [float(np.asarray(d.ImagePositionPatient, float) @ series.direction[:, 2]) for d in series.datasets]
    assert along == sorted(along) and series.spacing[2] > 0
    # MR700 holds slices of three orientations (a localizer): refused, naming the odd file
    with pytest.raises(ValueError, match="orientation"):
        io.read_dicom_series(tests / "98892003" / "MR700")


def test_enhanced_multiframe_reads_as_the_series_it_came_from(tmp_path, acdc):
    hd = pytest.importorskip("highdicom", reason="DICOM SEG needs the dicom extra (highdicom)")
    image, _ = acdc
    write_series(tmp_path / "s", image)
    series = io.read_dicom_series(tmp_path / "s")
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        legacy_datasets=list(series.datasets), series_instance_uid=hd.UID(), series_number=8,
        sop_instance_uid=hd.UID(), instance_number=1)
    enhanced.save_as(tmp_path / "enhanced.dcm")
    multi = io.read_dicom_series(tmp_path / "enhanced.dcm")
    assert np.array_equal(multi.volume, image) and np.allclose(multi.spacing, SPACING)
    assert np.allclose(multi.origin, series.origin) and np.allclose(multi.direction, series.direction)
    with pytest.raises(ValueError, match="per-frame plane positions"):
        cine = Path(pydicom.__file__).parent / "data" / "test_files" / "SC_rgb_rle_2frame.dcm"
        io.read_dicom_series(cine)


def test_seg_round_trip_references_the_series_one_segment_per_class(tmp_path, acdc):
    hd = pytest.importorskip("highdicom", reason="DICOM SEG needs the dicom extra (highdicom)")
    image, labels = acdc
    write_series(tmp_path / "s", image)
    series = io.read_dicom_series(tmp_path / "s")
    out = io.write_seg(tmp_path / "out" / "seg.dcm", labels, series, class_names={1: "RV", 2: "MYO", 3: "LV"})
    assert [p.name for p in out.parent.iterdir()] == ["seg.dcm"]  # atomic: no temporary file left
    seg = hd.seg.segread(out)
    assert [seg.get_segment_description(k).segment_label for k in (1, 2, 3)] == ["RV", "MYO", "LV"]
    referenced = {str(u[2]) for u in seg.get_source_image_uids()}
    assert referenced <= {str(d.SOPInstanceUID) for d in series.datasets} and referenced
    assert str(seg.StudyInstanceUID) == str(series.datasets[0].StudyInstanceUID)
    back = io.read_seg(out, series)
    assert np.array_equal(back, labels)  # every voxel, in the series' slice order
    with pytest.raises(ValueError, match="shape"):
        io.write_seg(tmp_path / "bad.dcm", labels[:, :, :2], series)
    with pytest.raises(ValueError, match="no class"):
        io.write_seg(tmp_path / "bad.dcm", np.zeros_like(labels), series)
    # a SEG over a multi-frame source refers to its frames
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        legacy_datasets=list(series.datasets), series_instance_uid=hd.UID(), series_number=8,
        sop_instance_uid=hd.UID(), instance_number=1)
    enhanced.save_as(tmp_path / "enhanced.dcm")
    multi = io.read_dicom_series(tmp_path / "enhanced.dcm")
    io.write_seg(tmp_path / "seg_mf.dcm", labels, multi)
    assert np.array_equal(io.read_seg(tmp_path / "seg_mf.dcm", multi), labels)


def test_seg_of_a_series_without_patient_birth_date_copies_what_the_source_has(tmp_path, acdc):
    """Issue 30, item 23: a source without PatientBirthDate (type 2, left out by some writers) gave
    highdicom's AttributeError traceback."""
    hd = pytest.importorskip("highdicom", reason="DICOM SEG needs the dicom extra (highdicom)")
    image, labels = acdc
    image, labels = image[:, :, :3], labels[:, :, :3]
    write_series(tmp_path / "s", image)
    for file in (tmp_path / "s").iterdir():
        ds = pydicom.dcmread(file)
        del ds.PatientBirthDate, ds.PatientSex, ds.StudyID  # all type 2
        ds.save_as(file)
    series = io.read_dicom_series(tmp_path / "s")
    out = io.write_seg(tmp_path / "seg.dcm", labels, series)
    seg = hd.seg.segread(out)
    assert seg.PatientBirthDate == "" and seg.PatientSex == "" and seg.StudyID == ""  # present, empty
    assert seg.PatientName == "ACDC^011" and seg.PatientID == "p011"  # what the source has is copied
    assert np.array_equal(io.read_seg(out, series), labels)
    assert all("PatientBirthDate" not in d for d in series.datasets)  # the source datasets are not changed
    del series.datasets[0].StudyInstanceUID  # type 1: no SEG can reference the study without it
    with pytest.raises(ValueError, match=r"cannot write a DICOM SEG referencing .*im003\.dcm: it has no StudyInstanceUID"):
        io.write_seg(tmp_path / "seg2.dcm", labels, series)
    assert not (tmp_path / "seg2.dcm").exists()


def test_nifti_from_a_series_keeps_orientation_and_spacing(tmp_path, acdc):
    nibabel = pytest.importorskip("nibabel", reason="NIfTI support needs the nifti extra (nibabel)")
    image, labels = acdc
    write_series(tmp_path / "s", image)
    series = io.read_dicom_series(tmp_path / "s")
    io.write_volume(tmp_path / "labels.nii.gz", labels, affine=series.affine)
    back, reference = io.read_volume(tmp_path / "labels.nii.gz", as_mask=True)
    assert np.array_equal(back, labels)
    assert np.allclose(reference.header.get_zooms()[:3], SPACING)
    assert np.allclose(reference.affine, series.affine)
    again = tmp_path / "again.nii.gz"
    io.write_volume(again, back, reference)  # and once more through the header it was read with
    assert np.allclose(nibabel.load(again).affine, series.affine)
    assert nibabel.aff2axcodes(series.affine) == nibabel.aff2axcodes(nibabel.load(again).affine)
    with pytest.raises(ValueError, match="not both"):
        io.write_volume(tmp_path / "x.nii.gz", labels, reference, affine=series.affine)
    shutil.rmtree(tmp_path / "s")
