"""The int8 LiteMedSAM encoder (``export(..., quantize="int8")``): argument checks, and masks close to
fp32 on real images."""

from __future__ import annotations

import pytest

from samedenhancer import Enhancer, metrics
from samedenhancer.engines import Manifest
from samedenhancer.registry import ModelMissingError, load_model, model_dir
from samedenhancer.bench import datasets


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantize": "int4"}, "quantize must be None or 'int8'"),
        ({"quantize": "int8", "format": "engine"}, "not possible with format='engine'"),
        ({"model": "medsam2", "quantize": "int8", "checkpoint": "x.pt"}, "not for 'medsam2'"),
    ],
)
def test_impossible_quantisations_are_rejected(kwargs, match):
    export_module = pytest.importorskip("samedenhancer.export")
    kwargs = {"model": "litemedsam", **kwargs}
    with pytest.raises(ValueError, match=match):
        export_module.export(**kwargs)


@pytest.fixture(scope="module")
def int8_dir(litemedsam_dir):
    """The cached int8 export (made on first use, like the fp32 one)."""
    try:
        load_model("litemedsam-int8")
    except ModelMissingError as exc:
        pytest.skip(str(exc))
    return model_dir("litemedsam-int8")


def test_int8_export_is_its_own_model(int8_dir, litemedsam_dir):
    manifest = Manifest.load(int8_dir)
    assert int8_dir != litemedsam_dir and manifest.name == "litemedsam-int8" and manifest.quantize == "int8"
    assert Manifest.load(litemedsam_dir).quantize is None
    encoder = manifest.file("encoder")
    assert encoder.stat().st_size < 0.7 * Manifest.load(litemedsam_dir).file("encoder").stat().st_size


def test_int8_masks_are_close_to_fp32_on_real_images(int8_dir, data_root):
    fp32 = Enhancer("litemedsam", threshold=127)
    int8 = Enhancer("litemedsam-int8", threshold=127)
    assert int8.predictor.manifest.name == "litemedsam-int8" and fp32.predictor.manifest.name == "litemedsam"
    for dataset in ("kvasir", "busi"):
        sample = datasets.samples(dataset, data_root)[1]
        image = sample.image()
        coarse = sample.coarse("pranet") if dataset == "kvasir" else sample.ground_truth() * 255
        a, b = fp32.enhance(image, coarse).mask, int8.enhance(image, coarse).mask
        assert b.shape == a.shape and b.dtype == a.dtype and b.any()
        assert metrics.dice(a, b) > 0.95
