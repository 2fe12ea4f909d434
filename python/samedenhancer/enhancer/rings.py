"""Rings: regions that enclose background, such as the myocardium around a cavity nobody labelled.

A box prompt cannot ask for a ring: the box of a ring asks for the disc inside it, and the model
answers with the filled disc or with the cavity. The Enhancer therefore keeps a ring's hole out of
the ring (:func:`samedenhancer.enhancer.paste.paste`), whatever the hole holds, and propagation
through a volume carries a hole nobody labelled as an implicit inner class that the ring is drawn
around (:mod:`samedenhancer.volumes.propagate`). Both find the hole here.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["HOLE_FRACTION", "enclosed", "ring_hole"]

#: A region is a ring when the background it encloses is at least this fraction of the region with
#: its holes filled: the cavity of a ring is a large part of its disc, a speck left unlabelled
#: inside a blob is not.
HOLE_FRACTION = 0.1


def enclosed(mask: np.ndarray) -> np.ndarray:
    """The pixels outside ``mask`` (bool H x W) that it encloses: not connected (4-connected, the
    complement of the 8-connected regions of the core) to the image's border through pixels outside
    it. Bool H x W."""
    outside = np.pad(~mask, 1, constant_values=True).view(np.uint8)
    _, components = cv2.connectedComponents(outside, connectivity=4)
    return (components[1:-1, 1:-1] != components[0, 0]) & ~mask


def ring_hole(mask: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray | None:
    """What ``mask`` encloses when it makes ``mask`` a ring (at least :data:`HOLE_FRACTION` of the
    region with its holes filled), else ``None``; with ``labels``, only the background
    (``labels == 0``) it encloses counts: a hole another class fills has that class as the ring's
    inner class already. Bool H x W."""
    holes = enclosed(mask)
    filled = int(mask.sum()) + int(holes.sum())
    if labels is not None:
        holes &= labels == 0
    if not filled or holes.sum() < HOLE_FRACTION * filled:
        return None
    return holes
