"""Drawing masks over images for people to look at (the demo PNG, the stream overlay video).

Not on the refinement path: nothing below the CLI imports it.
"""

from __future__ import annotations

import numpy as np


def overlay(image: np.ndarray, masks: list[np.ndarray], titles: list[str]) -> np.ndarray:
    """Side-by-side RGB panels of ``image`` with each mask's outline drawn in."""
    import cv2

    grey = image if image.ndim == 2 else None
    rgb = image if grey is None else np.repeat(grey[..., None], 3, axis=2)
    rgb = rgb.astype(np.float32)
    rgb = (255 * (rgb - rgb.min()) / max(float(rgb.max() - rgb.min()), 1e-6)).astype(np.uint8)
    panels = []
    for mask, title in zip(masks, titles):
        panel = np.ascontiguousarray(rgb.copy())
        contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(panel, contours, -1, (0, 255, 0), max(1, image.shape[1] // 300))
        cv2.putText(panel, title, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 0), 2)
        panels.append(panel)
    return np.concatenate(panels, axis=1)
