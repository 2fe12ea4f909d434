"""Sample data for napari's File > Open Sample: the fundus photograph shipped with the package
(:func:`samedenhancer.data.fundus`, public domain) and its coarse mask as a Labels layer."""

from __future__ import annotations

from .. import data
from ..core import as_label_map

__all__ = ["fundus"]


def fundus() -> list[tuple]:
    """``[(image, kwargs, "image"), (coarse, kwargs, "labels")]``: the RGB fundus photograph and the
    weak segmenter's map of its optic disc thresholded at the sample's threshold (label 1)."""
    sample = data.fundus()
    coarse = as_label_map(sample.coarse, sample.threshold)
    return [
        (sample.image, {"name": "fundus", "rgb": True}, "image"),
        (coarse, {"name": "fundus coarse"}, "labels"),
    ]
