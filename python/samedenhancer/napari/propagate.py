"""Propagate: the labelled slices of a Labels layer over a grey stack (Z, Y, X) -> the structures
through the volume, in a new "propagated" Labels layer.

As ``samedenhancer propagate`` with a seed volume: every slice of the Labels layer that holds a
label is an annotated slice, and :func:`samedenhancer.propagate` carries the classes outward from
them (and fills between two of them) along the stack's first axis.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, FloatSpinBox, LineEdit
from napari.layers import Image, Labels

from ..volumes import PropagationResult, propagate
from . import layers
from .engine import shared
from .jobs import Job, JobWidget, reports_errors

__all__ = ["PropagateWidget", "propagate_stack"]


def propagate_stack(watch, model: str, volume: np.ndarray, seeds: dict, iou_threshold: float) -> PropagationResult:
    """:func:`samedenhancer.propagate` along axis 0 (worker thread)."""
    return propagate(volume, seeds=seeds, model=shared(model).watched(watch), iou_threshold=iou_threshold, axis=0)


class PropagateWidget(JobWidget):
    """Labelled slices of a stack -> a "propagated" Labels layer, in a worker thread (cancellable)."""

    def __init__(self, napari_viewer) -> None:
        self.image = ComboBox(label="image stack", choices=layers.layers_of(napari_viewer, Image))
        self.seeds = ComboBox(label="labelled slices", choices=layers.layers_of(napari_viewer, Labels))
        self.model = LineEdit(label="model", value="litemedsam")
        self.iou_threshold = FloatSpinBox(label="stop below overlap", value=0.5, min=0.0, max=1.0, step=0.05)
        super().__init__(napari_viewer, [self.image, self.seeds, self.model, self.iou_threshold], "Propagate")

    @reports_errors("Propagate")
    def start(self) -> Job | None:
        """Check the layers and propagate in a worker thread; ``None`` (with a message) when they do
        not fit or a run is going on."""
        image_layer, seeds_layer = self.image.value, self.seeds.value
        volume, stack = layers.image_array(image_layer, "image stack")
        if not stack:
            raise ValueError(f"image layer {image_layer.name!r} is a 2-D image (shape {volume.shape}): propagation "
                             "needs a stack of slices (Z, Y, X)")
        labels = layers.labels_array(seeds_layer, volume.shape, image_layer.name, "labelled slices")
        annotated = np.flatnonzero(labels.reshape(len(labels), -1).any(1))
        if not annotated.size:
            raise ValueError(f"labels layer {seeds_layer.name!r} holds no label: paint the structures on a slice first")
        seeds = {int(z): np.array(labels[z]) for z in annotated}
        where = layers.placement(seeds_layer)

        def show(result: PropagationResult) -> None:
            self.viewer.add_labels(result.mask, name="propagated", **where)
            self.status.value = (f"{result.status.count('propagated')} slices propagated from {len(seeds)} "
                                 f"annotated, {result.status.count('stopped')} not reached")

        return self.launch("Propagate", len(volume), propagate_stack, self.model.value, np.array(volume), seeds,
                           float(self.iou_threshold.value), done=show)
