"""Fuzzing every public entry point (issue 12): random shapes, dtypes, memory orders and values
(NaN, inf, huge, negative) and random file bytes. Only ``ValueError`` / ``TypeError`` (and
``OSError`` for files) may come out: never another exception, never a crash. Writers must store
what they accept exactly. The C++ core, through its facade and ``samedenhancer._core`` directly,
also gets extreme spacings (tiny, huge, subnormal, inf, NaN) and extreme class ids (0, 1,
2**31 - 1, 2**31, 2**63 - 1, negative, uint16 max): whatever it accepts it must answer exactly as
SciPy / MedPy / the same map with small labels do, and it must accept what its documented range
holds (issue 30).

Example counts are modest so the suite stays fast, and the examples are derandomised so the suite
does not depend on luck; explore with ``SAMEDENHANCER_FUZZ=random SAMEDENHANCER_FUZZ_EXAMPLES=2000``.
The model is not the subject: the Enhancer runs on the fake model, the Predictor on the real
decoder with a fake encoder (one real embedding, replayed)."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from samedenhancer import (
    Enhancer,
    Predictor,
    _core,
    as_label_map,
    connected_components,
    distance_transform,
    io,
    metrics,
    mine_prompts,
)
from scipy import ndimage

from _core_helpers import label_maps, medpy_assd, medpy_hd95
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
    "ring_radius": st.sampled_from([0, 1, 20, -1, 10**12, 2**63 - 1, 2**64, 2.5, None]),
    "box_margin": st.sampled_from([None, 0, 3, 10**12, 2**63 - 1, 2**70, -1, -2, 1.5]),
    "min_area": st.sampled_from([0, 5, 10**15, 2**63 - 1, 2**64, -1, 2.0]),
    "min_fraction": st.sampled_from([0.0, 0.1, 1.0, 5e-324, 1.5, -0.1, float("nan"), float("inf"), None]),
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


# -- the core at its extremes: spacings and class ids (issue 30) --------------------------------
MIN_SPACING, MAX_DIAGONAL = 1e-18, 1e18  # the documented range of every spacing-taking entry point
SPACING_VALUES = st.one_of(
    st.sampled_from([1.0, 0.5, 1e-18, 1e-19, 1e-30, 2.2250738585072014e-308, 5e-324, 1e12, 1e17, 1e18, 1e19, 1e154,
                     1.7976931348623157e308, math.inf, -math.inf, math.nan, 0.0, -0.0, -1.0]),
    st.floats(min_value=5e-324, max_value=1.7976931348623157e308),  # any positive float, subnormals included
)


@st.composite
def spacings(draw, ndim: int):
    """One value for every axis, or one per axis."""
    if draw(st.booleans()):
        return draw(SPACING_VALUES)
    return tuple(draw(SPACING_VALUES) for _ in range(ndim))


def _per_axis(spacing, ndim: int) -> tuple[float, ...]:
    return spacing if isinstance(spacing, tuple) else (spacing,) * ndim


def _spacing_supported(spacing, shape) -> bool | None:
    """True inside the documented range, False outside, None within rounding of its border."""
    values = _per_axis(spacing, len(shape))
    if not all(v >= MIN_SPACING for v in values):  # NaN, zero, negative, tiny
        return False
    diagonal = math.hypot(*(v * n for v, n in zip(values, shape)))  # inf past float range, never raises
    if abs(diagonal - MAX_DIAGONAL) <= 1e-9 * MAX_DIAGONAL:
        return None
    return diagonal <= MAX_DIAGONAL


INT32_MAX = 2**31 - 1
EXTREME_IDS = [1, 2, 255, 65534, 65535, INT32_MAX - 1, INT32_MAX, 2**31, 2**32 + 1, 2**63 - 2, 2**63 - 1, -1, -(2**63)]


@st.composite
def extreme_label_maps(draw, max_side: int = 16):
    """A random label map of 1..3 classes whose ids are drawn from EXTREME_IDS (those its dtype
    holds; two classes may share one), as bool, uint8, uint16, int32 or int64."""
    base = draw(label_maps(max_side=max_side, max_classes=3))
    dtype = np.dtype(draw(st.sampled_from([np.int64, np.int64, np.int32, np.uint16, np.uint8, np.bool_])))
    if dtype == np.bool_:
        return base != 0
    info = np.iinfo(dtype)
    ids = [draw(st.sampled_from([v for v in EXTREME_IDS if info.min <= v <= info.max])) for _ in range(3)]
    return np.array([0, *ids], dtype=dtype)[base]


def _small_labels(label_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map with its nonzero values replaced by their ranks 1..k (uint8), and the values."""
    values = np.unique(label_map[label_map != 0])
    ranks = np.searchsorted(values, label_map) + 1
    return np.where(label_map != 0, ranks, 0).astype(np.uint8), values


def _clear_or_expected(call, *args, ok: bool | None, match: str):
    """``call(*args)``: when `ok` is False it must raise a ValueError matching `match`, when True it
    must succeed (None: either)."""
    try:
        result = call(*args)
    except ValueError as error:
        assert ok is not True, f"refused a supported input: {error}"
        assert re.search(match, str(error)), str(error)
        return None
    assert ok is not False, "accepted an unsupported input"
    return result


@st.composite
def images_or_volumes(draw):
    if draw(st.booleans()):
        return draw(extreme_label_maps())
    shape = tuple(draw(st.integers(1, 7)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.random(shape) < draw(st.floats(0.0, 1.0))).astype(np.uint8)


@FUZZ
@given(data=st.data())
def test_fuzz_distance_transform_extreme_spacings_and_ids(data):
    mask = data.draw(images_or_volumes())
    spacing = data.draw(spacings(mask.ndim))
    ok = _spacing_supported(spacing, mask.shape) if all(
        isinstance(v, float) and math.isfinite(v) and v > 0 for v in _per_axis(spacing, mask.ndim)) else False
    features = mask != 0
    contiguous = np.ascontiguousarray(mask.view(np.uint8) if mask.dtype == np.bool_ else mask)
    for call, args in ((distance_transform, (mask, spacing)), (_core.distance_transform, (contiguous, list(_per_axis(spacing, mask.ndim))))):
        distances = _clear_or_expected(call, *args, ok=ok, match=r"spacing")
        if distances is None:
            continue
        assert distances.dtype == np.float32 and distances.shape == mask.shape
        if features.all():
            assert np.isinf(distances).all()
        else:
            expected = ndimage.distance_transform_edt(features, sampling=_per_axis(spacing, mask.ndim))
            np.testing.assert_allclose(distances, expected, rtol=1e-5, atol=0)


@FUZZ
@given(data=st.data())
def test_fuzz_surface_metrics_extreme_spacings_and_ids(data):
    pred = data.draw(images_or_volumes())
    truth = np.roll(pred, data.draw(st.integers(-2, 2)), axis=0)
    spacing = data.draw(spacings(pred.ndim))
    ok = _spacing_supported(spacing, pred.shape)
    a, b = (np.ascontiguousarray(m != 0).view(np.uint8) for m in (pred, truth))
    for call, args in ((metrics.hd95, (pred, truth, spacing)), (metrics.assd, (pred, truth, spacing)),
                       (metrics.label_scores, (pred, truth, spacing)),
                       (_core.surface_metrics, (a, b, list(_per_axis(spacing, pred.ndim))))):
        _clear_or_expected(call, *args, ok=ok, match=r"spacing")
    if ok and a.any() and b.any():
        values = _per_axis(spacing, pred.ndim)
        hd95, assd = _core.surface_metrics(a, b, list(values))
        assert hd95 == pytest.approx(medpy_hd95(a, b, values), rel=1e-6)
        assert assd == pytest.approx(medpy_assd(a, b, values), rel=1e-6)


@FUZZ
@given(label_map=extreme_label_maps(), connectivity=st.sampled_from([4, 8]))
def test_fuzz_connected_components_extreme_ids(label_map, connectivity):
    """Components depend only on which pixels hold equal nonzero values."""
    small, values = _small_labels(label_map)
    expected = _core.connected_components(small, connectivity)
    contiguous = label_map.view(np.uint8) if label_map.dtype == np.bool_ else label_map
    for ours, ref in zip(_core.connected_components(contiguous, connectivity), expected):
        assert np.array_equal(ours, ref)
    in_range = values.size == 0 or (values.min() >= 0 and values.max() <= INT32_MAX)
    result = _clear_or_expected(connected_components, label_map, connectivity, ok=in_range, match=r"mask must hold labels")
    if result is not None:
        assert np.array_equal(result[0], expected[0]) and np.array_equal(result[1].areas, expected[1])


@FUZZ
@given(label_map=extreme_label_maps(), ring_radius=st.sampled_from([0, 3, 2**63 - 1]),
       box_margin=st.sampled_from([None, 0, 2, 2**63 - 1]), min_fraction=st.sampled_from([0.0, 0.1, 5e-324, 1.0]))
def test_fuzz_mine_prompts_extreme_ids(label_map, ring_radius, box_margin, min_fraction):
    """Class ids in [0, 2**31 - 1] come back as given, with the prompts of the same map in small
    labels; any other id is a clear error, from the core and from the facade."""
    small, values = _small_labels(label_map)
    in_range = values.size == 0 or (values.min() >= 0 and values.max() <= INT32_MAX)
    args = (ring_radius, box_margin, 1, min_fraction, False, False, [], [])
    expected = _core.mine_prompts(small, *args)
    contiguous = label_map.view(np.uint8) if label_map.dtype == np.bool_ else label_map
    mined = _clear_or_expected(_core.mine_prompts, contiguous, *args, ok=in_range, match=r"coarse: expected labels in \[0, 2147483647\]")
    if mined is not None:
        assert np.array_equal(mined.class_ids, values[expected.class_ids - 1])
        assert np.array_equal(mined.classes, values) and np.array_equal(mined.dropped_classes, values[expected.dropped_classes - 1])
        for name in ("boxes", "tight_boxes", "points", "point_labels", "has_negative", "areas", "ipq", "regions"):
            assert np.array_equal(getattr(mined, name), getattr(expected, name)), name
    facade = functools.partial(mine_prompts, ring_radius=ring_radius, box_margin=box_margin, min_area=1, min_fraction=min_fraction)
    prompts = _clear_or_expected(facade, label_map, ok=in_range, match=r"coarse must hold labels")
    if prompts is not None:
        assert np.array_equal(prompts.class_ids, values[expected.class_ids - 1])
        assert np.array_equal(prompts.regions, expected.regions)


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
