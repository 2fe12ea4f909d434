"""GPU engines give the masks of the CPU engine (IoU >= 0.99 per mask, fp16 included). Skipped with
the reason where this machine lacks the provider, TensorRT or a GPU."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Predictor
from samedenhancer.bench import datasets
from samedenhancer.engines import available_providers, tensorrt_missing

pytestmark = pytest.mark.gpu


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


@pytest.fixture(scope="module")
def reference(litemedsam_dir, data_root):
    sample = datasets.samples("kvasir")[0]
    truth = sample.ground_truth() > 0
    ys, xs = np.nonzero(truth)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    rng = np.random.default_rng(0)
    boxes = np.clip(box + rng.integers(-15, 15, (8, 4)), 0, None)
    cpu = Predictor(litemedsam_dir)
    cpu.set_image(sample.image())
    masks, _, _ = cpu.predict(box=boxes)
    return sample.image(), boxes, masks


def _check(predictor, reference):
    image, boxes, expected = reference
    predictor.set_image(image)
    masks, _, _ = predictor.predict(box=boxes)
    ious = [_iou(a[0], b[0]) for a, b in zip(masks, expected)]
    print(f"\n{predictor.providers[0]}: IoU vs CPU min {min(ious):.4f}")
    assert min(ious) >= 0.99


@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "TensorrtExecutionProvider"])
def test_onnxruntime_gpu_provider_matches_cpu(litemedsam_dir, reference, provider):
    if provider not in available_providers():
        pytest.skip(f"{provider} is not in onnxruntime.get_available_providers() {available_providers()}")
    predictor = Predictor(litemedsam_dir, providers="cuda" if provider.startswith("CUDA") else "tensorrt")
    assert predictor.providers[0] == provider
    _check(predictor, reference)


@pytest.mark.export
@pytest.mark.parametrize("half", [False, True])
def test_native_tensorrt_engine_matches_cpu(reference, tmp_path, half):
    missing = tensorrt_missing()
    if missing:
        pytest.skip(f"native TensorRT needs {missing}")
    from samedenhancer.export import export

    folder = export("litemedsam", format="engine", half=half, out=tmp_path / "trt")
    predictor = Predictor(folder)
    assert predictor.manifest.format == "engine" and predictor.manifest.half is half
    assert set(predictor.manifest.file_hashes) == {"encoder.engine", "decoder.engine"}  # what the runtime reads
    _check(predictor, reference)
