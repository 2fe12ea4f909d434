"""Rebuild the sample shipped in ``python/samedenhancer/data/`` (needs scikit-image).

The image is a crop around the optic disc of scikit-image's ``retina`` (a fundus photograph by
Mikael Häggström, CC0 1.0, Wikimedia Commons), resized to 384 x 384. The coarse mask is what a weak
segmenter would give: a 16 x 16 luminance map, turned into probabilities by a logistic around 160
and upsampled bilinearly, stored as 8-bit probabilities (threshold 127). Run from the repository
root: ``python scripts/make_sample.py``.
"""

from pathlib import Path

import cv2
import numpy as np
from skimage import data

SIZE = 384
out = Path(__file__).resolve().parents[1] / "python" / "samedenhancer" / "data"
crop = np.ascontiguousarray(data.retina()[400:912, 0:512])
image = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
luminance = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
low = cv2.resize(luminance, (16, 16), interpolation=cv2.INTER_AREA)
probability = 1.0 / (1.0 + np.exp(-(low - 160.0) / 8.0))
coarse = np.round(255 * cv2.resize(probability, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)).astype(np.uint8)
cv2.imwrite(str(out / "fundus.png"), image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
cv2.imwrite(str(out / "fundus_coarse.png"), coarse, [cv2.IMWRITE_PNG_COMPRESSION, 9])
print(f"wrote {out / 'fundus.png'} and {out / 'fundus_coarse.png'}")
