"""Fuzzing every public entry point (issue 12): random shapes, dtypes, memory orders and values
(NaN, inf, huge, negative) and random file bytes. Only ``ValueError`` / ``TypeError`` (and
``OSError`` for files) may come out: never another exception, never a crash. Writers must store
what they accept exactly.

Example counts are modest so the suite stays fast, and the examples are derandomised so the suite
does not depend on luck; explore with ``SAMEDENHANCER_FUZZ=random SAMEDENHANCER_FUZZ_EXAMPLES=2000``.
The model is not the subject: the Enhancer runs on the fake model, the Predictor on the real
decoder with a fake encoder (one real embedding, replayed)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from samedenhancer import Enhancer, Predictor, as_label_map, connected_components, distance_transform, io, metrics, mine_prompts

from fakes import DoublePredictor

EXAMPLES = int(os.environ.get("SAMEDENHANCER_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("SAMEDENHANCER_FUZZ") != "random",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
CLEAR = (ValueError, TypeError)

DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64,
          np.float16, np.float32, np.float64, np.complex64]


def _elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0, 0.5, -1.0, 255.0, 1e30 if dtype.itemsize > 2 else 6e4])
        return st.one_of(special, st.floats(0, 1, width=8 * dtype.itemsize), st.floats(allow_nan=True, width=8 * dtype.itemsize))
    if dtype.kind == "c":
        return st.complex_numbers(max_magnitude=10, allow_nan=False, width=8 * dtype.itemsize)
    return None  # the full range of the integer dtype


@st.composite
def arrays(draw, ndim=st.integers(0, 3), side=st.integers(0, 12)):
    """A numpy array of any dtype and shape (some empty, some one pixel wide or long), values
    spanning the dtype (small labels likely), in C order, Fortran order or a strided view."""
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(ndim)
    shape = tuple(draw(st.lists(side, min_size=n, max_size=n)))
    if len(shape) == 2 and draw(st.booleans()) and all(shape):
        shape = draw(st.sampled_from([(1, 40), (40, 1), (2, 300), shape]))
    if np.dtype(dtype).kind in "iu" and draw(st.booleans()):
        elements = st.integers(max(0, int(np.iinfo(dtype).min)), min(4, int(np.iinfo(dtype).max)))
    else:
        elements = _elements(dtype)
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    order = draw(st.sampled_from(["C", "F", "strided"]))
    if order == "F":
        array = np.asfortranarray(array)
    elif order == "strided" and array.ndim >= 1:
        array = np.repeat(array, 2, axis=0)[::2]
    return array


def anything():
    """Arrays, and what a user may pass instead of one."""
    return st.one_of(arrays(), arrays(), arrays(), st.none(), st.integers(), st.text(max_size=3),
                     st.lists(st.integers(0, 3), max_size=4), st.lists(st.lists(st.floats(), min_size=2, max_size=2), max_size=3))


@st.composite
def mask_pairs(draw):
    """Two arrays, mostly of the same 2-D shape (so the deeper checks run)."""
    a = draw(arrays(ndim=st.just(2), side=st.integers(1, 12)))
    if draw(st.integers(0, 4)) == 0:
        return a, draw(arrays())
    b = draw(hnp.arrays(draw(st.sampled_from(DTYPES[1:9])), a.shape, elements=st.integers(0, 3)))
    return a, b


THRESHOLDS = st.sampled_from([None, 0.5, 127, 0, 1, 255, 300, -1, float("nan"), float("inf"), True, "127", np.float32(0.5), np.int64(127)])


def _clear_or_nothing(call, *args, errors=CLEAR, **kwargs):
    """Run ``call``; the only exceptions allowed are ``errors`` with a message."""
    try:
        return call(*args, **kwargs)
    except errors as error:
        assert str(error), f"{type(error).__name__} without a message"
        return None


# -- core ---------------------------------------------------------------------------------------
@FUZZ
@given(coarse=anything(), threshold=THRESHOLDS)
def test_fuzz_as_label_map(coarse, threshold):
    labels = _clear_or_nothing(as_label_map, coarse, threshold)
    if labels is not None:
        assert labels.shape == np.shape(coarse) and labels.flags.c_contiguous and labels.dtype.kind in "ui"


@FUZZ
@given(mask=anything(), connectivity=st.sampled_from([4, 8, 6, 0, 8.0, None, True, np.int64(4)]))
def test_fuzz_connected_components(mask, connectivity):
    result = _clear_or_nothing(connected_components, mask, connectivity)
    if result is not None:
        labels, stats = result
        assert labels.shape == np.shape(mask) and stats.areas.sum() == np.count_nonzero(labels)


@FUZZ
@given(mask=anything())
def test_fuzz_distance_transform(mask):
    distances = _clear_or_nothing(distance_transform, mask)
    if distances is not None:
        assert distances.shape == np.shape(mask) and not np.isnan(distances).any()
        assert (distances[np.asarray(mask) == 0] == 0).all()


MINING = st.fixed_dictionaries({}, optional={
    "prior": st.sampled_from(["multi", "single", "bad", {1: "single"}, {1: "x"}, {"a": "single"}, None, 3]),
    "ipq_filter": st.sampled_from([True, False, 1, None]),
    "ring_radius": st.sampled_from([0, 1, 20, -1, 10**12, 2.5, None]),
    "box_margin": st.sampled_from([None, 0, 3, 10**12, -2, 1.5]),
    "min_area": st.sampled_from([0, 5, 10**15, -1, 2.0]),
    "min_fraction": st.sampled_from([0.0, 0.1, 1.0, 1.5, -0.1, float("nan"), None]),
})


@FUZZ
@given(coarse=anything(), threshold=THRESHOLDS, options=MINING)
def test_fuzz_mine_prompts(coarse, threshold, options):
    prompts = _clear_or_nothing(mine_prompts, coarse, threshold=threshold, **options)
    if prompts is not None:
        h, w = np.shape(coarse)
        assert len(prompts.boxes) == len(prompts.class_ids) == len(prompts.points)
        if len(prompts.boxes):
            assert (prompts.tight_boxes[:, :2] >= 0).all() and (prompts.tight_boxes[:, 2] < w).all()
            assert (prompts.tight_boxes[:, 3] < h).all()


# -- metrics ------------------------------------------------------------------------------------
@FUZZ
@given(pair=mask_pairs(), spacing=st.sampled_from([None, 1.0, (0.5, 2.0), (0, 1), (np.nan, 1), -1, "x", (1, 2, 3)]))
def test_fuzz_metrics(pair, spacing):
    pred, truth = pair
    d = _clear_or_nothing(metrics.dice, pred, truth)
    if d is not None:
        assert np.isnan(d) or 0 <= d <= 1
    for score in (metrics.hd95, metrics.assd, metrics.label_scores):
        _clear_or_nothing(score, pred, truth, spacing)


# -- the Enhancer (fake model) ------------------------------------------------------------------
@st.composite
def image_and_coarse(draw):
    image = draw(arrays(ndim=st.sampled_from([2, 3]), side=st.integers(0, 10)))
    if image.ndim == 3 and draw(st.booleans()):
        image = draw(hnp.arrays(np.uint8, image.shape[:2] + (3,)))
    if draw(st.integers(0, 3)) == 0:
        return image, draw(anything())
    if draw(st.booleans()):  # any values of any dtype, the image's size
        return image, draw(hnp.arrays(draw(st.sampled_from(DTYPES)), image.shape[:2]))
    return image, draw(hnp.arrays(np.uint8, image.shape[:2], elements=st.integers(0, 2)))  # a plausible label map


@FUZZ
@given(pair=image_and_coarse(), threshold=st.sampled_from([None, 0.5, 127]), return_details=st.booleans(),
       policy=st.sampled_from(["box", "points", "points+box", "hierarchical"]), gate=st.sampled_from([None, True, False]))
def test_fuzz_enhancer_enhance(pair, threshold, return_details, policy, gate):
    image, coarse = pair
    enhancer = Enhancer(DoublePredictor(grow=1), threshold=threshold, policy=policy, gate=gate)
    result = _clear_or_nothing(enhancer.enhance, image, coarse, return_details=return_details)
    if result is not None:
        mask = result.mask if return_details else result
        assert mask.shape == np.shape(coarse)


@FUZZ
@given(pairs=st.lists(image_and_coarse(), max_size=3))
def test_fuzz_enhance_batch_keeps_one_item_per_input(pairs):
    items = Enhancer(DoublePredictor()).enhance_batch([p[0] for p in pairs], [p[1] for p in pairs])
    assert len(items) == len(pairs)
    for item, (image, coarse) in zip(items, pairs):
        assert (item.result is None) != (item.error is None)
        if item.ok:
            assert item.result.mask.shape == np.shape(coarse)
        else:
            assert isinstance(item.error, CLEAR), repr(item.error)


# -- the Predictor (real decoder, replayed embedding) --------------------------------------------
class ReplayEncoder:
    """The real encoder's outputs for one image, returned for every input of the right shape."""

    def __init__(self, encoder, outputs):
        self.outputs, self.inputs = encoder.outputs, encoder.inputs
        self.on_gpu = False
        self._values = outputs

    def run(self, feeds, keep_on_device=False):
        expected = tuple(d if isinstance(d, int) else None for d in self.inputs[0].shape)
        got = feeds["image"].shape
        assert len(got) == len(expected) and all(e is None or e == g for e, g in zip(expected, got)), got
        assert np.isfinite(feeds["image"]).all()
        return self._values


@pytest.fixture(scope="module")
def predictor(litemedsam_dir):
    predictor = Predictor(litemedsam_dir)
    model = predictor._model
    tensor = predictor.prepare(np.zeros((32, 48, 3), np.uint8)).tensor
    outputs = model.encoder.run({"image": tensor})
    predictor._model = dataclasses.replace(model, encoder=ReplayEncoder(model.encoder, outputs))
    return predictor


@FUZZ
@given(image=anything())
def test_fuzz_predictor_set_image(predictor, image):
    predictor.reset_image()
    _clear_or_nothing(predictor.set_image, image)


PROMPTS = st.one_of(st.none(), arrays(ndim=st.integers(0, 3), side=st.integers(0, 5)),
                    st.lists(st.floats(-1e6, 1e6) | st.sampled_from([np.nan, np.inf]), min_size=2, max_size=4))


@FUZZ
@given(coords=PROMPTS, labels=PROMPTS, box=PROMPTS, multimask=st.booleans(), logits=st.booleans())
def test_fuzz_predictor_predict(predictor, coords, labels, box, multimask, logits):
    predictor.set_image(np.full((30, 50), 120, np.uint8))
    result = _clear_or_nothing(predictor.predict, coords, labels, box, multimask_output=multimask, return_logits=logits)
    if result is not None:
        assert result.masks.shape[-2:] == (30, 50) and result.masks.shape[1] == (3 if multimask else 1)


# -- io readers and writers ---------------------------------------------------------------------
def _valid_encodings() -> list[tuple[str, bytes]]:
    mask = np.zeros((9, 7), np.uint8)
    mask[2:6, 1:5] = 3
    encodings = [(s, cv2.imencode(s, mask)[1].tobytes()) for s in (".png", ".bmp", ".jpg", ".tif")]
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "m.npy", mask)
        encodings.append((".npy", (Path(folder) / "m.npy").read_bytes()))
    return encodings


ENCODINGS = _valid_encodings()


@st.composite
def damaged_files(draw):
    """A readable file cut short, with bytes flipped, or replaced by random bytes; any suffix."""
    suffix, data = draw(st.sampled_from(ENCODINGS))
    how = draw(st.sampled_from(["truncate", "flip", "random", "whole"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        data = bytes(data)
    elif how == "random":
        data = draw(st.binary(max_size=200))
    suffix = draw(st.sampled_from([suffix, suffix, ".png", ".tif", ".npy", ".dcm", ".jpg", ".nii.gz", ".txt", ""]))
    return suffix, data


@FUZZ
@given(file=damaged_files())
def test_fuzz_readers_on_damaged_files(tmp_path_factory, file):
    suffix, data = file
    path = tmp_path_factory.mktemp("read") / f"m{suffix}"
    path.write_bytes(data)
    for read in (io.read_array, io.read_image, io.read_mask):
        _clear_or_nothing(read, path, errors=CLEAR + (OSError,))
    if suffix == ".nii.gz":
        pytest.importorskip("nibabel", reason="NIfTI needs the nifti extra")
        _clear_or_nothing(io.read_volume, path, errors=CLEAR + (OSError,))


@FUZZ
@given(mask=anything(), suffix=st.sampled_from([".png", ".tif", ".npy", ".bmp", ".jpg", ".dcm", ".gif"]))
def test_fuzz_write_mask_stores_exactly_or_refuses(tmp_path_factory, mask, suffix):
    folder = tmp_path_factory.mktemp("write")
    path = _clear_or_nothing(io.write_mask, folder / f"m{suffix}", mask)
    if path is None:
        assert not list(folder.iterdir())  # nothing half-written
        return
    assert [p.name for p in folder.iterdir()] == [path.name]
    back = np.load(path) if suffix == ".npy" else io.read_array(path)
    if suffix == ".npy" or np.ndim(mask) == 2:
        assert np.array_equal(back, np.asarray(mask), equal_nan=np.asarray(mask).dtype.kind == "f"), "labels changed"


@FUZZ
@given(volume=arrays(ndim=st.integers(2, 4), side=st.integers(0, 6)))
def test_fuzz_write_volume_stores_exactly_or_refuses(tmp_path_factory, volume):
    pytest.importorskip("nibabel", reason="NIfTI needs the nifti extra")
    folder = tmp_path_factory.mktemp("volume")
    path = _clear_or_nothing(io.write_volume, folder / "v.nii.gz", volume)
    if path is None:
        assert not list(folder.iterdir())
        return
    back, _ = io.read_volume(path, as_mask=True)
    if volume.dtype.kind in "iu" or volume.dtype == bool:  # labels: the values (as_mask may narrow the dtype)
        assert np.array_equal(back, volume), "voxels changed"
    else:
        assert np.array_equal(back, volume, equal_nan=True), "voxels changed"  # whole floats come back as labels
