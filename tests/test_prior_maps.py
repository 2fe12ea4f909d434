"""SAMAug's priors: the definitions on a deterministic double, and the embedded model on real images."""

from __future__ import annotations

import numpy as np
import pytest

import samedenhancer as se
from samedenhancer.bench import datasets
from samedenhancer.cli import main
from samedenhancer.prior_maps import _box_nms, _stability, prompt_grid


class _Manifest:
    name = "double"
    input_size = 64
    trained_prompts = ("box",)


class BlobPredictor:
    """Native resolution = model frame. Every box prompt gets the same square blob of logits
    +2 inside / -2 outside (stability 1), with predicted IoU 0.9; every point prompt an IoU of 0.1."""

    manifest = _Manifest()

    def __init__(self, blob=(10, 10, 30, 30)):
        self.blob = blob
        self.encodes = 0

    def encode(self, image):
        self.encodes += 1
        return image.shape[:2]

    def decode(self, embedding, point_coords=None, point_labels=None, box=None, multimask_output=False):
        boxes = box
        n = len(boxes) if boxes is not None else len(point_coords)
        c = 3 if multimask_output else 1
        logits = np.full((n, c, *embedding), -2.0, np.float32)
        x0, y0, x1, y1 = self.blob
        logits[..., y0 : y1 + 1, x0 : x1 + 1] = 2.0
        return logits, np.full((n, c), 0.9 if boxes is not None else 0.1, np.float32)

    def upscale_window(self, embedding, low, floor=0.0, include=None):
        from samedenhancer.transforms import logits_window

        window = logits_window(low, low.shape, floor, include)
        x0, y0, x1, y1 = window
        return window, low[y0 : y1 + 1, x0 : x1 + 1]


def test_grids_have_the_documented_sizes():
    assert prompt_grid((100, 200), "box").shape == ((3 * 3) + (5 * 5), 4)
    points = prompt_grid((100, 200), "point", points_per_side=4)
    assert points.shape == (16, 2) and points[:, 0].max() < 200 and points[:, 1].max() < 100
    with pytest.raises(ValueError, match="kind"):
        prompt_grid((10, 10), "mask")


@pytest.mark.parametrize("shape", [(1, 1), (2, 40), (40, 2)])
def test_an_image_too_small_for_the_box_grid_is_a_clear_error_before_any_encode(shape):
    predictor = BlobPredictor()
    with pytest.raises(ValueError, match=r"image of .* pixels is too small for the box grid.*at least 3 pixels per side"):
        se.prior_maps(np.zeros(shape, np.uint8), predictor)  # issue 30, item 26: "box must be XYXY" before
    assert predictor.encodes == 0
    assert se.prior_maps(np.zeros((3, 3), np.uint8), predictor).prompts == 34  # the smallest that fits


def test_stability_is_sams_iou_of_the_two_thresholds():
    low = np.array([[[3.0, 0.5, -0.5, -3.0]]])
    assert _stability(low)[0] == pytest.approx(1 / 3)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [50, 50, 60, 60]], np.float32)
    assert sorted(_box_nms(boxes, np.array([0.5, 0.9, 0.1]), 0.5).tolist()) == [1, 2]


def test_priors_follow_samaugs_definitions_on_a_double():
    double = BlobPredictor()
    image = np.zeros((64, 64), np.uint8)
    pri = se.prior_maps(image, double)
    assert double.encodes == 1 and pri.prompts == len(prompt_grid((64, 64), "box"))
    assert pri.kept == 1  # every box gave the same mask: NMS keeps one
    inside = np.zeros((64, 64), bool)
    inside[10:31, 10:31] = True
    np.testing.assert_allclose(pri.segmentation, inside * 1.0)  # stability 1, one mask
    assert pri.boundary[10, 20] == 1 and pri.boundary[8, 20] == 1 and pri.boundary[20, 20] == 0
    assert pri.boundary[5, 20] == 0  # 2 px each side of the edge, not more
    assert se.prior_maps(image, double, prompt_kind="point").kept == 0  # predicted IoU 0.1 < 0.88


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_augment_scales_adds_and_clips(dtype):
    image = np.zeros((64, 64), dtype)
    image[0, 0] = image[20, 20] = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    pri = se.prior_maps(image, BlobPredictor())
    out = se.augment(image, pri)
    assert out.dtype == np.float32 and out.shape == (64, 64, 3)
    assert out[0, 0].tolist() == [1.0, 1.0, 1.0]  # white, no prior
    assert out[20, 20].tolist() == [1.0, 1.0, 1.0]  # white + prior: clipped to 1
    assert out[25, 25].tolist() == pytest.approx([0.0, 0.2, 0.0])  # G += segmentation / 5
    assert out[10, 20, 2] == 1.0 and out[40, 40].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="do not match"):
        se.augment(np.zeros((10, 10), np.uint8), pri)
    with pytest.raises(TypeError, match="PriorMaps"):
        se.augment(image, {"segmentation": 0})


def test_priors_of_the_embedded_model_cover_a_real_lesion(litemedsam_dir, data_root):
    sample = datasets.samples("busi", data_root)[0]
    image, truth = sample.image(), sample.ground_truth() > 0
    pri = se.prior_maps(image)
    assert pri.kept >= 1 and pri.segmentation.shape == truth.shape
    # the prior is higher on the lesion than off it
    assert pri.segmentation[truth].mean() > pri.segmentation[~truth].mean()


def test_priors_command_writes_maps_resumes_and_reports_bad_files(litemedsam_dir, data_root, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    sample = datasets.samples("busi", data_root)[0]
    se.io.write_mask(images / "a.png", np.ascontiguousarray(sample.image()[..., ::-1]))
    (images / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert main(["prior-maps", str(images), "--out", str(out), "--augment", "--quiet"]) == 1  # one bad file
    seg = se.io.read_mask(out / "a_segmentation.png")
    assert seg.dtype == np.uint16 and seg.max() > 0
    assert se.io.read_image(out / "a_augmented.png").shape == sample.image().shape
    assert not (out / "broken_segmentation.png").exists()
    stamp = (out / "a_segmentation.png").stat().st_mtime_ns
    (images / "broken.png").unlink()
    assert main(["prior-maps", str(images), "--out", str(out), "--augment", "--resume", "--quiet"]) == 0
    assert (out / "a_segmentation.png").stat().st_mtime_ns == stamp
