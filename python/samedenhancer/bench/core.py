"""``python -m samedenhancer.bench core [--json] [--quick]``: the C++ core against what research code
uses, single-threaded, on synthetic masks (256^2 to 2048^2, ~50 and ~1000 components) and the real
PraNet coarse maps.

- ``mine_prompts`` vs the research-style pipeline of :mod:`samedenhancer.bench.reference` (OpenCV +
  SciPy/NumPy, full-image distance transforms per region); target >= 10x at 1024^2, 50 regions;
- ``mine_prompts`` vs ``cv2.connectedComponentsWithStats`` alone (labelling is the floor); target
  <= 2x its time (ratio >= 0.5);
- ``distance_transform`` vs ``cv2.distanceTransform(DIST_L2, DIST_MASK_PRECISE)`` and seung-lab
  ``edt.edt(parallel=1)``; target faster than both at 1024^2 and 2048^2;
- ``distance_transform`` of a 256x256x64 volume (array shape (64, 256, 256), spacing (2.5, 1, 1)
  mm) vs ``edt.edt(anisotropy=..., parallel=1)``, on 40 ellipsoids (distance inside them) and on
  their background (distance to them: nearly every voxel is a feature); target faster.

Synthetic masks keep every component (``min_fraction=0``), so each one becomes a region with two
distance transforms: the heaviest use of the prompt miner. Real maps use the defaults.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from ..core import distance_transform, mine_prompts
from . import report
from .reference import mine_prompts_reference


def synthetic_mask(side: int, components: int, seed: int = 0) -> np.ndarray:
    """uint8 0/1 mask of ``components`` separate ellipses on a jittered grid (radius about 1/8 of
    the grid step, so SAMRefiner's criterion keeps them apart)."""
    rng = np.random.default_rng(seed)
    per_row = int(np.ceil(np.sqrt(components)))
    step = side / per_row
    mask = np.zeros((side, side), np.uint8)
    radius = max(1.0, step / 8)
    for k in range(components):
        cy = (k // per_row + 0.5) * step + rng.uniform(-0.15, 0.15) * step
        cx = (k % per_row + 0.5) * step + rng.uniform(-0.15, 0.15) * step
        axes = (max(1, int(radius * rng.uniform(0.6, 1.0))), max(1, int(radius * rng.uniform(0.6, 1.0))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


VOLUME_SHAPE = (64, 256, 256)
VOLUME_SPACING = (2.5, 1.0, 1.0)


def synthetic_volume(shape: tuple[int, int, int] = VOLUME_SHAPE, components: int = 40, seed: int = 0) -> np.ndarray:
    """uint8 0/1 volume of ``components`` random ellipsoids (semi-axes 4..24 voxels in-plane, 2..10
    across slices), overlapping where they meet."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    z, y, x = (np.arange(n, dtype=np.float32) for n in shape)
    for _ in range(components):
        c = rng.uniform(0, shape)
        r = (rng.uniform(2, 10), rng.uniform(4, 24), rng.uniform(4, 24))
        zz = ((z - c[0]) / r[0])[:, None, None] ** 2
        yy = ((y - c[1]) / r[1])[None, :, None] ** 2
        xx = ((x - c[2]) / r[2])[None, None, :] ** 2
        mask[zz + yy + xx <= 1] = 1
    return mask


def real_coarse_maps(limit: int | None = None) -> list[np.ndarray]:
    """The PraNet coarse maps of ../shared/data thresholded at 127 (empty list without the data)."""
    from . import datasets

    if datasets.data_root() is None:
        return []
    maps = []
    for name, segmenters in datasets.SEGMENTERS.items():
        items = datasets.samples(name)
        for sample in items[: limit or len(items)]:
            maps.extend((sample.coarse(seg) > 127).astype(np.uint8) for seg in segmenters)
    return maps


def _time(fn, repeat: int) -> float:
    return report.median_ms(report.measure(fn, repeat=repeat, warmup=1))


def run(quick: bool = False) -> tuple[list[report.Row], list[str]]:
    cv2.setNumThreads(1)
    import edt

    rows: list[report.Row] = []
    sides = (256, 1024) if quick else (256, 512, 1024, 2048)
    repeat = 3 if quick else 7
    for side in sides:
        for components in (50, 1000):
            mask = synthetic_mask(side, components)
            ours = _time(lambda: mine_prompts(mask, min_fraction=0.0), repeat)
            regions = len(mine_prompts(mask, min_fraction=0.0))
            case = f"{side}^2, {components} comp. ({regions} regions)"
            if components == 50 or side == 256:
                ref = _time(lambda: mine_prompts_reference(mask, min_fraction=0.0), 1 if side >= 1024 else 3)
                rows.append(report.Row(f"mine_prompts {case}", ours, ref, "research OpenCV+SciPy", target=">= 10x at 1024^2/50"))
            ccl = _time(lambda: cv2.connectedComponentsWithStats(mask, connectivity=8), repeat)
            rows.append(report.Row(f"mine_prompts {case}", ours, ccl, "cv2.connectedComponentsWithStats", target="ratio >= 0.5"))
        background = (1 - synthetic_mask(side, 50)).astype(np.uint8)  # distance to the nearest component
        ours = _time(lambda: distance_transform(background), repeat)
        cv = _time(lambda: cv2.distanceTransform(background, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), repeat)
        seung = _time(lambda: edt.edt(background, parallel=1), repeat)
        target = "> 1x" if side >= 1024 else ""
        rows.append(report.Row(f"distance_transform {side}^2", ours, cv, "cv2.distanceTransform PRECISE", target=target))
        rows.append(report.Row(f"distance_transform {side}^2", ours, seung, "edt.edt(parallel=1)", target=target))
    structures = synthetic_volume()
    for what, volume in (("ellipsoids", structures), ("background", (1 - structures).astype(np.uint8))):
        ours = _time(lambda: distance_transform(volume, spacing=VOLUME_SPACING), repeat)
        seung = _time(lambda: edt.edt(volume, anisotropy=VOLUME_SPACING, parallel=1), repeat)
        case = f"distance_transform 256x256x64 volume, {what}, spacing {VOLUME_SPACING}"
        rows.append(report.Row(case, ours, seung, "edt.edt(anisotropy, parallel=1)", target="> 1x"))
    maps = real_coarse_maps(limit=5 if quick else None)
    if maps:
        case = f"{len(maps)} real PraNet maps (Kvasir+CVC), total"
        ours = _time(lambda: [mine_prompts(m) for m in maps], 3)
        ref = _time(lambda: [mine_prompts_reference(m) for m in maps], 1)
        ccl = _time(lambda: [cv2.connectedComponentsWithStats(m, connectivity=8) for m in maps], 3)
        rows.append(report.Row(f"mine_prompts {case}", ours, ref, "research OpenCV+SciPy"))
        rows.append(report.Row(f"mine_prompts {case}", ours, ccl, "cv2.connectedComponentsWithStats", target="ratio >= 0.5"))
    notes = [
        "Single thread (cv2.setNumThreads(1), edt parallel=1). Ratio = competitor time / ours. "
        "Synthetic rows keep every component (min_fraction=0): each becomes a region with two distance transforms.",
    ]
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench core", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args(argv)
    rows, notes = run(quick=args.quick)
    report.report("samedenhancer core", rows, as_json=args.json, notes=notes)
    return 0
