"""Review a folder: step through the images of a folder with their coarse masks, refined on opening,
accept each (or correct it by clicks first) or skip it, as ``samedenhancer annotate`` does.

The widget drives the annotate package's workflow (:class:`~samedenhancer.annotate.Annotator` over
a :class:`~samedenhancer.annotate.Catalog`), so the outputs follow the same rules: an accepted mask
goes to ``OUT/<stem>.<format>`` (never over an input), and every accept or skip is a row of
``OUT/annotations.csv``. The image shown is encoded once, in a worker thread, and the workflow's
model reuses that embedding (:mod:`.engine`).
"""

from __future__ import annotations

import uuid

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, Label, LineEdit, PushButton
from napari.layers import Points

from .. import io
from ..annotate import Annotator, Catalog
from ..annotate.backend import ModelBackend
from ..annotate.catalog import FORMATS
from ..core import as_label_map
from . import layers
from .clicks import POSITIVE, add_click_points, apply_added_points
from .engine import shared
from .jobs import Job, JobWidget, reports_errors

__all__ = ["LAYER_NAMES", "ReviewWidget", "open_image"]

#: The layers the widget shows the current image in (replaced at each image).
LAYER_NAMES = {"image": "review image", "coarse": "review coarse", "mask": "review mask", "clicks": "review clicks"}


def open_image(watch, annotator: Annotator, model: str, image_id: str):
    """``(annotator, image_id, image, coarse label map or None, view)`` of ``image_id`` (worker
    thread): the image is encoded here, where the job can count and cancel it, then opened (refined)
    by the workflow."""
    entry = annotator.entry(image_id)
    image = io.read_image(entry.image)
    shared(model).watched(watch).encode(image)
    view = annotator.open(image_id)
    coarse = None if entry.coarse is None else as_label_map(io.read_mask(entry.coarse), annotator.threshold)
    return annotator, image_id, image, coarse, view


def open_folder(watch, catalog: Catalog, model: str, threshold: float | None):
    """The workflow over ``catalog`` with the model (opened here, in the worker thread) and its
    first image still to do, as :func:`open_image` gives it."""
    annotator = Annotator(catalog, ModelBackend(shared(model), threshold=threshold), threshold=threshold)
    states = catalog.ledger.states()
    first = next((i for i in catalog.ids() if states.get(i, "todo") == "todo"), catalog.ids()[0])
    return open_image(watch, annotator, model, first)


class ReviewWidget(JobWidget):
    """A folder of images and coarse masks, reviewed image by image (accept, correct, skip)."""

    def __init__(self, napari_viewer) -> None:
        self.images = FileEdit(label="images", mode="d", nullable=True)
        self.coarse = FileEdit(label="coarse masks", mode="d", nullable=True)
        self.out = FileEdit(label="output", mode="d", nullable=True)
        self.format = ComboBox(label="format", choices=list(FORMATS), value="png")
        self.model = LineEdit(label="model", value="litemedsam")
        self.soft = CheckBox(text="soft maps (0..255): threshold them", value=False)
        self.threshold = FloatSpinBox(label="threshold", value=127.0, min=0.0, max=255.0, step=1.0)
        super().__init__(napari_viewer, [self.images, self.coarse, self.out, self.format, self.model, self.soft,
                                         self.threshold], "Open folder")
        self.position = Label(value="")
        self.previous_button, self.next_button = PushButton(text="Previous"), PushButton(text="Next")
        self.positive = CheckBox(text="positive click (adds); off: removes", value=True)
        self.undo_button, self.accept_button, self.skip_button = (PushButton(text=text)
                                                                  for text in ("Undo", "Accept", "Skip"))
        self.extend([self.position, Container(widgets=[self.previous_button, self.next_button], layout="horizontal"),
                     self.positive, Container(widgets=[self.undo_button, self.accept_button, self.skip_button],
                                              layout="horizontal")])
        self.annotator: Annotator | None = None
        self.image_id: str | None = None
        self.version = 0
        self.previous_button.changed.connect(lambda: self.step(-1))
        self.next_button.changed.connect(lambda: self.step(1))
        self.accept_button.changed.connect(lambda: self.decide("accept"))
        self.skip_button.changed.connect(lambda: self.decide("skip"))
        self.undo_button.changed.connect(self.undo)
        self.positive.changed.connect(self._positive_changed)

    # -- the folder ----------------------------------------------------------------------------
    @reports_errors("Open folder")
    def start(self) -> Job | None:
        """Open the folders (the catalog refuses an output folder that is an input) and show the
        first image still to do."""
        threshold = self.threshold.value if self.soft.value else None
        for field in (self.images, self.out):
            if field.value is None:
                raise ValueError(f"choose the {field.label} folder")
        catalog = Catalog(self.images.value, self.coarse.value, out=self.out.value, format=self.format.value)
        return self.launch("Open folder", 1, open_folder, catalog, self.model.value, threshold,
                           done=lambda opened: self._shown(*opened))

    def show(self, image_id: str) -> Job:
        """Open ``image_id`` in a worker thread and show it, its coarse mask and its current mask."""
        return self.launch("Open image", 1, open_image, self.annotator, self.model.value, image_id,
                           done=lambda opened: self._shown(*opened))

    def _shown(self, annotator: Annotator, image_id: str, image: np.ndarray, coarse: np.ndarray | None,
               view) -> None:
        if self.annotator is not None and self.annotator is not annotator:
            self.annotator.close()
        self.annotator = annotator
        for name in LAYER_NAMES.values():
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
        self.viewer.add_image(image, name=LAYER_NAMES["image"], rgb=image.ndim == 3)
        if coarse is not None:
            self.viewer.add_labels(coarse, name=LAYER_NAMES["coarse"], opacity=0.8).contour = 2
        self.viewer.add_labels(self.annotator.mask(image_id).astype(np.uint8), name=LAYER_NAMES["mask"], opacity=0.5)
        clicks = add_click_points(self.viewer, LAYER_NAMES["clicks"], image.shape[:2], self.positive.value)
        clicks.events.data.connect(self._on_points)
        self.image_id, self.version = image_id, view.version
        self._update_position()

    def _update_position(self) -> None:
        ids = self.annotator.catalog.ids()
        state = self.annotator.catalog.ledger.states().get(self.image_id, "todo")
        self.position.value = f"{ids.index(self.image_id) + 1} of {len(ids)}: {self.image_id} ({state})"

    @reports_errors("Review")
    def step(self, offset: int) -> Job | None:
        """Show the image ``offset`` places away in name order (wrapping)."""
        ids = self._opened_ids()
        return self.show(ids[(ids.index(self.image_id) + offset) % len(ids)])

    def _opened_ids(self) -> list[str]:
        if self.annotator is None or self.image_id is None:
            raise ValueError("open a folder first")
        return self.annotator.catalog.ids()

    # -- the shown image ---------------------------------------------------------------------
    def _apply(self, action: str, **args):
        view = self.annotator.apply(self.image_id, uuid.uuid4().hex, self.version, action, **args)
        self.version = view.version
        mask_layer = self.viewer.layers[LAYER_NAMES["mask"]]
        mask_layer.data = self.annotator.mask(self.image_id).astype(np.uint8)
        return view

    def _positive_changed(self, value: bool) -> None:
        if LAYER_NAMES["clicks"] in self.viewer.layers:
            self.viewer.layers[LAYER_NAMES["clicks"]].feature_defaults = {POSITIVE: bool(value)}

    def _on_points(self, event) -> None:
        apply_added_points(event, self.click)

    @reports_errors("Click")
    def click(self, points: Points, index: int) -> bool:
        """Correct the shown mask at point ``index`` of the review's Points layer: True; a refusal
        is a message (and None)."""
        self._opened_ids()
        image_layer = self.viewer.layers[LAYER_NAMES["image"]]
        y, x = layers.pixel_of(points, index, image_layer, np.shape(image_layer.data)[:2])
        self._apply("click", x=x, y=y, positive=bool(points.features[POSITIVE].iloc[index]))
        return True

    @reports_errors("Undo")
    def undo(self) -> None:
        self._opened_ids()
        self._apply("undo")
        points = self.viewer.layers[LAYER_NAMES["clicks"]]
        if len(points.data):
            points.remove([len(points.data) - 1])

    @reports_errors("Review")
    def decide(self, action: str) -> Job | None:
        """``"accept"`` (write the mask to the output folder) or ``"skip"``, recorded in
        ``annotations.csv``; then show the next image still to do."""
        self._opened_ids()
        self._apply(action)
        following = self.annotator.next_todo(self.image_id)
        if following is None:
            self._update_position()
            self.status.value = f"all {len(self.annotator.catalog)} images reviewed: {self.annotator.catalog.out}"
            return None
        return self.show(following)
