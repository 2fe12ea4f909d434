"""DICOM: single-frame images (CT, MR, ultrasound, colour and compressed files that pydicom ships,
real endoscopy images written as DICOM), cine loops streamed frame by frame, and the errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from samedenhancer import Enhancer, io, stream
from samedenhancer.cli import main

from fakes import DoublePredictor

pydicom = pytest.importorskip("pydicom", reason="DICOM support needs the dicom extra (pydicom)")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # real files bundled with pydicom


def write_dicom(path: Path, pixels: np.ndarray, photometric: str | None = None, frames: bool = False) -> Path:
    """A Secondary Capture file holding ``pixels`` (H x W grey, H x W x 3 RGB; with ``frames`` the
    first axis counts frames)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "OT"
    colour = pixels.ndim == (4 if frames else 3)
    ds.set_pixel_data(pixels, photometric or ("RGB" if colour else "MONOCHROME2"), 8 * pixels.itemsize)
    if frames:
        ds.CineRate = 25
    ds.save_as(path, enforce_file_format=True)
    return path


def test_grey_images_go_through_the_modality_lut():
    ct = pydicom.dcmread(FILES / "CT_small.dcm")
    image = io.read_image(FILES / "CT_small.dcm")
    assert image.dtype == np.float32 and image.shape == (128, 128)
    expected = ct.pixel_array.astype(np.float64) * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    assert np.array_equal(image, expected.astype(np.float32))  # Hounsfield units
    assert image.min() < -800  # air around the body, in HU
    # the same MR slice in five encodings reads the same (explicit / implicit / big endian, RLE, JPEG 2000)
    mr = io.read_image(FILES / "MR_small.dcm")
    for name in ("MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):
        assert np.array_equal(io.read_image(FILES / name), mr), name


def test_raw_datasets_and_identity_rescale(tmp_path):
    from pydicom.filewriter import dcmwrite

    # a raw dataset (no preamble, no File Meta, as some older devices write them) reads as written
    mr = pydicom.dcmread(FILES / "MR_small.dcm")
    mr.preamble, mr.file_meta = None, FileMetaDataset()
    dcmwrite(tmp_path / "raw.dcm", mr, implicit_vr=True, little_endian=True)
    assert np.array_equal(io.read_image(tmp_path / "raw.dcm"), io.read_image(FILES / "MR_small.dcm"))
    # unsigned pixels with slope 1 / intercept 0 keep their dtype; a real rescale makes float32
    pixels = (np.arange(120, dtype=np.uint16) * 500).reshape(10, 12)
    ds = pydicom.dcmread(write_dicom(tmp_path / "u16.dcm", pixels))
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.save_as(tmp_path / "u16.dcm")
    read = io.read_image(tmp_path / "u16.dcm")
    assert read.dtype == np.uint16 and np.array_equal(read, pixels)
    ds.RescaleSlope, ds.RescaleIntercept = 0.5, -10
    ds.save_as(tmp_path / "u16.dcm")
    read = io.read_image(tmp_path / "u16.dcm")
    assert read.dtype == np.float32 and np.array_equal(read, pixels * 0.5 - 10)


def test_colour_images_come_back_as_rgb():
    stripes = io.read_image(FILES / "SC_rgb_rle.dcm")  # RGB, RLE
    ybr = io.read_image(FILES / "SC_ybr_full_422_uncompressed.dcm")  # YBR converted to RGB
    jpeg = io.read_image(FILES / "SC_rgb_jpeg_dcmtk.dcm")  # JPEG baseline, decoded by Pillow
    assert ybr.shape == jpeg.shape == (100, 100, 3) and ybr.dtype == np.uint8
    assert np.array_equal(ybr[5, 50], [254, 0, 0]) and np.array_equal(ybr[45, 50], [0, 0, 254])  # red, blue stripes
    assert np.abs(ybr.astype(int) - jpeg.astype(int)).max() <= 8  # YBR -> RGB rounding
    assert np.abs(stripes.astype(int) - ybr.astype(int)).max() <= 8
    palette = io.read_image(FILES / "examples_palette.dcm")  # an ultrasound image with a colour palette
    assert palette.shape == (350, 800, 3) and len(np.unique(palette.reshape(-1, 3), axis=0)) > 2
    ultrasound = io.read_image(FILES / "examples_rgb_color.dcm")
    assert ultrasound.shape == (240, 320, 3) and ultrasound.dtype == np.uint8


def test_monochrome1_is_inverted(tmp_path):
    image = np.arange(60, dtype=np.uint8).reshape(6, 10)
    write_dicom(tmp_path / "m2.dcm", image)
    write_dicom(tmp_path / "m1.dcm", image, "MONOCHROME1")
    assert np.array_equal(io.read_image(tmp_path / "m2.dcm"), image)
    assert np.array_equal(io.read_image(tmp_path / "m1.dcm"), 255 - image)  # stored low = white
    mr = pydicom.dcmread(FILES / "MR_small.dcm")
    mr.PhotometricInterpretation = "MONOCHROME1"
    mr.save_as(tmp_path / "mr1.dcm")
    assert np.array_equal(io.read_image(tmp_path / "mr1.dcm"), -io.read_image(FILES / "MR_small.dcm"))


def test_dicom_label_masks_keep_their_labels(tmp_path):
    labels = np.zeros((12, 16), np.int16)  # signed 16-bit labels, as some tools store masks
    labels[2:6, 3:9], labels[7:10, 10:14] = 1, 2
    write_dicom(tmp_path / "labels.dcm", labels)
    mask = io.read_mask(tmp_path / "labels.dcm")
    assert mask.dtype == np.uint8 and np.array_equal(mask, labels)
    write_dicom(tmp_path / "label_frames.dcm", np.stack([labels, 2 - labels]), frames=True)
    frames = list(io.DicomFrames(tmp_path / "label_frames.dcm", as_mask=True))
    assert [f.dtype for f in frames] == [np.uint8, np.uint8] and np.array_equal(frames[1], 2 - labels)
    np.save(tmp_path / "float_labels.npy", labels.astype(np.float32))
    assert io.read_mask(tmp_path / "float_labels.npy").dtype == np.uint8
    soft = np.linspace(0, 1, 12 * 16, dtype=np.float32).reshape(12, 16)
    np.save(tmp_path / "soft.npy", soft)
    assert np.array_equal(io.read_mask(tmp_path / "soft.npy"), soft)  # probabilities stay a soft map


def test_dicom_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        io.read_image(tmp_path / "missing.dcm")
    (tmp_path / "text.dcm").write_text("not DICOM")
    with pytest.raises(ValueError, match="not a readable DICOM"):
        io.read_image(tmp_path / "text.dcm")
    with pytest.raises(ValueError, match="no image"):
        io.read_image(FILES / "rtplan.dcm")  # a radiotherapy plan: no pixel data
    with pytest.raises(ValueError, match="cannot decode the pixel data.*Explicit VR Little Endian"):
        io.read_image(FILES / "MR_truncated.dcm")
    with pytest.raises(ValueError, match="cannot decode the pixel data.*JPEG Extended"):
        io.read_image(FILES / "JPEG-lossy.dcm")  # damaged JPEG stream
    with pytest.raises(ValueError, match="30 frames.*stream"):
        io.read_image(FILES / "examples_ybr_color.dcm")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImportError, match=r"samedenhancer\[dicom\]"):
        io.read_image(FILES / "CT_small.dcm")


def test_cine_loop_frames_are_decoded_one_by_one():
    frames = io.DicomFrames(FILES / "examples_ybr_color.dcm")  # a real ultrasound cine loop, JPEG baseline
    assert len(frames) == 30 and frames.size == (240, 320) and frames.fps == pytest.approx(30, rel=1e-3)
    decoded = list(frames)
    everything = pydicom.dcmread(FILES / "examples_ybr_color.dcm").pixel_array
    assert len(decoded) == 30 and all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in decoded)
    assert np.array_equal(np.stack(decoded), everything)
    masks = list(io.open_frames(FILES / "examples_ybr_color.dcm", as_mask=True))
    # JPEG baseline is lossy: a mask in it is binary, foreground where the brightest channel passes 127
    assert masks[0].shape == (240, 320) and np.array_equal(masks[3], np.where(everything[3].max(axis=2) > 127, 255, 0))
    assert isinstance(io.open_frames(FILES / "examples_ybr_color.dcm"), io.DicomFrames)


def test_enhancer_streams_a_dicom_cine_loop():
    frames = io.DicomFrames(FILES / "examples_ybr_color.dcm")
    coarse = np.zeros(frames.size, np.uint8)
    coarse[80:150, 100:200] = 1
    enhancer = Enhancer(DoublePredictor(grow=2), box_margin=0, box_rounds=0)
    results = list(stream(FILES / "examples_ybr_color.dcm", [coarse] * 30, enhancer=enhancer))
    assert [r.index for r in results] == list(range(30)) and all(r.ok for r in results)
    expected = enhancer.enhance(next(iter(frames)), coarse).mask
    assert np.array_equal(results[0].mask, expected) and not np.array_equal(expected, coarse)


def test_cli_enhances_real_endoscopy_images_stored_as_dicom(tmp_path, data_root, litemedsam_dir):
    from samedenhancer.bench import datasets

    samples = datasets.samples("kvasir", data_root)[:2]
    for folder in ("images", "coarse"):
        (tmp_path / folder).mkdir()
    for s in samples:
        write_dicom(tmp_path / "images" / f"{s.stem}.dcm", s.image())
        io.write_mask(tmp_path / "coarse" / f"{s.stem}.png", s.coarse("pranet"))
    (tmp_path / "images" / "broken.dcm").write_bytes(b"DICM" * 10)
    io.write_mask(tmp_path / "coarse" / "broken.png", samples[0].coarse("pranet"))
    out = tmp_path / "out"
    code = main(["enhance", str(tmp_path / "images"), str(tmp_path / "coarse"), "--out", str(out),
                 "--threshold", "127", "--quiet"])
    assert code == 1  # the broken file is reported; the good ones are written
    enhancer = Enhancer(litemedsam_dir, threshold=127)
    for s in samples:
        assert np.array_equal(io.read_mask(out / f"{s.stem}.png"), enhancer.enhance(s.image(), s.coarse("pranet")).mask)
    assert not (out / "broken.png").exists()


def test_cli_streams_a_dicom_cine_loop_with_dicom_masks(tmp_path, litemedsam_dir):
    cine = pydicom.dcmread(FILES / "examples_ybr_color.dcm").pixel_array[:3]  # 3 frames of a real loop
    write_dicom(tmp_path / "loop.dcm", np.ascontiguousarray(cine), frames=True)
    labels = np.zeros(cine.shape[:3], np.int16)
    labels[:, 60:160, 90:230] = 1  # int16 labels 0/1: a DICOM mask keeps them, no lossy threshold
    write_dicom(tmp_path / "masks.dcm", labels, frames=True)
    out = tmp_path / "out"
    code = main(["stream", str(tmp_path / "loop.dcm"), "--coarse-video", str(tmp_path / "masks.dcm"), "--out", str(out),
                        "--model", str(litemedsam_dir), "--quiet", "--overlay"])
    assert code == 0
    enhancer = Enhancer(litemedsam_dir)
    for i in range(3):
        refined = io.read_mask(out / f"frame_{i:06d}.png")
        assert np.array_equal(refined, enhancer.enhance(cine[i], labels[i].astype(np.uint8)).mask)
        assert refined.any()
    assert (out / "overlay.avi").stat().st_size > 0
