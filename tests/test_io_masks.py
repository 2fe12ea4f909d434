"""Masks are never misread (issue 30, items 12, 14 and 26): lossy formats are binary masks (every
Kvasir expert mask is a JPEG with 15-18 grey levels), palette label maps give their indices, a
colour-coded or transparent mask is refused rather than read from one channel, and a truncated
TIFF says so. The same rule holds for masks in videos and DICOM files."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.bench import datasets
from samedenhancer.cli import main

Image = pytest.importorskip("PIL.Image", reason="palette images are written with Pillow (test extra)")


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map: class i's colour from the bits of i (VOCdevkit's labelcolormap)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def label_map(shape=(40, 60)) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[2:12, 3:20], labels[14:30, 5:25], labels[5:35, 30:50], labels[32:38, 2:58] = 1, 3, 15, 255
    return labels  # VOC: 1 (128, 0, 0) and 3 (128, 128, 0) share their red; 255 is VOC's "void"


# ---- item 12: lossy masks are binary --------------------------------------------------------------

def test_kvasir_jpeg_masks_read_as_the_binary_masks_they_are(data_root):
    for sample in datasets.samples("kvasir", data_root)[:5]:
        stored = cv2.imread(str(sample.mask_path), cv2.IMREAD_UNCHANGED)
        assert len(np.unique(stored)) > 10  # JPEG left grey levels along the edges
        mask = io.read_mask(sample.mask_path)
        assert mask.dtype == np.uint8 and mask.shape == stored.shape[:2]
        assert set(np.unique(mask).tolist()) == {0, 255}  # 0/255 as the expert stored it
        assert np.array_equal(mask, np.where(stored.max(axis=2) > 127, 255, 0))
        assert np.array_equal(mask > 0, sample.ground_truth() > 0)


def test_evaluate_scores_a_prediction_against_jpeg_truth_as_binary(tmp_path, data_root, capsys):
    samples = datasets.samples("kvasir", data_root)[:2]
    (tmp_path / "gt").mkdir()
    for s in samples:  # the real JPEG files, linked (never copied into the repository)
        (tmp_path / "gt" / s.mask_path.name).symlink_to(s.mask_path)
        io.write_mask(tmp_path / "pred" / f"{s.stem}.png", s.ground_truth())  # 0/1 labels
    code = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--json", str(tmp_path / "scores.json"),
                 "--quiet"])
    assert code == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert [row["dice"] for row in scores["images"]] == [1.0, 1.0]  # no 16-class label map, no threshold needed


def test_a_0_1_mask_saved_as_jpeg_is_refused_with_advice(tmp_path):
    labels = label_map() > 0
    cv2.imwrite(str(tmp_path / "m.jpg"), labels.astype(np.uint8))  # invisible 0/1 values
    with pytest.raises(ValueError, match=r"m\.jpg: a lossy mask is read as binary.*reach only \d.*store masks as PNG"):
        io.read_mask(tmp_path / "m.jpg")
    cv2.imwrite(str(tmp_path / "empty.jpg"), np.zeros((16, 16), np.uint8))
    assert not io.read_mask(tmp_path / "empty.jpg").any()  # an all-black JPEG is an empty mask


def test_a_colour_jpeg_mask_is_foreground_where_any_channel_is_bright(tmp_path):
    mask = np.zeros((64, 80, 3), np.uint8)
    mask[10:50, 20:70] = (0, 200, 0)  # a green mask (BGR): its first channel is 0 everywhere
    cv2.imwrite(str(tmp_path / "green.jpg"), mask, [cv2.IMWRITE_JPEG_QUALITY, 75])
    read = io.read_mask(tmp_path / "green.jpg")
    assert np.array_equal(read[12:48, 22:68], np.full((36, 46), 255, np.uint8))
    assert (read > 0).sum() == pytest.approx(40 * 50, rel=0.05) and not read[:8].any()


def test_a_jpeg_compressed_tiff_mask_is_binary_too(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 12:44] = 255
    assert cv2.imwrite(str(tmp_path / "m.tif"), mask, [cv2.IMWRITE_TIFF_COMPRESSION, 7])  # 7: JPEG
    assert len(np.unique(cv2.imread(str(tmp_path / "m.tif"), cv2.IMREAD_UNCHANGED))) > 2
    assert np.array_equal(io.read_mask(tmp_path / "m.tif"), mask)


# ---- item 14: palette label maps give their indices ------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_palette_label_maps_give_their_indices_not_their_colours(tmp_path, suffix):
    labels = label_map()
    image = Image.frombytes("P", labels.shape[::-1], labels.tobytes())
    image.putpalette(voc_palette())
    image.save(tmp_path / f"voc{suffix}")
    with Image.open(tmp_path / f"voc{suffix}") as written:
        assert written.mode == "P"
    # what OpenCV makes of it: colours, whose first channel merges classes 1 and 3
    colours = cv2.imread(str(tmp_path / f"voc{suffix}"), cv2.IMREAD_UNCHANGED)
    assert colours.ndim == 3 and len(np.unique(colours[..., 2])) < len(np.unique(labels))
    read = io.read_mask(tmp_path / f"voc{suffix}")
    assert read.dtype == np.uint8 and np.array_equal(read, labels)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_depth_and_transparent_palette_pngs_give_indices(tmp_path, bits):
    labels = (label_map() % (2**bits)).astype(np.uint8)
    image = Image.frombytes("P", labels.shape[::-1], labels.tobytes())
    image.putpalette(voc_palette()[: 3 * 2**bits])
    image.save(tmp_path / "p.png", bits=bits, transparency=0)  # index 0 transparent, as annotation tools write
    assert (tmp_path / "p.png").read_bytes()[24] == bits  # the IHDR bit depth
    assert np.array_equal(io.read_mask(tmp_path / "p.png"), labels)


def test_a_palette_png_without_pillow_is_an_import_error_never_colours(tmp_path, monkeypatch):
    labels = label_map()
    image = Image.frombytes("P", labels.shape[::-1], labels.tobytes())
    image.putpalette(voc_palette())
    image.save(tmp_path / "voc.png")
    image.save(tmp_path / "voc.bmp")
    io.write_mask(tmp_path / "grey.png", labels)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"voc\.png is a palette.*pip install pillow"):
        io.read_mask(tmp_path / "voc.png")
    with pytest.raises(ValueError, match=r"voc\.bmp: a colour mask whose channels differ"):  # OpenCV's colours
        io.read_mask(tmp_path / "voc.bmp")
    assert np.array_equal(io.read_mask(tmp_path / "grey.png"), labels)  # other PNGs need no Pillow


def test_a_palette_tiff_gives_its_indices(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    labels = label_map()
    colormap = (np.asarray(voc_palette(), np.uint16).reshape(256, 3).T * 257).astype(np.uint16)
    tifffile.imwrite(tmp_path / "voc.tif", labels, photometric="palette", colormap=colormap)
    assert np.array_equal(io.read_mask(tmp_path / "voc.tif"), labels)


# ---- colour, transparency, NaN: refused, never guessed -------------------------------------------

def test_colour_coded_masks_and_transparent_masks_are_refused(tmp_path):
    labels = label_map()
    colours = np.asarray(voc_palette(), np.uint8).reshape(256, 3)[labels]
    cv2.imwrite(str(tmp_path / "colours.png"), colours[..., ::-1])
    with pytest.raises(ValueError, match=r"colours\.png: a colour mask whose channels differ.*palette"):
        io.read_mask(tmp_path / "colours.png")
    cv2.imwrite(str(tmp_path / "grey_rgb.png"), np.repeat(labels[..., None], 3, axis=2))
    assert np.array_equal(io.read_mask(tmp_path / "grey_rgb.png"), labels)  # grey stored as RGB is grey
    opaque = np.dstack([labels, labels, labels, np.full_like(labels, 255)])
    cv2.imwrite(str(tmp_path / "opaque.png"), opaque)
    assert np.array_equal(io.read_mask(tmp_path / "opaque.png"), labels)
    cv2.imwrite(str(tmp_path / "alpha.png"), np.dstack([np.zeros((40, 60, 3), np.uint8), labels]))
    with pytest.raises(ValueError, match=r"alpha\.png: its alpha channel is not opaque"):
        io.read_mask(tmp_path / "alpha.png")


def test_nan_masks_and_non_numeric_arrays_are_refused(tmp_path):
    soft = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    soft[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", soft)
    with pytest.raises(ValueError, match=r"nan\.npy: the mask holds 1 NaN"):
        io.read_mask(tmp_path / "nan.npy")
    np.save(tmp_path / "complex.npy", np.ones((4, 5), np.complex64))
    with pytest.raises(TypeError, match="complex64"):
        io.read_mask(tmp_path / "complex.npy")


# ---- item 26: a truncated TIFF says so -------------------------------------------------------------

@pytest.mark.parametrize("keep", [8, 100, 0.5])
def test_a_truncated_tiff_names_the_file_and_says_it_is_truncated(tmp_path, keep):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "whole.tif", label_map((200, 300)))
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    for reader in (io.read_mask, io.read_image):
        with pytest.raises(ValueError, match=r"cannot read .*cut\.tif: a truncated or damaged TIFF"):
            reader(tmp_path / "cut.tif")


# ---- DICOM masks: stored values, lossy ones binary ------------------------------------------------

pydicom = pytest.importorskip("pydicom", reason="DICOM masks need the dicom extra (pydicom)")


def test_dicom_masks_are_stored_values_and_lossy_ones_binary(tmp_path):
    from test_io_dicom import write_dicom

    labels = label_map()
    write_dicom(tmp_path / "m1.dcm", labels, "MONOCHROME1")  # displayed inverted; the labels are the values
    assert np.array_equal(io.read_mask(tmp_path / "m1.dcm"), labels)
    assert np.array_equal(io.read_image(tmp_path / "m1.dcm"), 255 - labels)  # an image is displayed
    binary = np.where(labels > 0, 255, 0).astype(np.uint8)
    noisy = cv2.imdecode(cv2.imencode(".jpg", binary)[1], cv2.IMREAD_UNCHANGED)  # decompressed once-lossy pixels
    assert len(np.unique(noisy)) > 2
    ds = pydicom.dcmread(write_dicom(tmp_path / "lossy.dcm", noisy))
    ds.LossyImageCompression = "01"  # the standard's mark of pixels that went through lossy compression
    ds.save_as(tmp_path / "lossy.dcm")
    assert np.array_equal(io.read_mask(tmp_path / "lossy.dcm"), binary)


# ---- masks in videos: lossless codecs keep labels, lossy ones are binary ---------------------------

@pytest.mark.parametrize(("codec", "exact"), [("FFV1", True), ("png ", True), ("MJPG", False), ("mp4v", False)])
def test_mask_videos_follow_the_same_rule(tmp_path, codec, exact):
    masks = []
    for i in range(4):
        labels = np.zeros((48, 64), np.uint8)
        if i != 2:  # an empty frame: inter-frame codecs leave faint residue there
            labels[8 + i : 30 + i, 10:40], labels[32:44, 40 + i : 60] = 255, 128 if exact else 255
        masks.append(labels)
    writer = cv2.VideoWriter(str(tmp_path / "masks.avi"), cv2.VideoWriter_fourcc(*codec), 10.0, (64, 48), True)
    assert writer.isOpened()
    for labels in masks:
        writer.write(cv2.cvtColor(labels, cv2.COLOR_GRAY2BGR))
    writer.release()
    read = list(io.open_frames(tmp_path / "masks.avi", as_mask=True))
    assert len(read) == 4 and all(isinstance(m, np.ndarray) and m.shape == (48, 64) for m in read)
    if exact:
        assert all(np.array_equal(m, labels) for m, labels in zip(read, masks))
    else:
        assert all(set(np.unique(m).tolist()) <= {0, 255} for m in read)
        assert not read[2].any()
        for m, labels in zip(read, masks):  # binary up to a pixel along the edges
            assert np.count_nonzero(m != labels) <= 0.02 * labels.size
