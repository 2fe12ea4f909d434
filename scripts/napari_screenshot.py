"""The napari guide's screenshot and the click latency it quotes (docs/guides/napari.md).

Opens napari with the shipped fundus sample (File > Open Sample > samedenhancer), refines its coarse
mask with the Refine masks widget (the embedded LiteMedSAM), saves the viewer's screenshot to
``--out``, then corrects the refined mask with ``--clicks`` clicks of the Correct by clicks widget
and prints the time from each click to the repainted mask. Needs a display (on a headless machine:
``xvfb-run -a python scripts/napari_screenshot.py --out docs/images/napari-refine.png``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def _wait(app, job, timeout_s: float = 600) -> None:
    end = time.monotonic() + timeout_s
    while job is not None and job.running:
        if time.monotonic() > end:
            raise TimeoutError(f"{job.description} did not finish in {timeout_s} s")
        app.processEvents()
        time.sleep(0.01)


def _renderer() -> str:
    """The OpenGL renderer napari draws with (a GPU, or Mesa's llvmpipe on the CPU)."""
    from vispy.gloo import gl

    return gl.glGetParameter(gl.GL_RENDERER)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="PNG file for the screenshot")
    parser.add_argument("--clicks", type=int, default=20, help="corrections timed after the screenshot")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="samedenhancer")
    app = QApplication.instance()
    viewer.window.resize(1280, 760)
    viewer.open_sample("samedenhancer", "fundus")
    _, refine = viewer.window.add_plugin_dock_widget("samedenhancer", "Refine masks")
    refine.reset_choices()
    refine.run_button.native.click()
    _wait(app, refine.job)
    coarse, refined = viewer.layers["fundus coarse"], viewer.layers["refined"]
    coarse.contour, coarse.opacity = 3, 1.0
    coarse.colormap = napari.utils.DirectLabelColormap(color_dict={None: "transparent", 1: "yellow"})
    refined.colormap = napari.utils.DirectLabelColormap(color_dict={None: "transparent", 1: "cyan"})
    refined.opacity = 0.45
    viewer.layers.selection.active = refined
    ys, xs = np.nonzero(refined.data)
    viewer.reset_view()
    viewer.scene.camera.center = (float(ys.mean()), float(xs.mean()))
    viewer.scene.camera.zoom *= 0.6 * refined.data.shape[0] / (ys.max() - ys.min())  # the disc fills half the view
    app.processEvents()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import cv2

    shot = viewer.screenshot(canvas_only=False, flash=False)
    cv2.imwrite(str(args.out), cv2.cvtColor(shot, cv2.COLOR_RGBA2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"screenshot: {args.out} ({shot.shape[1]} x {shot.shape[0]})")

    _, clicks = viewer.window.add_plugin_dock_widget("samedenhancer", "Correct by clicks")
    clicks.reset_choices()
    clicks.image.value, clicks.mask.value = viewer.layers["fundus"], refined
    refined.selected_label = 1
    points = clicks.add_points_layer()
    ys, xs = np.nonzero(refined.data == 1)
    centre = np.array([ys.mean(), xs.mean()])
    radius = np.sqrt(len(ys) / np.pi)
    shown, handled = [], []
    for i in range(args.clicks + 1):  # the first click opens the session (one decoder call): not timed
        angle = 2 * np.pi * i / max(args.clicks, 1)
        outward = i % 2 == 0
        clicks.positive.value = outward
        where = centre + (radius * (1.1 if outward else 0.8)) * np.array([np.sin(angle), np.cos(angle)])
        begin = time.perf_counter()
        points.add(where)
        app.processEvents()  # the repaint of the mask
        if i:
            shown.append(1e3 * (time.perf_counter() - begin))
            handled.append(clicks.latency_ms)
    repaints = []
    for _ in range(args.clicks):  # the same window repainted with nothing changed: the canvas's own cost
        begin = time.perf_counter()
        viewer.scene.camera.zoom *= 1.0001
        app.processEvents()
        repaints.append(1e3 * (time.perf_counter() - begin))
    print(f"click -> repainted mask over {len(shown)} clicks on the {refined.data.shape[1]} x {refined.data.shape[0]} "
          f"sample: median {statistics.median(shown):.0f} ms, max {max(shown):.0f} ms; the correction itself "
          f"(model, mask, layer refresh): median {statistics.median(handled):.0f} ms; a repaint of the same window "
          f"without any change: median {statistics.median(repaints):.0f} ms "
          f"({platform.machine()}, OpenGL {_renderer()}, napari {napari.__version__})")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
