"""Properties of the mask readers (issue 30, "the campaign, widened"): masks written by independent
writers (OpenCV, Pillow, tifffile, NumPy, pydicom, nibabel) in every format samedenhancer reads come
back through :func:`samedenhancer.io.read_mask` (``read_volume(as_mask=True)`` for NIfTI) as
``read_mask``'s docstring promises: lossless labels exactly, lossy masks binary, palette indices
not colours, soft float maps kept as floats, NaN and colour-coded maps refused."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from samedenhancer import io

PROPERTIES = settings(max_examples=15, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shapes(low: int = 1, high: int = 20):
    return st.tuples(st.integers(low, high), st.integers(low, high))


@st.composite
def label_maps(draw, dtype, shape=None):
    """A label map: few small labels (the usual case) or values over the dtype's whole range."""
    shape = draw(shape or shapes())
    top = int(np.iinfo(dtype).max)
    small = draw(st.booleans())
    return draw(hnp.arrays(dtype, shape, elements=st.integers(0, 5 if small else top)))


@st.composite
def binary_masks(draw):
    """A 0/1 mask made of one to three rectangles (shapes a segmenter draws, not pixel noise)."""
    h, w = draw(shapes(16, 64))
    mask = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(1, 3))):
        top, left = draw(st.integers(0, h - 4)), draw(st.integers(0, w - 4))
        mask[top : top + draw(st.integers(4, h)), left : left + draw(st.integers(4, w))] = True
    return mask


def folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="samedenhancer-mask-")


# ---- lossless: labels exactly ---------------------------------------------------------------------

def write_cv2(path: Path, labels: np.ndarray) -> None:
    assert cv2.imwrite(str(path), labels)


def write_tifffile(path: Path, labels: np.ndarray) -> None:
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(path, labels, compression=None if labels.size % 2 else "zlib")


def write_pillow(path: Path, labels: np.ndarray) -> None:
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(labels).save(path)  # mode L (8 bits) or I;16 (16 bits)


LOSSLESS = [  # (suffix, writer, dtypes it stores)
    (".png", write_cv2, (np.uint8, np.uint16)),
    (".png", write_pillow, (np.uint8, np.uint16)),
    (".tif", write_tifffile, (np.uint8, np.uint16)),
    (".tif", write_cv2, (np.uint8, np.uint16)),
    (".bmp", write_cv2, (np.uint8,)),
]


@PROPERTIES
@given(data=st.data(), case=st.sampled_from(LOSSLESS))
def test_lossless_image_formats_give_the_labels_exactly(data, case):
    suffix, write, dtypes = case
    labels = data.draw(label_maps(data.draw(st.sampled_from(dtypes))))
    with folder() as tmp:
        path = Path(tmp) / f"m{suffix}"
        write(path, labels)
        read = io.read_mask(path)
    assert read.shape == labels.shape and read.dtype.kind == "u" and np.array_equal(read, labels)


@PROPERTIES
@given(data=st.data(), dtype=st.sampled_from([np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64]))
def test_npy_integer_and_bool_masks_give_their_values(data, dtype):
    if dtype == np.bool_:
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(int(info.min), -3), min(int(info.max), 70000)) | st.integers(0, 4)
    array = data.draw(hnp.arrays(dtype, shapes(), elements=elements))
    with folder() as tmp:
        np.save(Path(tmp) / "m.npy", array)
        read = io.read_mask(Path(tmp) / "m.npy")
    assert np.array_equal(read, array.astype(np.int64))
    if dtype == np.bool_:
        assert read.dtype == np.uint8
    elif dtype in (np.int8, np.int16) and array.min() >= 0:  # labels saved signed: a label dtype
        assert read.dtype == (np.uint8 if array.max() <= 255 else np.uint16)
    else:
        assert read.dtype == dtype


@PROPERTIES
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]), suffix=st.sampled_from([".npy", ".tif"]))
def test_float_maps_stay_soft_whole_numbers_are_labels_and_nan_is_refused(data, dtype, suffix):
    tifffile = pytest.importorskip("tifffile")
    kind = data.draw(st.sampled_from(["soft", "whole", "nan"]))
    shape = data.draw(shapes())
    if kind == "whole":
        values = st.integers(0, 300).map(float)
    else:
        values = st.floats(-5, 300, width=8 * np.dtype(dtype).itemsize)
    array = data.draw(hnp.arrays(dtype, shape, elements=values))
    if kind == "soft":
        array.flat[0] = 0.5  # at least one fraction: a soft map
    elif kind == "nan":
        array.flat[data.draw(st.integers(0, array.size - 1))] = np.nan
    with folder() as tmp:
        path = Path(tmp) / f"m{suffix}"
        np.save(path, array) if suffix == ".npy" else tifffile.imwrite(path, array)
        if kind == "nan":
            with pytest.raises(ValueError, match="NaN"):
                io.read_mask(path)
            return
        read = io.read_mask(path)
    assert np.array_equal(read, array)
    assert read.dtype == (array.dtype if kind == "soft" else np.uint8 if array.max() <= 255 else np.uint16)


# ---- palette: indices, not colours ---------------------------------------------------------------

@PROPERTIES
@given(data=st.data(), suffix=st.sampled_from([".png", ".bmp"]))
def test_palette_images_give_their_indices_whatever_the_colours(data, suffix):
    Image = pytest.importorskip("PIL.Image")
    labels = data.draw(label_maps(np.uint8))
    # any palette, colours repeated included: two classes of one colour must stay two classes
    palette = data.draw(st.lists(st.integers(0, 255), min_size=768, max_size=768) | st.just([7] * 768))
    image = Image.frombytes("P", labels.shape[::-1], labels.tobytes())
    image.putpalette(palette)
    with folder() as tmp:
        path = Path(tmp) / f"m{suffix}"
        image.save(path)
        read = io.read_mask(path)
    assert read.dtype == np.uint8 and np.array_equal(read, labels)


# ---- lossy: binary ------------------------------------------------------------------------------

@PROPERTIES
@given(mask=binary_masks(), quality=st.integers(50, 100), colour=st.booleans())
def test_jpeg_masks_are_binary_and_right_away_from_the_edges(mask, quality, colour):
    stored = np.where(mask, 255, 0).astype(np.uint8)
    if colour:
        stored = np.dstack([stored, stored, stored])
    with folder() as tmp:
        path = Path(tmp) / "m.jpg"
        assert cv2.imwrite(str(path), stored, [cv2.IMWRITE_JPEG_QUALITY, quality])
        read = io.read_mask(path)
    assert read.dtype == np.uint8 and read.shape == mask.shape and set(np.unique(read).tolist()) <= {0, 255}
    # pixels two or more pixels from an edge of the mask keep their value
    kernel = np.ones((5, 5), np.uint8)
    inside = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    outside = cv2.erode((~mask).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    assert (read[inside] == 255).all() and (read[outside] == 0).all()


@PROPERTIES
@given(mask=binary_masks(), quality=st.integers(50, 100))
def test_a_0_1_jpeg_is_refused_never_read_as_labels(mask, quality):
    with folder() as tmp:
        path = Path(tmp) / "m.jpg"
        assert cv2.imwrite(str(path), mask.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if decoded.max() == 0:  # compression erased every trace: nothing left to tell it from an empty mask
            assert not io.read_mask(path).any()
            return
        with pytest.raises(ValueError, match="labels such as 0/1 do not survive lossy compression"):
            io.read_mask(path)


# ---- DICOM and NIfTI ---------------------------------------------------------------------------------

@PROPERTIES
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.uint16, np.int16]),
       photometric=st.sampled_from(["MONOCHROME2", "MONOCHROME1"]))
def test_dicom_masks_give_their_stored_labels(data, dtype, photometric):
    pytest.importorskip("pydicom", reason="DICOM masks need the dicom extra (pydicom)")
    from test_io_dicom import write_dicom

    labels = data.draw(label_maps(np.uint8 if dtype == np.uint8 else np.uint16)).astype(dtype)
    labels = np.abs(labels) if dtype == np.int16 else labels
    with folder() as tmp:
        read = io.read_mask(write_dicom(Path(tmp) / "m.dcm", labels, photometric))
    assert read.dtype.kind == "u" and np.array_equal(read, labels)


@PROPERTIES
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.int16, np.uint16, np.int32, np.float32]))
def test_nifti_label_volumes_give_their_labels(data, dtype):
    nibabel = pytest.importorskip("nibabel", reason="NIfTI needs the nifti extra")
    depth = data.draw(st.integers(1, 4))
    top = 255 if dtype == np.uint8 else 300
    labels = data.draw(hnp.arrays(dtype, (*data.draw(shapes(1, 12)), depth), elements=st.integers(0, top)))
    with folder() as tmp:
        nibabel.save(nibabel.Nifti1Image(labels, np.eye(4)), Path(tmp) / "m.nii.gz")
        read, _ = io.read_volume(Path(tmp) / "m.nii.gz", as_mask=True)
    assert read.dtype.kind in "iu" and np.array_equal(read, labels)


# ---- colour: grey read as grey, colour-coded refused ---------------------------------------------

@PROPERTIES
@given(data=st.data())
def test_colour_masks_are_grey_or_refused(data):
    labels = data.draw(label_maps(np.uint8))
    colours = np.dstack([labels, labels, labels])
    differ = data.draw(st.booleans())
    if differ:
        index = data.draw(st.integers(0, labels.size - 1))
        colours.reshape(-1, 3)[index, data.draw(st.integers(1, 2))] ^= 1
    with folder() as tmp:
        path = Path(tmp) / "m.png"
        write_cv2(path, colours)
        if differ:
            with pytest.raises(ValueError, match="channels differ at 1 of"):
                io.read_mask(path)
            return
        read = io.read_mask(path)
    assert np.array_equal(read, labels)
