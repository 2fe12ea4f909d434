"""samedenhancer.batch, the per-file work shared by ``samedenhancer enhance`` and the Ray actors: pairing
and naming (plan), and one file's read / refine / write (enhance_file) with a fake enhancer (the model
is not the subject here; tests/test_cli.py and tests/test_distributed.py run the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samedenhancer import batch, io
from samedenhancer.enhancer.results import EnhanceResult, Timings, VolumeResult


class ThresholdEnhancer:
    """Refines by thresholding the coarse mask at 127: the result a real Enhancer returns, without a model."""

    def enhance(self, image, coarse):
        mask = (coarse > 127).astype(np.uint8)
        return EnhanceResult(mask, "box", (), np.unique(mask[mask > 0]), np.zeros(0, np.int64), Timings())

    def enhance_volume(self, image, coarse):
        slices = tuple(self.enhance(image[..., k], coarse[..., k]) for k in range(coarse.shape[2]))
        return VolumeResult(np.stack([s.mask for s in slices], axis=2), 2, slices)


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    images, coarse = tmp_path / "images", tmp_path / "coarse"
    for stem in ("a", "b", "only_image"):
        io.write_mask(images / f"{stem}.png", rng.integers(0, 255, (24, 32), dtype=np.uint8))
    for stem in ("a", "b", "only_mask"):
        io.write_mask(coarse / f"{stem}.png", rng.integers(0, 255, (24, 32), dtype=np.uint8))
    return tmp_path


def test_plan_pairs_by_stem_names_outputs_and_resumes(folders):
    out = folders / "out"
    work = batch.plan(folders / "images", folders / "coarse", out, format="npy", details=True)
    assert [job.stem for job in work.todo] == ["a", "b"] and work.total == 4 and not work.skipped
    assert work.todo[0].target == str(out / "a.npy") and work.todo[0].details == str(out / "a.json")
    assert work.missing == [batch.Missing("only_image", "no coarse mask"), batch.Missing("only_mask", "no image")]
    io.write_mask(out / "a.npy", np.zeros((2, 2), np.uint8))
    resumed = batch.plan(folders / "images", folders / "coarse", out, format="npy", resume=True)
    assert [job.stem for job in resumed.skipped] == ["a"] and [job.stem for job in resumed.todo] == ["b"]
    assert resumed.todo[0].details is None


@pytest.mark.parametrize("name", ["images", "coarse"])
def test_plan_refuses_to_write_into_an_input_folder(folders, name):
    with pytest.raises(ValueError, match=f"out .* is the {name} folder"):
        batch.plan(folders / "images", folders / "coarse", folders / name)


def test_plan_names_the_bad_format(folders):
    with pytest.raises(ValueError, match=r"format must be one of \('png', 'npy', 'tif'\), got 'jpg'"):
        batch.plan(folders / "images", folders / "coarse", folders / "out", format="jpg")


def test_enhance_file_writes_the_mask_and_details_atomically(folders):
    job = batch.plan(folders / "images", folders / "coarse", folders / "out", details=True).todo[0]
    result = batch.enhance_file(ThresholdEnhancer(), job)
    assert result.status == "ok" and result.error == "" and result.read_s > 0
    np.testing.assert_array_equal(io.read_mask(job.target), (io.read_mask(job.coarse) > 127).astype(np.uint8))
    assert json.loads(Path(job.details).read_text())["policy"] == "box"
    assert sorted(p.name for p in (folders / "out").iterdir()) == ["a.json", "a.png"]  # no temporary files


def test_a_bad_file_is_a_failed_result_not_an_exception(folders):
    (folders / "images" / "a.png").write_bytes(b"not a png")
    job = batch.plan(folders / "images", folders / "coarse", folders / "out").todo[0]
    result = batch.enhance_file(ThresholdEnhancer(), job)
    assert result.status == "failed" and result.error.startswith("ValueError: ") and "a.png" in result.error
    assert not list((folders / "out").iterdir())


def test_a_volume_with_a_2d_image_fails_with_the_reason(folders):
    pytest.importorskip("nibabel", reason="NIfTI support needs the nifti extra (nibabel)")
    io.write_volume(folders / "coarse" / "vol.nii.gz", np.zeros((8, 8, 3), np.uint8))
    io.write_mask(folders / "images" / "vol.png", np.zeros((8, 8), np.uint8))
    job = next(j for j in batch.plan(folders / "images", folders / "coarse", folders / "out").todo if j.stem == "vol")
    assert job.target.endswith("vol.nii.gz")
    result = batch.enhance_file(ThresholdEnhancer(), job)
    assert result.status == "failed" and "both be NIfTI volumes or both be 2-D files" in result.error


def test_a_volume_pair_is_written_as_nifti_with_the_coarse_header(folders):
    nibabel = pytest.importorskip("nibabel", reason="NIfTI support needs the nifti extra (nibabel)")
    rng = np.random.default_rng(1)
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8), affine), folders / "images" / "vol.nii.gz")
    coarse = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
    nibabel.save(nibabel.Nifti1Image(coarse, affine), folders / "coarse" / "vol.nii.gz")
    job = next(j for j in batch.plan(folders / "images", folders / "coarse", folders / "out").todo if j.stem == "vol")
    assert batch.enhance_file(ThresholdEnhancer(), job).status == "ok"
    written = nibabel.load(job.target)
    np.testing.assert_array_equal(np.asarray(written.dataobj), (coarse > 127).astype(np.uint8))
    np.testing.assert_array_equal(written.affine, affine)
