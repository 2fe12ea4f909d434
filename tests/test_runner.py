"""samedenhancer.runner, the one folder runner of every file command and of the Ray actors: pairing by
stem (and its messages), naming, the output check, resume by reading outputs back, the run loop and
its summary, and enhance's per-file work, with a fake enhancer (the model is not the subject here;
tests/test_cli.py and tests/test_distributed.py run the real one)."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from samedenhancer import io, runner
from samedenhancer.enhancer.results import EnhanceResult, Timings, VolumeResult
from samedenhancer.enhancer import EnhanceOptions


class ThresholdEnhancer:
    """Refines by thresholding the coarse mask at 127: the result a real Enhancer returns, without a model."""

    options = EnhanceOptions(threshold=127)

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


def test_plan_pairs_by_stem_names_outputs_and_resumes_only_what_reads_back(folders):
    out = folders / "out"
    work = runner.enhance_plan(folders / "images", folders / "coarse", out, format="npy", details=True)
    assert [item.stem for item in work.todo] == ["a", "b"] and work.total == 4 and not work.skipped
    assert work.todo[0].outputs == {"mask": out / "a.npy", "details": out / "a.json"}
    assert work.failures == [runner.Failure("only_image", "no coarse mask"), runner.Failure("only_mask", "no image")]
    io.write_mask(out / "a.npy", np.zeros((2, 2), np.uint8))
    io.write_mask(out / "b.npy", np.zeros((2, 2), np.uint8))
    (out / "b.npy").write_bytes((out / "b.npy").read_bytes()[:60])  # truncated: not a finished output
    resumed = runner.enhance_plan(folders / "images", folders / "coarse", out, format="npy", resume=True)
    assert [item.stem for item in resumed.skipped] == ["a"] and [item.stem for item in resumed.todo] == ["b"]
    (out / "a.npy").write_bytes(b"")  # a 0-byte output is not finished either
    resumed = runner.enhance_plan(folders / "images", folders / "coarse", out, format="npy", resume=True)
    assert not resumed.skipped


@pytest.mark.parametrize("suffix", [".png", ".npy", ".json", ".csv", ".tif"])
def test_reads_back_refuses_empty_and_truncated_outputs(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"regions": list(range(50))}))
    elif suffix == ".csv":
        path.write_text('stem,verdict\na,keep\n"b,flag\n')  # an unterminated quote: cut mid-row
    else:
        io.write_mask(path, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    if suffix != ".csv":
        assert io.reads_back(path)
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert not io.reads_back(path)
    path.write_bytes(b"")
    assert not io.reads_back(path) and not io.reads_back(tmp_path / "missing.png")


def test_two_files_given_explicitly_are_a_pair_whatever_their_stems(folders):
    io.write_mask(folders / "case_coarse.png", np.full((24, 32), 200, np.uint8))
    work = runner.enhance_plan(folders / "images" / "a.png", folders / "case_coarse.png", folders / "out")
    assert [(item.stem, item.inputs["coarse"].name) for item in work.todo] == [("a", "case_coarse.png")]
    assert not work.failures and work.todo[0].outputs["mask"] == folders / "out" / "a.png"


def test_two_files_with_one_stem_are_refused_naming_both(folders):
    np.save(folders / "coarse" / "a.npy", np.zeros((24, 32), np.uint8))
    with pytest.raises(ValueError, match=r"two files with the stem 'a': a.npy and a.png"):
        runner.enhance_plan(folders / "images", folders / "coarse", folders / "out")
    assert not (folders / "out").exists()  # refused before any work


def test_a_broken_link_or_a_folder_named_like_an_image_is_named_as_such(folders):
    (folders / "images" / "gone.png").symlink_to(folders / "nowhere.png")
    io.write_mask(folders / "coarse" / "gone.png", np.zeros((24, 32), np.uint8))
    (folders / "images" / "dir.jpg").mkdir()
    io.write_mask(folders / "coarse" / "dir.png", np.zeros((24, 32), np.uint8))
    failures = dict((f.stem, f.error) for f in runner.enhance_plan(folders / "images", folders / "coarse",
                                                                   folders / "out").failures)
    assert failures["gone"] == f"no image (gone.png is a broken symbolic link (to {folders / 'nowhere.png'}))"
    assert failures["dir"] == "no image (dir.jpg is a folder, not a file)"
    with pytest.raises(FileNotFoundError, match="gone.png is a broken symbolic link"):
        runner.enhance_plan(folders / "images" / "gone.png", folders / "coarse" / "gone.png", folders / "out")


@pytest.mark.parametrize("name", ["images", "coarse"])
def test_plan_refuses_to_write_into_an_input_folder(folders, name):
    with pytest.raises(ValueError, match=f"out .* is the {name} folder"):
        runner.enhance_plan(folders / "images", folders / "coarse", folders / name)


def test_plan_refuses_an_input_file_linked_into_out_and_an_output_linked_to_an_input(folders):
    out = folders / "out"
    io.write_mask(out / "b.png", np.zeros((24, 32), np.uint8))
    (folders / "coarse" / "b.png").unlink()
    (folders / "coarse" / "b.png").symlink_to(out / "b.png")  # the coarse input lives in --out
    with pytest.raises(ValueError, match=r"holds the coarse file .*b.png \(a link to .*out/b.png\)"):
        runner.enhance_plan(folders / "images", folders / "coarse", out)
    (folders / "coarse" / "b.png").unlink()
    io.write_mask(folders / "coarse" / "b.png", np.zeros((24, 32), np.uint8))
    (out / "b.png").unlink()
    (out / "b.png").symlink_to(folders / "coarse" / "b.png")  # an output name that leads to an input
    with pytest.raises(ValueError, match=r"the output .*out/b.png is a link to the coarse file"):
        runner.enhance_plan(folders / "images", folders / "coarse", out)


def test_plan_names_the_bad_format(folders):
    with pytest.raises(ValueError, match=r"format must be one of \('png', 'npy', 'tif'\), got 'jpg'"):
        runner.enhance_plan(folders / "images", folders / "coarse", folders / "out", format="jpg")


def test_enhance_file_writes_the_mask_details_and_overlay_atomically(folders):
    item = runner.enhance_plan(folders / "images", folders / "coarse", folders / "out", details=True,
                               overlay=True).todo[0]
    timings = runner.enhance_file(ThresholdEnhancer(), item)
    assert timings.read_s > 0 and timings.enhance_s >= 0
    expected = (io.read_mask(item.inputs["coarse"]) > 127).astype(np.uint8)
    np.testing.assert_array_equal(io.read_mask(item.outputs["mask"]), expected)
    assert json.loads(item.outputs["details"].read_text())["policy"] == "box"
    overlay = io.read_image(item.outputs["overlay"])
    assert overlay.shape == (24, 32, 3) and (overlay == (0, 230, 255)).all(axis=2).any()  # the refined outline, cyan
    assert sorted(p.name for p in (folders / "out").rglob("*")) == ["a.json", "a.png", "a.png", "overlay"]


def test_a_bad_file_raises_with_its_reason_and_writes_nothing(folders):
    (folders / "images" / "a.png").write_bytes(b"not a png")
    item = runner.enhance_plan(folders / "images", folders / "coarse", folders / "out").todo[0]
    with pytest.raises(ValueError, match="a.png"):
        runner.enhance_file(ThresholdEnhancer(), item)
    assert not list((folders / "out").iterdir())


def test_run_collects_failures_and_sums_up_in_one_line(folders):
    work = runner.enhance_plan(folders / "images", folders / "coarse", folders / "out")

    def work_fn(item):
        if item.stem == "b":
            raise KeyError("deep inside")
        return item.stem

    outcome = runner.run(work, work_fn, command="enhance", quiet=True)
    assert outcome.results == ["a"] and outcome.exit_code == 1
    lines = outcome.summary(folders / "out").splitlines()
    assert lines[0].startswith("enhance: 1 done, 3 failed of 4 in ") and lines[0].endswith(f"outputs in {folders / 'out'}")
    assert "images/s" in lines[0] and lines[1:] == ["  only_image: no coarse mask", "  only_mask: no image",
                                                    "  b: KeyError: 'deep inside'"]


def test_a_full_disk_stops_the_run_with_what_to_do(folders):
    work = runner.enhance_plan(folders / "images", folders / "coarse", folders / "out")
    calls = []

    def full(item):
        calls.append(item.stem)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    outcome = runner.run(work, full, command="enhance", quiet=True)
    assert calls == ["a"] and outcome.exit_code == 1
    assert "stopped: no space left on device, 1 not started; make room and rerun with --resume" in outcome.summary()


def test_a_volume_with_a_2d_image_fails_with_the_reason(folders):
    pytest.importorskip("nibabel", reason="NIfTI support needs the nifti extra (nibabel)")
    io.write_volume(folders / "coarse" / "vol.nii.gz", np.zeros((8, 8, 3), np.uint8))
    io.write_mask(folders / "images" / "vol.png", np.zeros((8, 8), np.uint8))
    item = next(i for i in runner.enhance_plan(folders / "images", folders / "coarse", folders / "out").todo
                if i.stem == "vol")
    assert item.outputs["mask"].name == "vol.nii.gz"
    with pytest.raises(ValueError, match="both be NIfTI volumes or both be 2-D files"):
        runner.enhance_file(ThresholdEnhancer(), item)


def test_a_volume_pair_is_written_as_nifti_with_the_coarse_header(folders):
    nibabel = pytest.importorskip("nibabel", reason="NIfTI support needs the nifti extra (nibabel)")
    rng = np.random.default_rng(1)
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8), affine), folders / "images" / "vol.nii.gz")
    coarse = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
    nibabel.save(nibabel.Nifti1Image(coarse, affine), folders / "coarse" / "vol.nii.gz")
    item = next(i for i in runner.enhance_plan(folders / "images", folders / "coarse", folders / "out").todo
                if i.stem == "vol")
    runner.enhance_file(ThresholdEnhancer(), item)
    written = nibabel.load(item.outputs["mask"])
    np.testing.assert_array_equal(np.asarray(written.dataobj), (coarse > 127).astype(np.uint8))
    np.testing.assert_array_equal(written.affine, affine)
    assert io.reads_back(item.outputs["mask"])
