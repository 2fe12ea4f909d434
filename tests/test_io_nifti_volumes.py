"""NIfTI volumes: reading and writing (nibabel), slice-by-slice enhancement, and the CLI on a real
ACDC cardiac MRI volume stacked from its slices."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from samedenhancer import Enhancer, io
from studies.corruption import corrupt_label_map
from samedenhancer.cli import main

from fakes import DoublePredictor

nibabel = pytest.importorskip("nibabel", reason="NIfTI support needs the nifti extra (nibabel)")


def _affine():
    affine = np.diag([1.5, 1.5, 10.0, 1.0])
    affine[:3, 3] = (-100.0, 20.0, 5.0)
    return affine


def test_volume_round_trip_keeps_voxels_affine_and_names(tmp_path):
    labels = np.zeros((20, 30, 4), np.uint8)
    labels[5:10, 5:15, 1:3] = 2
    nibabel.save(nibabel.Nifti1Image(labels.astype(np.float32), _affine()), tmp_path / "case.nii.gz")
    read, reference = io.read_volume(tmp_path / "case.nii.gz", as_mask=True)
    assert read.dtype == np.uint8 and np.array_equal(read, labels)  # float labels come back as integers
    io.write_volume(tmp_path / "out" / "case.nii.gz", read, reference)
    again = nibabel.load(tmp_path / "out" / "case.nii.gz")
    assert np.allclose(again.affine, _affine()) and np.array_equal(np.asanyarray(again.dataobj), labels)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["case.nii.gz"]  # no temporary file left
    assert io.stem(tmp_path / "case.nii.gz") == "case" and io.stem("a.b.png") == "a.b"
    image, _ = io.read_volume(tmp_path / "case.nii.gz")
    assert image.dtype == np.float32


def test_volume_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        io.read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "broken.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(ValueError, match="NIfTI"):
        io.read_volume(tmp_path / "broken.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 3, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(ValueError, match="3-D"):
        io.read_volume(tmp_path / "4d.nii")
    with pytest.raises(ValueError, match="NIfTI volume"):
        io.read_mask(tmp_path / "4d.nii")
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError, match=r"samedenhancer\[nifti\]"):
        io.read_volume(tmp_path / "4d.nii")


@pytest.mark.parametrize("axis", [0, 2])
def test_enhance_volume_is_enhance_on_every_slice(axis):
    coarse = np.zeros((40, 40, 40), np.uint8)
    coarse[5:15, 8:20, 10:30] = 1
    image = np.random.default_rng(0).random(coarse.shape).astype(np.float32)
    double = DoublePredictor(grow=2)
    enhancer = Enhancer(double, box_margin=0, box_rounds=0)
    result = enhancer.enhance_volume(image, coarse, axis=axis)  # one block: the 3-D mining keeps every slice as is
    expected = [enhancer.enhance(np.take(image, i, axis), np.take(coarse, i, axis)).mask for i in range(40)]
    assert result.mask.shape == coarse.shape and result.axis == axis
    assert np.array_equal(result.mask, np.stack(expected, axis=axis))
    assert not np.array_equal(result.mask, coarse)  # the double grew every region
    # slices without a region cost no model call: one encode per slice that has one
    assert sum(call[0] == "encode" for call in double.calls) == 2 * (10 if axis == 0 else 20)
    with pytest.raises(ValueError, match="same shape"):
        enhancer.enhance_volume(image[:, :, :3], coarse).mask
    with pytest.raises(ValueError, match="axis"):
        enhancer.enhance_volume(image, coarse, axis=3).mask


def test_cli_enhances_a_real_mri_volume(tmp_path, data_root, litemedsam_dir, capsys):
    from samedenhancer.bench import datasets

    slices = [s for s in datasets.samples("acdc", data_root) if s.stem.startswith("patient011_frame01_")][:3]
    image = np.stack([s.image() for s in slices], axis=2)
    coarse = np.stack([corrupt_label_map(s.ground_truth(), s.stem) for s in slices], axis=2)
    for folder, volume in (("images", image), ("coarse", coarse)):
        nibabel.save(nibabel.Nifti1Image(volume, _affine()), (tmp_path / folder).mkdir() or tmp_path / folder / "p011.nii.gz")
    out = tmp_path / "out"
    code = main(["enhance", str(tmp_path / "images"), str(tmp_path / "coarse"), "--out", str(out), "--details", "--quiet"])
    assert code == 0
    written = nibabel.load(out / "p011.nii.gz")
    refined = np.asanyarray(written.dataobj)
    assert np.allclose(written.affine, _affine()) and refined.dtype == coarse.dtype and refined.shape == coarse.shape
    enhancer = Enhancer(litemedsam_dir)
    assert np.array_equal(refined, enhancer.enhance_volume(image, coarse).mask)  # exactly the Enhancer's 3-D path
    details = json.loads((out / "p011.json").read_text())
    assert details["axis"] == 2 and len(details["slices"]) == len(slices)
    assert sum(d["gate_fired"] for d in details["slices"]) > 0  # the multi-class default gate ran
    # a 2-D image against a volume is reported for that stem, and the run says it failed
    io.write_mask(tmp_path / "images" / "flat.png", image[:, :, 0].astype(np.uint16))
    (tmp_path / "coarse" / "flat.nii.gz").write_bytes((tmp_path / "coarse" / "p011.nii.gz").read_bytes())
    assert main(["enhance", str(tmp_path / "images"), str(tmp_path / "coarse"), "--out", str(out), "--resume", "--quiet"]) == 1
    assert "both be NIfTI volumes" in capsys.readouterr().err
