"""pytest-benchmark of the C++ core against its competitors, single-threaded, with correctness
checks. Run: ``python -m pytest benchmarks/test_bench_core.py --benchmark-only``
(groups compare ours with the competitor of the same case)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from samedenhancer import connected_components, distance_transform, mine_prompts
from samedenhancer.bench.core import VOLUME_SPACING, real_coarse_maps, synthetic_mask, synthetic_volume
from samedenhancer.bench.reference import mine_prompts_reference

SIDES = (256, 512, 1024, 2048)
FIELDS = ("class_ids", "boxes", "tight_boxes", "points", "has_negative", "areas", "regions")


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(previous)


@pytest.mark.parametrize("components", (50, 1000))
@pytest.mark.parametrize("side", SIDES)
def test_mine_prompts(benchmark, side, components):
    mask = synthetic_mask(side, components)
    benchmark.group = f"mine_prompts {side}^2 {components} components"
    ours = benchmark(mine_prompts, mask, min_fraction=0.0)
    _, stats = connected_components(mask)
    assert ours.areas.sum() == stats.areas[stats.areas >= 5].sum()
    if side <= 512:
        ref = mine_prompts_reference(mask, min_fraction=0.0)
        for name in FIELDS:
            assert np.array_equal(getattr(ours, name), getattr(ref, name)), name


@pytest.mark.parametrize("components", (50, 1000))
@pytest.mark.parametrize("side", SIDES)
def test_opencv_connected_components(benchmark, side, components):
    mask = synthetic_mask(side, components)
    benchmark.group = f"mine_prompts {side}^2 {components} components"
    count, _, _, _ = benchmark(cv2.connectedComponentsWithStats, mask, connectivity=8)
    assert count - 1 == len(connected_components(mask)[1].areas)


@pytest.mark.parametrize("side", (256, 1024))
def test_research_reference(benchmark, side):
    mask = synthetic_mask(side, 50)
    benchmark.group = f"mine_prompts {side}^2 50 components"
    ref = benchmark.pedantic(mine_prompts_reference, args=(mask,), kwargs={"min_fraction": 0.0}, rounds=2, iterations=1)
    assert np.array_equal(ref.points, mine_prompts(mask, min_fraction=0.0).points)


def _background(side: int) -> np.ndarray:
    return (1 - synthetic_mask(side, 50)).astype(np.uint8)


@pytest.mark.parametrize("side", SIDES)
def test_distance_transform(benchmark, side):
    mask = _background(side)
    benchmark.group = f"distance_transform {side}^2"
    ours = benchmark(distance_transform, mask)
    np.testing.assert_allclose(ours, cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), atol=1e-3)


@pytest.mark.parametrize("side", SIDES)
def test_opencv_distance_transform(benchmark, side):
    mask = _background(side)
    benchmark.group = f"distance_transform {side}^2"
    out = benchmark(cv2.distanceTransform, mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.testing.assert_allclose(out, distance_transform(mask), atol=1e-3)


@pytest.mark.parametrize("side", SIDES)
def test_seung_lab_edt(benchmark, side):
    edt = pytest.importorskip("edt")
    mask = _background(side)
    benchmark.group = f"distance_transform {side}^2"
    out = benchmark(edt.edt, mask, parallel=1)
    np.testing.assert_allclose(out, distance_transform(mask), atol=1e-4)


@pytest.fixture(scope="module", params=["ellipsoids", "background"])
def volume(request):
    structures = synthetic_volume()
    return request.param, structures if request.param == "ellipsoids" else (1 - structures).astype(np.uint8)


def test_distance_transform_volume(benchmark, volume):
    what, mask = volume
    benchmark.group = f"distance_transform 256x256x64 volume, {what}"
    ours = benchmark(distance_transform, mask, spacing=VOLUME_SPACING)
    np.testing.assert_allclose(ours, ndimage.distance_transform_edt(mask, sampling=VOLUME_SPACING), rtol=1e-6, atol=1e-4)


def test_seung_lab_edt_volume(benchmark, volume):
    edt = pytest.importorskip("edt")
    what, mask = volume
    benchmark.group = f"distance_transform 256x256x64 volume, {what}"
    out = benchmark(edt.edt, mask, anisotropy=VOLUME_SPACING, parallel=1)
    np.testing.assert_allclose(out, distance_transform(mask, spacing=VOLUME_SPACING), rtol=1e-6, atol=1e-4)


@pytest.fixture(scope="module")
def coarse_maps():
    maps = real_coarse_maps()
    if not maps:
        pytest.skip("../shared/data not found (set SAMEDENHANCER_DATA)")
    return maps


def test_mine_prompts_real_maps(benchmark, coarse_maps):
    benchmark.group = "mine_prompts real PraNet maps"
    results = benchmark(lambda: [mine_prompts(m) for m in coarse_maps])
    for mask, ours in zip(coarse_maps[::10], results[::10]):
        assert np.array_equal(ours.points, mine_prompts_reference(mask).points)


def test_opencv_connected_components_real_maps(benchmark, coarse_maps):
    benchmark.group = "mine_prompts real PraNet maps"
    out = benchmark(lambda: [cv2.connectedComponentsWithStats(m, connectivity=8) for m in coarse_maps])
    assert [count - 1 for count, *_ in out] == [len(connected_components(m)[1].areas) for m in coarse_maps]


def test_research_reference_real_maps(benchmark, coarse_maps):
    benchmark.group = "mine_prompts real PraNet maps"
    out = benchmark.pedantic(lambda: [mine_prompts_reference(m) for m in coarse_maps[:40]], rounds=1, iterations=1)
    assert all(np.array_equal(ref.points, mine_prompts(m).points) for ref, m in zip(out, coarse_maps[:40]))
