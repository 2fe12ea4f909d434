"""A medical image with a coarse mask, shipped with the package so that the demo, the docs and the
napari plugin work on any machine (as ``skimage.data`` does for scikit-image).

The image is in the public domain (CC0 1.0; see ``LICENSE.md`` beside this file).

Examples
--------
>>> from samedenhancer import data
>>> sample = data.fundus()
>>> sample.image.shape, sample.coarse.dtype, sample.threshold
((384, 384, 3), dtype('uint8'), 127)
"""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["Sample", "fundus"]


class Sample(NamedTuple):
    """An image with the coarse mask of a weak segmenter.

    image : ndarray, H x W x 3 uint8 (RGB)
    coarse : ndarray, H x W uint8
        The coarse mask as the segmenter gave it (here 0..255 probabilities).
    threshold : float or None
        What to give ``threshold=`` for ``coarse`` (``None`` for a label map).
    description : str
        What the image shows and where it comes from.
    """

    image: np.ndarray
    coarse: np.ndarray
    threshold: float | None
    description: str


def _read(name: str, flags: int) -> np.ndarray:
    import cv2

    data = np.frombuffer(resources.files(__package__).joinpath(name).read_bytes(), np.uint8)
    return cv2.imdecode(data, flags)


def fundus() -> Sample:
    """A fundus photograph around the optic disc (384 x 384 RGB) with a weak segmenter's
    probability map of the disc (0..255, threshold 127): public domain (CC0 1.0)."""
    import cv2

    image = np.ascontiguousarray(_read("fundus.png", cv2.IMREAD_COLOR)[..., ::-1])
    coarse = _read("fundus_coarse.png", cv2.IMREAD_GRAYSCALE)
    return Sample(image, coarse, 127, "optic disc in a fundus photograph (M. Häggström, CC0 1.0); coarse: a weak "
                  "segmenter's probability map")
