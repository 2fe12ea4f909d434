"""mine_prompts against the research-style reference pipeline (bench/reference.py: OpenCV
components, contours and full-image distance transforms), on random and real masks, plus edge
cases, soft maps, priors and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _core_helpers import label_maps, real_masks
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from samedenhancer import Prompts, as_label_map, mine_prompts
from samedenhancer.bench.reference import mine_prompts_reference

FIELDS = ("class_ids", "boxes", "tight_boxes", "points", "has_negative", "areas", "regions", "dropped_classes")


def check_against_reference(label_map: np.ndarray, invariants: bool = True, **options) -> Prompts:
    ours = mine_prompts(label_map, **options)
    ref = mine_prompts_reference(np.ascontiguousarray(label_map), **options)
    for name in FIELDS:
        assert np.array_equal(getattr(ours, name), getattr(ref, name)), name
    np.testing.assert_allclose(ours.ipq, ref.ipq, rtol=1e-6)
    if invariants:
        check_invariants(ours, **options)
    return ours


def check_invariants(p: Prompts, ring_radius: int = 20, **_) -> None:
    """Properties that hold whatever the reference says: types, shapes and the point rules."""
    r = len(p)
    h, w = p.regions.shape
    assert p.class_ids.dtype == np.int32 and p.boxes.dtype == np.int32 and p.points.dtype == np.int32
    assert p.points.shape == (r, 2, 2) and p.point_labels.shape == (r, 2) and p.boxes.shape == (r, 4)
    assert p.areas.dtype == np.int64 and p.ipq.dtype == np.float32 and p.has_negative.dtype == np.bool_
    assert np.all((p.ipq > 0) & (p.ipq <= 1))
    assert np.array_equal(p.point_labels[:, 0], np.ones(r))
    assert np.array_equal(p.point_labels[:, 1], np.where(p.has_negative, 0, -1))
    present = np.unique(p.label_map[p.label_map > 0])
    assert np.array_equal(p.classes, present)
    assert set(p.dropped_classes) == set(present) - set(p.class_ids)
    for i in range(r):
        region = p.regions == i + 1
        assert region.sum() == p.areas[i]
        ys, xs = np.nonzero(region)
        assert p.tight_boxes[i].tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
        x0, y0, x1, y1 = p.boxes[i]
        assert 0 <= x0 <= xs.min() and 0 <= y0 <= ys.min() and xs.max() <= x1 < w and ys.max() <= y1 < h
        (px, py), (nx, ny) = p.points[i]
        assert region[py, px], "positive point outside its region"
        inside = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        assert inside[py, px] == inside.max()
        if p.has_negative[i]:
            assert p.label_map[ny, nx] != p.class_ids[i]
            outside = ndimage.distance_transform_edt(~region)
            ring = (outside <= ring_radius) & (p.label_map != p.class_ids[i])
            assert ring[ny, nx] and outside[ny, nx] == outside[ring].max()


@settings(max_examples=120, deadline=None)
@given(
    label_maps(),
    st.integers(0, 8),
    st.sampled_from([0.0, 0.1]),
    st.booleans(),
    st.sampled_from(["multi", "single"]),
    st.sampled_from([None, 0, 3]),
)
def test_random_label_maps_match_reference(mask, ring_radius, min_fraction, ipq_filter, prior, box_margin):
    check_against_reference(
        mask, ring_radius=ring_radius, min_fraction=min_fraction, ipq_filter=ipq_filter, prior=prior, box_margin=box_margin
    )


@pytest.mark.parametrize("dataset", ["kvasir", "cvc_clinicdb", "busi", "thyroid_ddti", "acdc"])
def test_real_masks_match_reference(data_root, dataset):
    regions = 0
    for _, mask in real_masks(dataset):
        regions += len(check_against_reference(mask, invariants=False))
    assert regions > 0


def test_real_soft_maps_threshold_like_the_mask(data_root):
    from samedenhancer.bench import datasets

    sample = datasets.samples("kvasir", data_root)[0]
    soft = sample.coarse("pranet")
    p = mine_prompts(soft, threshold=127)
    assert np.array_equal(p.label_map, (soft > 127).astype(np.uint8))
    q = mine_prompts(soft.astype(np.float32) / 255.0, threshold=127.5 / 255.0)
    assert np.array_equal(q.regions, p.regions) and np.array_equal(q.points, p.points)


def test_known_square():
    mask = np.zeros((40, 50), np.uint8)
    mask[10:21, 5:16] = 1
    p = mine_prompts(mask, ring_radius=5)
    assert p.points.tolist() == [[[10, 15], [5, 5]]]
    assert p.boxes.tolist() == [[4, 9, 16, 21]] and p.tight_boxes.tolist() == [[5, 10, 15, 20]]
    assert p.point_labels.tolist() == [[1, 0]] and p.areas.tolist() == [121]


def test_ring_excludes_every_pixel_of_the_class():
    mask = np.zeros((30, 60), np.uint8)
    mask[10:20, 10:20] = 1  # region
    mask[10:20, 22:24] = 1  # same class, filtered out (area < 10 % ... of the class): still not ring
    p = mine_prompts(mask, ring_radius=6, min_fraction=0.5)
    assert len(p) == 1
    (_, _), (nx, ny) = p.points[0]
    assert mask[ny, nx] == 0
    check_against_reference(mask, ring_radius=6, min_fraction=0.5)


def test_full_image_reports_empty_ring():
    p = mine_prompts(np.ones((9, 12), np.uint8))
    assert p.has_negative.tolist() == [False] and p.point_labels.tolist() == [[1, -1]]
    assert p.points[0, 1].tolist() == [0, 0]
    assert p.points[0, 0].tolist() == [4, 4]  # central: the image border counts as outside
    check_against_reference(np.ones((9, 12), np.uint8))


def test_empty_mask():
    p = mine_prompts(np.zeros((8, 8), np.uint8))
    assert len(p) == 0 and p.classes.size == 0 and p.dropped_classes.size == 0 and not p.regions.any()
    assert p.points.shape == (0, 2, 2) and p.boxes.shape == (0, 4)


def test_one_pixel_is_dropped_by_min_area_and_reported():
    mask = np.zeros((8, 8), np.uint8)
    mask[3, 3] = 2
    p = mine_prompts(mask)
    assert len(p) == 0 and p.classes.tolist() == [2] and p.dropped_classes.tolist() == [2]
    q = check_against_reference(mask, min_area=1)
    assert q.points.tolist() == [[[3, 3], [3, 5]]] or q.has_negative[0]
    assert q.points[0, 0].tolist() == [3, 3]


@pytest.mark.parametrize("shape", [(1, 30), (30, 1)])
def test_lines(shape):
    mask = np.zeros(shape, np.uint8)
    mask.flat[5:20] = 1
    mask.flat[24:27] = 1
    check_against_reference(mask, ring_radius=4)
    check_against_reference(mask, ring_radius=4, min_fraction=0.0)


def test_regions_touching_every_border():
    mask = np.zeros((25, 30), np.uint8)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = 1
    mask[10:15, 12:18] = 2
    check_against_reference(mask, ring_radius=3)


def test_uint16_classes_3_and_200():
    mask = np.zeros((40, 40), np.uint16)
    mask[5:15, 5:15] = 3
    mask[20:35, 20:30] = 200
    mask[20:23, 2:5] = 200
    p = check_against_reference(mask, ring_radius=4, min_fraction=0.0)
    assert p.classes.tolist() == [3, 200] and p.class_ids.tolist() == [3, 200, 200]
    single = mine_prompts(mask, ring_radius=4, min_fraction=0.0, prior={200: "single"})
    assert single.class_ids.tolist() == [3, 200] and single.areas.tolist() == [100, 150]
    check_against_reference(mask, ring_radius=4, min_fraction=0.0, prior={200: "single"})


def test_fuse_merges_nearby_parts():
    mask = np.zeros((30, 30), np.uint8)
    mask[5:20, 5:12] = 1
    mask[5:20, 13:20] = 1  # split by one column: fuses into one region
    p = check_against_reference(mask)
    assert len(p) == 1 and p.areas.tolist() == [210] and p.tight_boxes.tolist() == [[5, 5, 19, 19]]


def test_ipq_filter_drops_the_thin_part():
    mask = np.zeros((60, 60), np.uint8)
    cy, cx = np.ogrid[:60, :60]
    mask[(cy - 20) ** 2 + (cx - 20) ** 2 <= 64] = 1
    mask[45, 5:55] = 1
    assert len(mine_prompts(mask, min_fraction=0.0)) == 2
    p = check_against_reference(mask, min_fraction=0.0, ipq_filter=True)
    assert len(p) == 1 and p.tight_boxes.tolist() == [[12, 12, 28, 28]]


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.uint16, np.int32, np.int64])
def test_dtypes_orders_and_views(dtype):
    rng = np.random.default_rng(5)
    base = ((rng.random((60, 80)) < 0.05) * rng.integers(1, 3, (60, 80))).astype(np.uint8)
    base = np.maximum(base, ndimage.grey_dilation(base, size=5))
    mask = (base > 0) if dtype is np.bool_ else base.astype(dtype)
    for variant in (mask, np.asfortranarray(mask), mask[::2, ::2], mask.T, mask[4:50, 9:70]):
        p = mine_prompts(variant, ring_radius=6, min_fraction=0.0)
        q = check_against_reference(np.ascontiguousarray(variant).astype(np.int64), ring_radius=6, min_fraction=0.0)
        for name in FIELDS:
            assert np.array_equal(getattr(p, name), getattr(q, name))


def test_soft_maps():
    soft = np.zeros((20, 20), np.float32)
    soft[5:12, 5:12] = 0.8
    soft[5:12, 12] = 0.5  # not > 0.5
    p = mine_prompts(soft)
    assert p.label_map.dtype == np.uint8 and p.tight_boxes.tolist() == [[5, 5, 11, 11]]
    assert mine_prompts(soft, threshold=0.4).tight_boxes.tolist() == [[5, 5, 12, 11]]
    grey = (soft * 255).astype(np.uint8)
    assert np.array_equal(mine_prompts(grey, threshold=127).regions, p.regions)
    assert mine_prompts(grey).classes.tolist() == [127, 204]  # without threshold uint8 is a label map
    assert np.array_equal(as_label_map(soft.astype(np.float64)), p.label_map)


@pytest.mark.parametrize(
    ("coarse", "kwargs", "error", "message"),
    [
        (np.zeros((4, 4), np.int8), {}, TypeError, "coarse must be a label map of dtype .* got dtype int8"),
        (np.zeros((4, 4), np.uint32), {}, TypeError, "got dtype uint32"),
        (np.zeros((2, 4, 4), np.uint8), {}, ValueError, r"coarse must be a 2-D array \(H, W\), got an array of shape \(2, 4, 4\)"),
        (np.array([[0, -1]], np.int64), {}, ValueError, "coarse must hold labels >= 0, got a minimum of -1"),
        (np.array([[0, 2**40]], np.int64), {}, ValueError, "coarse must hold labels <= 2147483647"),
        (np.array([[0.0, np.nan]], np.float32), {}, ValueError, "coarse must be a soft map without NaN"),
        (np.array([[0.0, 1.5]]), {}, ValueError, r"values in \[0, 1\], got values in \[0.0, 1.5\]"),
        (np.zeros((4, 4)), {"threshold": 2.0}, ValueError, r"threshold must be a number in \[0, 1\], got 2.0"),
        (np.zeros((4, 4), np.uint8), {"threshold": 300}, ValueError, r"threshold must be a number in \[0, 255\], got 300"),
        (np.zeros((4, 4), np.uint16), {"threshold": 3}, ValueError, "threshold applies to float soft maps"),
        (np.zeros((4, 4), np.uint8), {"threshold": "127"}, TypeError, "threshold must be a number"),
        (np.zeros((4, 4), np.uint8), {"prior": "many"}, ValueError, "prior must be 'single', 'multi' or a dict"),
        (np.zeros((4, 4), np.uint8), {"prior": {1: "one"}}, ValueError, r"prior\[1\] must be 'single' or 'multi', got 'one'"),
        (np.zeros((4, 4), np.uint8), {"prior": {0: "single"}}, ValueError, "prior keys must be class labels in \\[1, 2147483647\\]"),
        (np.zeros((4, 4), np.uint8), {"prior": ["single"]}, TypeError, "prior must be"),
        (np.zeros((4, 4), np.uint8), {"ring_radius": -1}, ValueError, "ring_radius must be an integer >= 0, got -1"),
        (np.zeros((4, 4), np.uint8), {"ring_radius": 2.5}, TypeError, "ring_radius must be an integer"),
        (np.zeros((4, 4), np.uint8), {"box_margin": -3}, ValueError, "box_margin must be an integer >= 0"),
        (np.zeros((4, 4), np.uint8), {"min_area": -1}, ValueError, "min_area must be an integer >= 0"),
        (np.zeros((4, 4), np.uint8), {"min_fraction": 1.5}, ValueError, r"min_fraction must be a number in \[0, 1\]"),
        (np.zeros((4, 4), np.uint8), {"ipq_filter": "yes"}, TypeError, "ipq_filter must be True or False"),
    ],
)
def test_bad_input(coarse, kwargs, error, message):
    with pytest.raises(error, match=message):
        mine_prompts(coarse, **kwargs)


def test_result_is_frozen():
    p = mine_prompts(np.ones((3, 3), np.uint8))
    with pytest.raises(AttributeError):
        p.boxes = None  # type: ignore[misc]


def test_merge_cascade_matches_reference():
    """1000 tiny blobs packed into 256^2 fuse step by step into one region: the long path of the
    merge loop (the grown item is compared with live items in index order)."""
    from samedenhancer.bench.core import synthetic_mask

    mask = synthetic_mask(256, 1000)
    p = check_against_reference(mask, min_fraction=0.0, invariants=False)
    assert len(p) < 50


def test_as_label_map_conversions():
    mask = np.zeros((6, 7), bool)
    mask[1:3, 2:5] = True
    out = as_label_map(np.asfortranarray(mask))
    assert out.dtype == np.uint8 and out.flags.c_contiguous and np.array_equal(out, mask)
    labels = np.arange(42, dtype=np.int32).reshape(6, 7)
    assert as_label_map(labels) is labels  # already valid: no copy
    assert np.array_equal(as_label_map(labels[:, ::2]), labels[:, ::2])
    assert as_label_map(np.full((2, 2), 0.75, np.float16)).tolist() == [[1, 1], [1, 1]]


def test_huge_ring_radius_is_the_whole_image():
    mask = np.zeros((30, 40), np.uint8)
    mask[10:14, 5:9] = 1
    p = mine_prompts(mask, ring_radius=10**30, box_margin=10**30, min_area=10**30)
    assert p.dropped_classes.tolist() == [1]
    p = mine_prompts(mask, ring_radius=10**30, box_margin=10**30)
    assert p.boxes.tolist() == [[0, 0, 39, 29]]
    assert p.points[0, 1].tolist() == [39, 29]  # the farthest pixel of the image
    assert np.array_equal(p.points, mine_prompts(mask, ring_radius=70).points)
