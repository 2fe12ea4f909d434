"""Refine masks: an Image layer and a coarse Labels layer -> a new "refined" Labels layer.

As ``samedenhancer enhance``: the options are the command's (model, threshold of a soft map, the
no-harm gate); a 2-D image goes through :meth:`~samedenhancer.Enhancer.enhance`, a stack (Z, Y, X)
through :meth:`~samedenhancer.Enhancer.enhance_volume` along its first axis. The coarse layer is
never modified: the worker refines a copy taken when the run starts.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, LineEdit
from napari.layers import Image, Labels

from ..enhancer import EnhanceOptions, Enhancer
from . import layers
from .engine import shared
from .jobs import Job, JobWidget, reports_errors

__all__ = ["GATES", "RefineWidget", "refine"]

#: The gate drop-down: "auto" lets the Enhancer decide (on for several classes with the box policy).
GATES = {"auto": None, "on": True, "off": False}


def refine(watch, model: str, options: EnhanceOptions, image: np.ndarray, coarse: np.ndarray,
           stack: bool) -> np.ndarray:
    """The refined label map (worker thread): ``image`` and ``coarse`` are 2-D, or stacks (Z, Y, X)
    refined as a volume."""
    enhancer = Enhancer(shared(model).watched(watch), options)
    if stack:
        return enhancer.enhance_volume(image, coarse, axis=0).mask
    return enhancer.enhance(image, coarse).mask


class RefineWidget(JobWidget):
    """Image + coarse Labels -> a "refined" Labels layer, in a worker thread (cancellable)."""

    def __init__(self, napari_viewer) -> None:
        self.image = ComboBox(label="image", choices=layers.layers_of(napari_viewer, Image))
        self.coarse = ComboBox(label="coarse mask", choices=layers.layers_of(napari_viewer, Labels))
        self.model = LineEdit(label="model", value="litemedsam")
        self.soft = CheckBox(text="soft map (0..255): threshold it", value=False)
        self.threshold = FloatSpinBox(label="threshold", value=127.0, min=0.0, max=255.0, step=1.0)
        self.gate = ComboBox(label="no-harm gate", choices=list(GATES), value="auto")
        super().__init__(napari_viewer, [self.image, self.coarse, self.model, self.soft, self.threshold, self.gate],
                         "Refine")

    @reports_errors("Refine")
    def start(self) -> Job | None:
        """Check the layers and refine in a worker thread; ``None`` (with a message) when they do
        not fit or a run is going on."""
        image_layer, coarse_layer = self.image.value, self.coarse.value
        image, stack = layers.image_array(image_layer)
        shape = image.shape if stack else image.shape[:2]
        coarse = layers.labels_array(coarse_layer, shape, image_layer.name, "coarse mask")
        threshold = self.threshold.value if self.soft.value else None
        layers.check_has_label(coarse, threshold, coarse_layer.name, stack)
        options = EnhanceOptions(threshold=threshold, gate=GATES[self.gate.value])
        where, name = layers.placement(coarse_layer), coarse_layer.name
        slices = int(sum(s.any() for s in coarse)) if stack else 1

        def show(refined: np.ndarray) -> None:
            self.viewer.add_labels(refined, name="refined", **where)
            self.status.value = f"refined {name!r}" + (f" ({slices} slices)" if stack else "")

        return self.launch("Refine", slices, refine, self.model.value, options, np.array(image), np.array(coarse),
                           stack, done=show)
