"""Writing outputs (issue 12): labels are stored exactly or refused, never clipped; outputs get
the permissions the umask gives; a killed writer leaves only a marked temporary file, which
``remove_partial_files`` clears."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from samedenhancer import io


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.uint16])
def test_labels_above_255_are_written_as_16_bit(tmp_path, suffix, dtype):
    labels = np.zeros((20, 30), dtype)
    labels[2:8, 3:9], labels[10:18, 12:25], labels[0, 0] = 300, 65535, 7
    path = io.write_mask(tmp_path / f"m{suffix}", labels)
    back = io.read_mask(path)
    assert back.dtype == np.uint16 and np.array_equal(back, labels)


def test_small_labels_of_a_wide_dtype_are_written_as_8_bit(tmp_path):
    labels = np.arange(12, dtype=np.int64).reshape(3, 4)
    back = io.read_mask(io.write_mask(tmp_path / "m.png", labels))
    assert back.dtype == np.uint8 and np.array_equal(back, labels)


@pytest.mark.parametrize(
    ("name", "labels", "error", "match"),
    [
        ("m.png", np.full((4, 4), 70000, np.int32), ValueError, r"labels 0..65535.*\[70000, 70000\]: write it as .npy"),
        ("m.png", np.full((4, 4), -1, np.int32), ValueError, r"holds labels in \[-1, -1\]"),
        ("m.bmp", np.full((4, 4), 300, np.int32), ValueError, r"labels 0..255.*write it as .npy or .png"),
        ("m.jpg", np.ones((4, 4), np.uint8), ValueError, "lossy"),
        ("m.png", np.full((4, 4), 0.5, np.float32), TypeError, "write soft maps as .npy or .tif"),
        ("m.png", np.zeros((0, 4), np.uint8), ValueError, "with pixels"),
        ("m.gif", np.ones((4, 4), np.uint8), ValueError, "cannot write a mask as '.gif'"),
    ],
)
def test_labels_a_format_cannot_hold_are_refused_not_clipped(tmp_path, name, labels, error, match):
    with pytest.raises(error, match=match):
        io.write_mask(tmp_path / name, labels)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary file left


def test_npy_keeps_any_label(tmp_path):
    labels = np.full((3, 3), 2**40, np.int64)
    assert np.array_equal(np.load(io.write_mask(tmp_path / "m.npy", labels)), labels)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_permissions_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        written = [
            io.write_mask(tmp_path / "m.png", np.ones((4, 4), np.uint8)),
            io.write_mask(tmp_path / "m.npy", np.ones((4, 4), np.uint8)),
            io.write_text_atomically(tmp_path / "m.json", "{}"),
        ]
    finally:
        os.umask(old)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_a_failed_write_leaves_nothing_and_partial_files_are_removed(tmp_path):
    def explode(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.write_atomically(tmp_path / "m.png", ".png", explode)
    assert not list(tmp_path.iterdir())
    leftover = tmp_path / f".m.png{io.atomic.PARTIAL_MARK}1234abcd.png"  # what a SIGKILL leaves
    leftover.write_bytes(b"half")
    keep = tmp_path / ".hidden-user-file.png"
    keep.write_bytes(b"mine")
    assert io.remove_partial_files(tmp_path) == [leftover]
    assert sorted(p.name for p in tmp_path.iterdir()) == [keep.name]


def test_prepare_output_folder_refuses_input_folders_and_unwritable_places(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match="is the images folder"):
        io.prepare_output_folder(tmp_path / "in", {"images": tmp_path / "in"})
    with pytest.raises(ValueError, match="is inside the images folder"):
        io.prepare_output_folder(tmp_path / "in" / "a" / "b", {"images": tmp_path / "in"})
    assert not (tmp_path / "in" / "a").exists()
    with pytest.raises(ValueError, match="not a writable folder"):
        io.prepare_output_folder("/proc/samedenhancer-out")
    assert io.prepare_output_folder(tmp_path / "out" / "x", {"images": tmp_path / "in"}).is_dir()
    assert not list((tmp_path / "out" / "x").iterdir())  # the write test leaves nothing behind


def test_an_image_header_past_opencvs_limits_is_a_clear_error(tmp_path):
    """Found by the fuzzer: OpenCV raised ``cv2.error`` instead of returning ``None``."""
    import cv2

    data = bytearray(cv2.imencode(".bmp", np.zeros((4, 4), np.uint8))[1].tobytes())
    data[22:26] = (2**30).to_bytes(4, "little")  # the BMP height field
    (tmp_path / "huge.bmp").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a readable image"):
        io.read_mask(tmp_path / "huge.bmp")


def test_write_volume_refuses_what_nifti_would_not_give_back(tmp_path):
    """Found by the fuzzer: 2-D arrays were written as volumes read_volume rejects; float16 raised
    nibabel's HeaderDataError."""
    pytest.importorskip("nibabel", reason="NIfTI needs the nifti extra")
    with pytest.raises(ValueError, match="H x W x D"):
        io.write_volume(tmp_path / "v.nii.gz", np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="float16"):
        io.write_volume(tmp_path / "v.nii.gz", np.zeros((2, 2, 2), np.float16))
    assert not list(tmp_path.iterdir())
