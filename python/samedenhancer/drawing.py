"""Drawing masks over images for people to look at: the demo's figure, the ``--overlay`` PNG of a
folder run, the stream's overlay video, and ``evaluate``'s figure of the per-image change. OpenCV
draws the outlines; the figure uses matplotlib when it is installed.

Not on the refinement path: nothing below the command line and the viewers imports it.
"""

from __future__ import annotations

import numpy as np

#: Outline colours (RGB) by role: the same in every figure, so a reader learns them once.
#: Yellow and cyan stay visible on pink endoscopy, red fundus and grey ultrasound / MRI alike.
COLOURS = {"coarse": (255, 220, 0), "refined": (0, 230, 255), "truth": (255, 255, 255)}
#: Figures meant for reading (the demo's) smaller than this (longer side, pixels) are enlarged to stay legible.
MIN_SIDE = 768
#: Longer side (pixels) of an ``--overlay`` PNG: one per image of a folder, so they stay small.
OVERLAY_SIDE = 512


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


def overlay(image: np.ndarray, masks: dict[str, np.ndarray], caption: str = "", *,
            max_side: int = OVERLAY_SIDE) -> np.ndarray:
    """:func:`outlines` of ``masks`` over ``image``, shrunk so that its longer side is at most
    ``max_side`` (the small per-image PNG of ``--overlay``)."""
    import cv2

    scale = max_side / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(_rgb(image), size, interpolation=cv2.INTER_AREA)
        masks = {role: cv2.resize(np.asarray(m).astype(np.uint16), size, interpolation=cv2.INTER_NEAREST)
                 for role, m in masks.items()}
    return outlines(image, masks, caption)


def change_figure(before: np.ndarray, after: np.ndarray, *, title: str = "") -> tuple[np.ndarray, str]:
    """One RGB figure of the per-image change: ``before`` (coarse Dice, x) against ``after``
    (refined Dice, y), one dot per image, with the diagonal of no change (above it: improved).

    Returns ``(figure, how)``: drawn with matplotlib when it is installed, else with OpenCV (``how``
    is ``"matplotlib"`` or ``"opencv"``).
    """
    before, after = np.asarray(before, float), np.asarray(after, float)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return _change_opencv(before, after, title), "opencv"
    figure = Figure(figsize=(5, 5), dpi=120)
    canvas = FigureCanvasAgg(figure)  # no pyplot: the caller's backend is left alone
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linewidth=1, label="no change")
    better = after > before
    axes.scatter(before[better], after[better], s=14, color="tab:green", label=f"improved ({better.sum()})")
    axes.scatter(before[~better], after[~better], s=14, color="tab:red", label=f"not improved ({(~better).sum()})")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="coarse Dice", ylabel="refined Dice", title=title, aspect="equal")
    axes.legend(loc="lower right")
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy(), "matplotlib"


def _change_opencv(before: np.ndarray, after: np.ndarray, title: str, side: int = 600) -> np.ndarray:
    import cv2

    margin = 60
    panel = np.full((side, side, 3), 255, np.uint8)
    inner = side - 2 * margin

    def at(x: float, y: float) -> tuple[int, int]:
        return margin + round(x * inner), side - margin - round(y * inner)

    cv2.rectangle(panel, at(0, 1), at(1, 0), (0, 0, 0), 1)
    cv2.line(panel, at(0, 0), at(1, 1), (150, 150, 150), 1, cv2.LINE_AA)
    for x, y in zip(before, after):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(panel, at(float(x), float(y)), 4, (0, 160, 0) if y > x else (200, 0, 0), -1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(panel, "coarse Dice", (side // 2 - 50, side - 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(panel, "refined Dice", (8, margin - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for tick in (0, 0.5, 1):
        cv2.putText(panel, f"{tick:g}", (at(tick, 0)[0] - 8, side - margin + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(panel, f"{tick:g}", (margin - 30, at(0, tick)[1] + 5), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    if title:
        cv2.putText(panel, title, (margin, 24), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    """Panels of one height next to each other."""
    return np.concatenate(panels, axis=1)
