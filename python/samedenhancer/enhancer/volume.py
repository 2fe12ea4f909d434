"""3-D-aware refinement of a coarse label volume (:meth:`Enhancer.enhance_volume`).

The coarse volume is mined as a volume before any slice is refined:

1. 3-D connected components per class: 8-connected in each slice (the C++ core), linked across
   neighbouring slices where they overlap.
2. The domain prior per 3-D component, MSFF's filter lifted to 3-D: a component is kept when it
   holds at least ``min_fraction`` of its class's voxels and ``min_area`` voxels (``"single"``:
   the largest component only). A fragment present on one slice of thirty is noise and goes; a
   slice's small piece of a structure that runs through the volume stays (a 2-D filter would have
   judged it on that slice alone).
3. The structure's extent along the slice axis is known: a slice inside a kept component's extent
   where the coarse mask misses the component gets the intersection of its neighbours' masks (or
   their union when they do not overlap) as its coarse region.
4. Each slice's prompts are mined from its part of the kept 3-D regions (no 2-D size filter on
   top), and the slice goes through the Enhancer's ordinary per-image path (one encode, one
   batched decode, overlaps between classes to the higher logit, the gate). A slice without any
   region costs no model call.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from typing import Mapping

from ..core import MiningOptions, as_label_map, connected_components, mine_prompts


def components_3d(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-D connected components of a label volume (slices along axis 0).

    Returns ``(ids, classes, sizes)``: ``ids`` (Z, H, W) int64, 0 for background and ``i + 1``
    for component ``i``; ``classes[i]`` and ``sizes[i]`` (voxels) of each component. Voxels connect
    within a slice as 8-neighbours and across slices where they overlap, with the same label, also
    across one slice where the class is missing at the overlap (a missed slice is a gap of one
    structure, which :func:`clean_volume` fills).
    """
    depth = labels.shape[0]
    ids = np.zeros(labels.shape, np.int64)
    offset = 0
    for z in range(depth):
        slice_ids, stats = connected_components(labels[z], connectivity=8)
        ids[z] = np.where(slice_ids > 0, slice_ids.astype(np.int64) + offset, 0)
        offset += len(stats.areas)
    parent = np.arange(offset + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = []
    for z in range(depth - 1):
        both = (ids[z] > 0) & (ids[z + 1] > 0) & (labels[z] == labels[z + 1])
        pairs.append(np.stack([ids[z][both], ids[z + 1][both]], 1))
        if z + 2 < depth:  # across one slice that misses the class there: a gap, not two structures
            bridged = (ids[z] > 0) & (ids[z + 2] > 0) & (labels[z] == labels[z + 2]) & (labels[z + 1] != labels[z])
            pairs.append(np.stack([ids[z][bridged], ids[z + 2][bridged]], 1))
    for pair in pairs:
        for a, b in np.unique(pair, axis=0):
            ra, rb = find(int(a)), find(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(offset + 1)])
    _, compact = np.unique(roots, return_inverse=True)  # root 0 (background) stays 0
    ids = compact[ids]
    count = int(compact.max())
    sizes = np.bincount(ids.ravel(), minlength=count + 1)[1:]
    classes = np.zeros(count, labels.dtype)
    nonzero = ids > 0
    classes[ids[nonzero] - 1] = labels[nonzero]
    return ids, classes, sizes


def clean_volume(labels: np.ndarray, options: MiningOptions) -> tuple[np.ndarray, int]:
    """The kept 3-D regions of a label volume (axis 0 = slices), with the gaps inside each kept
    component's extent filled from its neighbours; and the number of components dropped."""
    ids, classes, sizes = components_3d(labels)
    prior = options.prior
    keep = np.zeros(len(sizes), bool)
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        mode = prior.get(int(c), "multi") if isinstance(prior, Mapping) else prior
        if mode == "single":
            keep[members[np.argmax(sizes[members])]] = True
            continue
        total = sizes[members].sum()
        keep[members] = (sizes[members] >= options.min_area) & (sizes[members] >= options.min_fraction * total)
    out = np.zeros_like(labels)
    for i in np.flatnonzero(keep):
        component = ids == i + 1
        present = np.flatnonzero(component.reshape(len(component), -1).any(1))
        for z in range(present[0] + 1, present[-1]):
            if component[z].any():
                continue
            below = component[present[present < z][-1]]
            above = component[present[present > z][0]]
            fill = below & above
            component[z] = fill if fill.any() else below | above
        out[component & (out == 0)] = classes[i]
    return out, int((~keep).sum())


def refine_volume(enhancer, image: np.ndarray, coarse: np.ndarray, axis: int):
    """Slices of ``image`` / ``coarse`` along ``axis`` refined from the 3-D mining above; returns the
    per-slice :class:`EnhanceResult` list in slice order."""
    start = time.perf_counter()
    moved_image, moved_coarse = np.moveaxis(image, axis, 0), np.moveaxis(coarse, axis, 0)
    labels = np.stack([as_label_map(s, enhancer.options.threshold) for s in moved_coarse])
    mining = enhancer.options.mining
    cleaned, _ = clean_volume(labels, mining)
    volume_mining = (time.perf_counter() - start) / len(labels)
    results = []
    for z in range(len(labels)):
        try:
            # the 3-D filter decided which regions are real: no 2-D size filter on top
            prompts = mine_prompts(cleaned[z], mining, min_fraction=0.0)
            encoded = enhancer.encode(np.ascontiguousarray(moved_image[z]), moved_coarse[z], prompts=prompts)
            result = enhancer.refine(encoded)
        except ValueError as error:
            raise ValueError(f"slice {z} along axis {axis}: {error}") from error
        timings = dataclasses.replace(result.timings, mine=result.timings.mine + volume_mining)
        results.append(dataclasses.replace(result, timings=timings))
    return results
