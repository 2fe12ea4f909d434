"""pytest-benchmark: the exported LiteMedSAM on ONNX Runtime CPU (2 threads), each timing asserting
its result is right. Run: ``python -m pytest benchmarks/test_bench_models.py --benchmark-only``.
Ratios against PyTorch eager: ``python -m samedenhancer.bench models``."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import Predictor
from samedenhancer.bench import datasets
from samedenhancer.registry import ModelMissingError, load_model, model_dir
from samedenhancer.metrics import dice


@pytest.fixture(scope="module")
def predictor():
    try:
        load_model("litemedsam")
    except ModelMissingError as exc:
        pytest.skip(str(exc))
    return Predictor(model_dir("litemedsam"), intra_op_threads=2)


@pytest.fixture(scope="module")
def sample():
    if datasets.data_root() is None:
        pytest.skip("../shared/data not found (set SAMEDENHANCER_DATA)")
    sample = datasets.samples("kvasir")[0]
    truth = sample.ground_truth() > 0
    ys, xs = np.nonzero(truth)
    return sample.image(), truth, np.array([xs.min(), ys.min(), xs.max(), ys.max()])


def test_encoder(benchmark, predictor, sample):
    image = sample[0]
    embedding = benchmark.pedantic(predictor.encode, args=(image,), rounds=5, warmup_rounds=1)
    assert embedding.features[0].shape == (1, 256, 64, 64)
    np.testing.assert_array_equal(embedding.features[0], predictor.encode(image).features[0])  # deterministic


@pytest.mark.parametrize("count", [1, 8])
def test_decoder(benchmark, predictor, sample, count):
    image, truth, box = sample
    embedding = predictor.encode(image)
    boxes = np.repeat(box[None], count, 0)
    low, iou = benchmark(predictor.decode, embedding, box=boxes)
    assert low.shape == (count, 1, 256, 256)
    masks = predictor.upscale(embedding, low) > 0
    assert all(dice(m[0], truth) > 0.9 for m in masks)


def test_predict_end_to_end(benchmark, predictor, sample):
    image, truth, box = sample

    def run():
        predictor.set_image(image)
        return predictor.predict(box=box)

    masks, _, _ = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    assert dice(masks[0, 0], truth) > 0.9
