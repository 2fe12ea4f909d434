"""Drawing masks over images for people to look at: the demo's figure, the ``--overlay`` PNG of a
folder run, the stream's overlay video. OpenCV draws the outlines.

Not on the refinement path: nothing below the command line and the viewers imports it.
"""

from __future__ import annotations

import numpy as np

#: Outline colours (RGB) by role: the same in every figure, so a reader learns them once.
#: Yellow and cyan stay visible on pink endoscopy, red fundus and grey ultrasound / MRI alike.
COLOURS = {"coarse": (255, 220, 0), "refined": (0, 230, 255), "truth": (255, 255, 255)}
#: Figures meant for reading (the demo's) smaller than this (longer side, pixels) are enlarged to stay legible.
MIN_SIDE = 768


def _rgb(image: np.ndarray) -> np.ndarray:
    """``image`` as uint8 RGB for display (grey replicated, any range stretched to 0..255)."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb[..., :3])
    rgb = rgb[..., :3].astype(np.float32)
    low, high = float(rgb.min()), float(rgb.max())
    return np.ascontiguousarray((255 * (rgb - low) / max(high - low, 1e-6)).astype(np.uint8))


def outlines(image: np.ndarray, masks: dict[str, np.ndarray], caption: str = "", *, min_side: int = 0) -> np.ndarray:
    """One RGB panel of ``image`` with the outline of each mask (``{role: mask}``, role a key of
    :data:`COLOURS`, or any name drawn in white) and a legend naming them; ``caption`` goes under
    the legend. Every nonzero label counts as foreground. An image whose longer side is below
    ``min_side`` is enlarged by a whole factor first (figures people read: :data:`MIN_SIDE`)."""
    import cv2

    panel = _rgb(image)
    factor = max(1, -(-min_side // max(image.shape[:2])))
    if factor > 1:
        panel = cv2.resize(panel, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        masks = {role: cv2.resize((np.asarray(m) > 0).astype(np.uint8), None, fx=factor, fy=factor,
                                  interpolation=cv2.INTER_NEAREST) for role, m in masks.items()}
        image = panel
    thickness = max(1, max(image.shape[:2]) // 300)
    scale = max(0.4, max(image.shape[:2]) / 900)
    y = int(28 * scale) + 4
    for role, mask in masks.items():
        colour = COLOURS.get(role, (255, 0, 255))
        contours, _ = cv2.findContours((np.asarray(mask) > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(panel, contours, -1, colour, thickness)
        cv2.putText(panel, role, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, thickness), cv2.LINE_AA)
        y += int(30 * scale) + 2
    if caption:
        cv2.putText(panel, caption, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    """Panels of one height next to each other."""
    return np.concatenate(panels, axis=1)
