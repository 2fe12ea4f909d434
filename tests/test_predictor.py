"""The runtime on the cached LiteMedSAM export: Predictor behaviour, preprocessing, errors, and a run
in a process where importing torch fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import samedenhancer
from samedenhancer import ImageEmbedding, Predictor
from samedenhancer.bench import datasets
from samedenhancer.registry import ModelMissingError, load_model
from samedenhancer.engines import Manifest, resolve_providers, static_manifest, tensorrt_missing
from samedenhancer.transforms import preprocess, resize_bilinear
from samedenhancer.metrics import dice


@pytest.fixture(scope="module")
def predictor(litemedsam_dir):
    return Predictor(litemedsam_dir)


@pytest.fixture(scope="module")
def kvasir(data_root):
    sample = datasets.samples("kvasir")[0]
    truth = sample.ground_truth() > 0
    ys, xs = np.nonzero(truth)
    return sample.image(), truth, np.array([xs.min(), ys.min(), xs.max(), ys.max()])


def test_predictor_is_exported_at_top_level():
    assert samedenhancer.Predictor is Predictor
    assert "Predictor" in samedenhancer.__all__


def test_manifest_contract(predictor):
    manifest = predictor.manifest
    assert isinstance(manifest, Manifest)
    assert (manifest.name, manifest.input_size, manifest.default_policy) == ("litemedsam", 256, "box")
    assert manifest.trained_prompts == ("box",)
    assert manifest.checkpoint_sha256 is not None and len(manifest.checkpoint_sha256) == 64
    assert predictor.providers == ("CPUExecutionProvider",)


def test_box_prompt_segments_the_polyp(predictor, kvasir):
    image, truth, box = kvasir
    predictor.set_image(image)
    masks, iou, low = predictor.predict(box=box)
    assert masks.shape == (1, 1) + image.shape[:2] and masks.dtype == np.bool_
    assert iou.shape == (1, 1) and iou.dtype == np.float32
    assert low.shape == (1, 1, 256, 256) and low.dtype == np.float32
    assert dice(masks[0, 0], truth) > 0.9


def test_batched_prompts_equal_single_calls(predictor, kvasir):
    image, _, box = kvasir
    predictor.set_image(image)
    boxes = np.stack([box, box + [10, 10, -10, -10], box + [-20, 0, 0, 20]])
    points = np.array([[[box[0] + box[2], box[1] + box[3]], [0, 0]]]) / [2, 2] * [[1, 1], [0, 0]]
    points = np.repeat(points, 3, 0)
    labels = np.tile([[1, -1]], (3, 1))
    masks, iou, low = predictor.predict(points, labels, boxes)
    assert masks.shape[:2] == (3, 1)
    for i in range(3):
        single, single_iou, _ = predictor.predict(points[i], labels[i], boxes[i])
        assert np.abs(single_iou - iou[i : i + 1]).max() < 1e-4
        assert (single[0] != masks[i]).mean() < 1e-4


def test_multimask_output_gives_three_masks(predictor, kvasir):
    image, _, box = kvasir
    predictor.set_image(image)
    masks, iou, low = predictor.predict(point_coords=[[box[0] + 40, box[1] + 40]], point_labels=[1], multimask_output=True)
    assert masks.shape[:2] == (1, 3) and iou.shape == (1, 3) and low.shape[:2] == (1, 3)


def test_return_logits_thresholds_to_masks(predictor, kvasir):
    image, _, box = kvasir
    predictor.set_image(image)
    masks, _, _ = predictor.predict(box=box)
    logits, _, _ = predictor.predict(box=box, return_logits=True)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits > 0, masks)


@pytest.mark.parametrize("floor", [0.0, -6.0])
def test_upscale_window_holds_everything_above_the_floor_and_equals_the_full_upscale(predictor, kvasir, floor):
    image, _, box = kvasir
    embedding = predictor.encode(image)
    low, _ = predictor.decode(embedding, box=[box])
    full = predictor.upscale(embedding, low)[0, 0]
    window, logits = predictor.upscale_window(embedding, low[0, 0], floor=floor)
    x0, y0, x1, y1 = window
    np.testing.assert_allclose(logits, full[y0 : y1 + 1, x0 : x1 + 1], atol=1e-4)
    outside = np.ones(full.shape, bool)
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    assert (full[outside] <= floor + 1e-4).all() and (full > floor).any()
    assert (x1 - x0 + 1) * (y1 - y0 + 1) < full.size  # a lesion's window, not the image
    wide, _ = predictor.upscale_window(embedding, low[0, 0], floor=floor, include=(0, 0, 3, 3))
    assert wide[:2] == (0, 0) and wide[2:] == (x1, y1)


def test_predict_refuses_reversed_and_empty_boxes(predictor, kvasir):
    image, _, box = kvasir
    predictor.set_image(image)
    x0, y0, x1, y1 = box
    with pytest.raises(ValueError, match="x0 <= x1"):
        predictor.predict(box=[x1, y0, x0, y1])
    with pytest.raises(ValueError, match="at least one box"):
        predictor.predict(box=np.zeros((0, 4)))


def test_a_failed_set_image_leaves_no_stale_image(predictor, kvasir):
    image, _, box = kvasir
    predictor.set_image(image)
    with pytest.raises(ValueError):
        predictor.set_image(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(box=box)


def test_an_image_too_elongated_for_the_model_is_a_clear_error(predictor):
    with pytest.raises(ValueError, match="too elongated"):
        predictor.encode(np.zeros((5, 5000), np.uint8))


def test_resize_bilinear_matches_the_align_corners_false_formula():
    rng = np.random.default_rng(0)
    low = rng.standard_normal((2, 3, 5)).astype(np.float32)
    out = resize_bilinear(low, (7, 11))
    # Independent evaluation of the formula for one pixel: src = (dst + 0.5) * in / out - 0.5.
    y, x = 4, 6
    sy, sx = max((y + 0.5) * 3 / 7 - 0.5, 0), max((x + 0.5) * 5 / 11 - 0.5, 0)
    y0, x0 = int(sy), int(sx)
    y1, x1 = min(y0 + 1, 2), min(x0 + 1, 4)
    ly, lx = sy - y0, sx - x0
    expected = (low[:, y0, x0] * (1 - ly) * (1 - lx) + low[:, y0, x1] * (1 - ly) * lx
                + low[:, y1, x0] * ly * (1 - lx) + low[:, y1, x1] * ly * lx)
    np.testing.assert_allclose(out[:, y, x], expected, atol=1e-5)
    np.testing.assert_allclose(resize_bilinear(low, (7, 11), roi=(0, 0, 10, 6)), out, atol=1e-6)
    np.testing.assert_allclose(resize_bilinear(low, (7, 11), roi=(3, 2, 8, 5)), out[:, 2:6, 3:9], atol=1e-6)


def test_encode_and_decode_in_parallel_threads(predictor, kvasir):
    image, _, box = kvasir
    first = predictor.encode(image)
    expected, _ = predictor.decode(first, box=box)
    results = {}

    def encode():
        results["embedding"] = predictor.encode(image[::-1].copy())

    thread = threading.Thread(target=encode)
    thread.start()
    low, _ = predictor.decode(first, box=box)
    thread.join()
    np.testing.assert_array_equal(low, expected)
    assert isinstance(results["embedding"], ImageEmbedding)


def test_embedding_is_immutable(predictor, kvasir):
    embedding = predictor.encode(kvasir[0])
    with pytest.raises(ValueError):
        embedding.features[0][0, 0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        embedding.original_size = (1, 1)


@pytest.mark.parametrize("kind", ["grey-uint8", "grey-uint16", "rgb-uint8", "rgb-float64", "grey-float32", "grey-int16", "hw1"])
def test_preprocessing_per_dtype(kind):
    manifest = Manifest.from_dict(static_manifest("litemedsam"))
    rng = np.random.default_rng(1)
    base = rng.integers(0, 200, (50, 80)).astype(np.float64)
    image = {
        "grey-uint8": base.astype(np.uint8),
        "grey-uint16": (base * 300).astype(np.uint16),
        "rgb-uint8": np.stack([base] * 3, -1).astype(np.uint8),
        "rgb-float64": np.stack([base] * 3, -1) / 7.0,
        "grey-float32": (base - 100).astype(np.float32),
        "grey-int16": (base - 100).astype(np.int16),
        "hw1": base.astype(np.uint8)[..., None],
    }[kind]
    tensor, scale, valid = preprocess(image, manifest)
    assert tensor.shape == (1, 3, 256, 256) and tensor.dtype == np.float32
    assert valid == (160, 256) and scale == (256 / 80, 256 / 80)
    inside = tensor[..., :160, :256]
    assert inside.min() == pytest.approx(0.0, abs=1e-6) and inside.max() == pytest.approx(1.0, abs=1e-6)
    assert (tensor[..., 160:, :] == 0).all()
    np.testing.assert_array_equal(tensor[0, 0], tensor[0, 2])


def test_sam2_preprocessing_uses_imagenet_statistics():
    manifest = Manifest.from_dict(static_manifest("medsam2"))
    image = np.full((100, 60, 3), 255, np.uint8)
    tensor, scale, valid = preprocess(image, manifest)
    assert tensor.shape == (1, 3, 512, 512) and valid == (512, 512) and scale == (512 / 60, 512 / 100)
    expected = (1.0 - np.array(manifest.mean)) / np.array(manifest.std)
    np.testing.assert_allclose(tensor[0, :, 10, 10], expected, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_constant_image_gives_finite_masks(predictor, dtype):
    predictor.set_image(np.full((40, 30), 7, dtype))
    masks, iou, low = predictor.predict(box=[2, 2, 20, 30])
    assert np.isfinite(low).all() and np.isfinite(iou).all()
    assert masks.shape == (1, 1, 40, 30)


def test_predict_before_set_image_raises(litemedsam_dir):
    with pytest.raises(RuntimeError, match="set_image"):
        Predictor(litemedsam_dir).predict(box=[0, 0, 5, 5])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "point_coords .* and/or a box"),
        ({"box": [1, 2, 3]}, "box must be"),
        ({"point_coords": [[1, 2, 3]], "point_labels": [1]}, "point_coords must be"),
        ({"point_coords": [[1, 2]], "point_labels": [1, 1]}, "point_labels must have shape"),
        ({"point_coords": [[1, 2]]}, "go together"),
        ({"point_coords": [[1, 2]], "point_labels": [5]}, "point_labels must be"),
        ({"point_coords": [[[1, 2]]] * 2, "point_labels": [[1]] * 2, "box": [[0, 0, 4, 4]] * 3}, "same number of prompts"),
        ({"box": [0, 0, np.nan, 4]}, "finite"),
        ({"box": [0, 0, 1e300, 4]}, "within one image size"),  # issue 30, item 20: float32 inf before
        ({"box": [-1e300, 0, 5, 5]}, "within one image size"),
        ({"point_coords": [[1e300, 5]], "point_labels": [1]}, "within one image size"),
        ({"point_coords": [[5, -41]], "point_labels": [1]}, "within one image size"),
        ({"point_coords": [[5, np.inf]], "point_labels": [1]}, "finite"),
    ],
)
def test_bad_prompts_are_rejected(predictor, kwargs, match):
    predictor.set_image(np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match=match):
        predictor.predict(**kwargs)


@pytest.mark.parametrize(
    "image,error,match",
    [
        (np.zeros((4, 4, 4), np.uint8), ValueError, "H x W"),
        (np.zeros((4, 4), bool), TypeError, "dtype"),
        ([[1, 2], [3, 4]], TypeError, "numpy array"),
        (np.full((4, 4), np.nan, np.float32), ValueError, "finite"),
        (np.zeros((0, 4), np.uint8), ValueError, "at least one pixel"),
    ],
)
def test_bad_images_are_rejected(predictor, image, error, match):
    with pytest.raises(error, match=match):
        predictor.set_image(image)


def test_absurd_prompts_never_reach_the_decoder(predictor):
    predictor.set_image(np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match="within one image size"):
        predictor.decode(predictor.embedding, box=np.array([[0, 0, 4, 4], [0, 0, 4, 1e300]]))
    with pytest.raises(TypeError, match="real numbers"):
        predictor.decode(predictor.embedding, box=["a", "b", "c", "d"])
    low, iou = predictor.decode(predictor.embedding, box=[-19, -19, 38, 38])  # within one image size: fine
    assert np.isfinite(low).all() and np.isfinite(iou).all()


def test_embedding_of_another_model_is_rejected(predictor, kvasir):
    embedding = predictor.encode(kvasir[0])
    foreign = ImageEmbedding(embedding.features, embedding.original_size, embedding.scale, embedding.valid_size, "medsam2")
    with pytest.raises(ValueError, match="made by 'medsam2'"):
        predictor.decode(foreign, box=[0, 0, 5, 5])


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="model must be one of"):
        Predictor("sam3_giant")


def test_unavailable_provider_is_rejected(litemedsam_dir):
    with pytest.raises(ValueError, match="not available"):
        resolve_providers(["NoSuchExecutionProvider"])
    with pytest.raises(TypeError, match="providers"):
        resolve_providers([3])


def test_missing_sam2_export_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMEDENHANCER_CACHE", str(tmp_path))
    with pytest.raises(ModelMissingError, match="samedenhancer export medsam2 --checkpoint"):
        load_model("medsam2")


def test_half_onnx_and_engine_without_tensorrt_are_rejected(tmp_path):
    from samedenhancer.export import FORMATS, export

    assert set(FORMATS) == {"onnx", "engine"}
    with pytest.raises(ValueError, match="half=True is not possible with format='onnx'"):
        export("litemedsam", half=True, out=tmp_path)
    with pytest.raises(ValueError, match="format must be one of"):
        export("litemedsam", format="tflite", out=tmp_path)
    with pytest.raises(ValueError, match="needs checkpoint="):
        export("medsam2", out=tmp_path)
    with pytest.raises(TypeError, match="half must be a bool"):
        export("litemedsam", half=1, out=tmp_path)
    missing = tensorrt_missing()
    if not missing:
        pytest.skip("TensorRT and a GPU are present: engine export is possible here")
    with pytest.raises(RuntimeError, match="missing: " + missing.split(",")[0]):
        export("litemedsam", format="engine", out=tmp_path)
    assert not any(tmp_path.iterdir())


_TORCH_BLOCKED = textwrap.dedent(
    """
    import sys, importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "timm"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    import samedenhancer
    from samedenhancer.registry import ModelMissingError
    image = np.zeros((120, 160), np.uint8)
    image[40:80, 50:110] = 200
    try:
        predictor = samedenhancer.Predictor()
    except ModelMissingError as exc:
        print("MISSING", exc)
        sys.exit(3)
    predictor.set_image(image)
    masks, iou, low = predictor.predict(box=[45, 35, 115, 85])
    assert "torch" not in sys.modules
    print("MASK", int(masks.sum()), masks.shape)
    """
)


def _run_blocked(cache):
    env = dict(os.environ, SAMEDENHANCER_CACHE=str(cache))
    return subprocess.run([sys.executable, "-c", _TORCH_BLOCKED], env=env, capture_output=True, text=True, timeout=300)


def test_runtime_runs_with_torch_blocked(litemedsam_dir):
    result = _run_blocked(litemedsam_dir.parent)
    assert result.returncode == 0, result.stderr
    pixels = int(result.stdout.split("MASK")[1].split()[0])
    assert 0.5 * 40 * 60 < pixels < 2 * 40 * 60


def test_missing_export_without_torch_says_how_to_make_it(tmp_path):
    result = _run_blocked(tmp_path)
    assert result.returncode == 3, result.stderr
    assert "run `samedenhancer export litemedsam` (needs the export extra)" in result.stdout


def test_a_damaged_cached_export_without_torch_says_what_is_wrong_and_how_to_remake_it(litemedsam_dir, tmp_path):
    import shutil

    folder = tmp_path / "litemedsam"
    shutil.copytree(litemedsam_dir, folder, ignore=shutil.ignore_patterns("trt_cache"))
    (folder / "encoder.onnx").write_bytes(b"")
    result = _run_blocked(tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"{folder / 'encoder.onnx'} is damaged: 0 bytes where the export wrote" in result.stdout
    assert "torch cannot be imported to export it; run `samedenhancer export litemedsam`" in result.stdout
