"""Correct by clicks: each point added to a Points layer corrects one label of a Labels layer on the
point's slice, through an :class:`~samedenhancer.InteractiveSession` (the point's ``positive``
feature: True adds the structure there, False removes it), with undo.

The session belongs to one slice, one label and one pair of layers; a click elsewhere opens the
next one (encoding that slice in a worker thread unless its embedding is cached, the clicks made
meanwhile wait for it). A session starts from the label's current pixels on the slice and starts
again from them when they were painted over since the last click. Clicks run in the viewer's
thread: on the embedded model one takes a few tens of milliseconds (``docs/guides/napari.md``).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, LineEdit, PushButton
from napari.layers import Image, Labels, Points
from napari.layers.base import ActionType

from ..interactive import InteractiveSession
from . import layers
from .engine import opened, shared
from .jobs import Job, reports_errors

__all__ = ["POSITIVE", "ClickWidget", "add_click_points", "apply_added_points", "open_session"]

#: The Points feature that says whether a click adds (True) or removes (False).
POSITIVE = "positive"
_COLOURS = {True: "lime", False: "red"}


class _Click(NamedTuple):
    """One click: where (the session key, the mask layer, slice ``z`` or None, the label, pixel
    x, y), which way, and its point in the Points layer's coordinates."""

    key: tuple
    mask_layer: Labels
    z: int | None
    label: int
    x: int
    y: int
    positive: bool
    point: np.ndarray
    before: np.ndarray | None = None  # the slice's labels before the click (what undo restores)
    opened: bool = False  # the session started at this click (no mask of the label before it)


def _slice(click: _Click) -> np.ndarray:
    """The label data of the click's slice (a view: writing it edits the layer)."""
    labels = np.asarray(click.mask_layer.data)
    return labels[click.z] if click.z is not None else labels


def add_click_points(viewer, name: str, shape: tuple, positive: bool, **where) -> Points:
    """A Points layer for clicks over an image of spatial ``shape``, in add mode: the ``positive``
    feature of each new point is ``positive`` (change it through ``feature_defaults``), drawn
    green (adds) or red (removes)."""
    layer = viewer.add_points(ndim=len(shape), name=name, features={POSITIVE: np.zeros(0, bool)},
                              feature_defaults={POSITIVE: bool(positive)}, face_color=POSITIVE,
                              face_color_cycle=_COLOURS, size=max(shape[-2:]) / 60, **where)
    layer.mode = "add"
    return layer


def apply_added_points(event, click) -> None:
    """For a Points layer's data ``event``: ``click(points, index)`` for each point it added; a
    point the click refuses (it returns a false value) is removed again."""
    if event.action != ActionType.ADDED:
        return
    points = event.source
    for index in sorted((int(i) % len(points.data) for i in event.data_indices), reverse=True):
        if not click(points, index):
            points.remove([index])


def open_session(watch, model: str, image: np.ndarray) -> InteractiveSession:
    """A session on ``image`` (worker thread): its embedding from the cache or the encoder."""
    embedding = shared(model).watched(watch).encode(image)
    return InteractiveSession(image, model=shared(model), embedding=embedding)


class ClickWidget(Container):
    """Points of a Points layer -> corrections of the selected label of a Labels layer."""

    def __init__(self, napari_viewer) -> None:
        self.viewer = napari_viewer
        self.image = ComboBox(label="image", choices=layers.layers_of(napari_viewer, Image))
        self.mask = ComboBox(label="mask", choices=layers.layers_of(napari_viewer, Labels))
        self.points = ComboBox(label="clicks", choices=layers.layers_of(napari_viewer, Points))
        self.model = LineEdit(label="model", value="litemedsam")
        self.new_points = PushButton(text="New click layer")
        self.positive = CheckBox(text="positive click (adds); off: removes", value=True)
        self.undo_button = PushButton(text="Undo")
        self.status = Label(value="")
        super().__init__(widgets=[self.image, self.mask, self.points, self.model, self.new_points, self.positive,
                                  self.undo_button, self.status])
        self.job: Job | None = None
        self.latency_ms: float | None = None  # the last click's, from the event to the refreshed mask
        self._session: InteractiveSession | None = None
        self._key: tuple | None = None
        self._started = False
        self._written: np.ndarray | None = None  # the label's pixels on the slice after the last click
        self._clicked: list[_Click] = []  # the session's clicks
        self._pending: list[_Click] = []  # clicks waiting for their slice's session
        self._loading: tuple | None = None  # the key of the session being opened
        self._watched: Points | None = None
        self.new_points.changed.connect(self.add_points_layer)
        self.positive.changed.connect(self._positive_changed)
        self.undo_button.changed.connect(self.undo)
        self.points.changed.connect(self._watch_points)
        self._watch_points(self.points.value)

    # -- the Points layer --------------------------------------------------------------------
    @reports_errors("New click layer")
    def add_points_layer(self) -> Points:
        """A Points layer "clicks" over the chosen image, in add mode, coloured by ``positive``."""
        image, stack = layers.image_array(self.image.value)
        layer = add_click_points(self.viewer, "clicks", image.shape if stack else image.shape[:2], self.positive.value,
                                 **layers.placement(self.image.value))
        self.points.reset_choices()
        self.points.value = layer
        return layer

    def _positive_changed(self, value: bool) -> None:
        if isinstance(self.points.value, Points):
            self.points.value.feature_defaults = {POSITIVE: bool(value)}

    def _watch_points(self, layer) -> None:
        if self._watched is not None:
            self._watched.events.data.disconnect(self._on_points)
        self._watched = layer if isinstance(layer, Points) else None
        if self._watched is not None:
            self._watched.events.data.connect(self._on_points)

    def _on_points(self, event) -> None:
        apply_added_points(event, self.click)

    # -- clicks --------------------------------------------------------------------------------
    @reports_errors("Click")
    def click(self, points: Points, index: int) -> bool:
        """Apply point ``index`` of ``points`` to the label selected in the mask layer (or queue it
        while its slice is encoded): True; a refusal is a message (and None)."""
        begin = time.perf_counter()
        image_layer, mask_layer = self.image.value, self.mask.value
        image, stack = layers.image_array(image_layer)
        shape = image.shape if stack else image.shape[:2]
        layers.labels_array(mask_layer, shape, image_layer.name, "mask")
        label = int(mask_layer.selected_label)
        if label == 0:
            raise ValueError(f"select the label to correct in the controls of {mask_layer.name!r} "
                             "(0 is the background)")
        if POSITIVE not in points.features:
            raise ValueError(f"points layer {points.name!r} has no {POSITIVE!r} feature: "
                             "make one with 'New click layer'")
        pixel = layers.pixel_of(points, index, image_layer, shape)
        z, (y, x) = (pixel[0], pixel[1:]) if stack else (None, pixel)
        click = _Click((id(image_layer), id(mask_layer), label, z), mask_layer, z, label, x, y,
                       bool(points.features[POSITIVE].iloc[index]), np.array(points.data[index]))
        if self._session is not None and self._key == click.key:
            self._apply(click, begin)
            return True
        if self.job is not None and self.job.running:
            if self._loading != click.key:
                raise ValueError("another slice is being encoded: click again when it is ready")
            self._pending.append(click)
            return True
        slice_image = np.ascontiguousarray(image[z] if stack else image)
        engine = opened(self.model.value)
        embedding = None if engine is None else engine.cached(slice_image)
        if embedding is not None:
            self._opened(click.key, InteractiveSession(slice_image, model=engine, embedding=embedding))
            self._apply(click, begin)
            return True
        self._loading, self._pending = click.key, [click]
        self.status.value = "encoding the slice..."
        self.job = Job("Encode for clicks", 1, open_session, self.model.value, slice_image,
                       done=lambda session: self._opened(click.key, session, apply_pending=True))
        return True

    def _opened(self, key: tuple, session: InteractiveSession, apply_pending: bool = False) -> None:
        self._session, self._key, self._started, self._clicked = session, key, False, []
        pending, self._pending, self._loading = self._pending, [], None
        for click in pending if apply_pending else ():
            self._apply(click, time.perf_counter())

    def _apply(self, click: _Click, begin: float) -> None:
        labels_slice = _slice(click)
        before = labels_slice.copy()
        current = labels_slice == click.label
        session = self._session
        if not self._started or not np.array_equal(current, self._written):  # new, or painted over since
            self._clicked = []
            if not (current.any() or click.positive):
                raise ValueError(f"label {click.label} has no pixel on this slice to remove: "
                                 "start with a positive click")
            self._started = True
            if not current.any() and session.correction == "prompt":  # a point model starts from the point
                self._clicked.append(click._replace(before=before, opened=True))
                self._write(click, labels_slice, session.start(point=(click.x, click.y)), begin)
                return
            session.start(mask=current)  # (the local correction finds the object around a first click itself)
        mask = session.click(click.x, click.y, positive=click.positive)
        self._clicked.append(click._replace(before=before))
        self._write(click, labels_slice, mask, begin)

    def _write(self, click: _Click, labels_slice: np.ndarray, mask: np.ndarray, begin: float) -> None:
        """The session's mask into the label's pixels of the slice; pixels of other labels are
        painted over unless the layer preserves labels (napari's "preserve labels" control)."""
        current = labels_slice == click.label
        grow = mask & ~current
        if click.mask_layer.preserve_labels:
            grow &= labels_slice == 0
        labels_slice[current & ~mask] = 0
        labels_slice[grow] = click.label
        self._written = labels_slice == click.label
        click.mask_layer.refresh()
        self.latency_ms = 1e3 * (time.perf_counter() - begin)
        self.status.value = f"label {click.label}: {len(self._clicked)} clicks, {self.latency_ms:.0f} ms"

    # -- undo ----------------------------------------------------------------------------------
    @reports_errors("Undo")
    def undo(self) -> None:
        """Take back the last click of the current session: its slice as it was before, and its point."""
        if self._session is None or not self._clicked:
            raise ValueError("nothing to undo: no click since the session started")
        last = self._clicked.pop()
        if last.opened:  # the session started at this click: nothing is left to correct
            self._started = False
        else:
            self._session.undo()
        labels_slice = _slice(last)
        labels_slice[...] = last.before
        self._written = labels_slice == last.label
        last.mask_layer.refresh()
        self._remove_point(last.point)
        self.status.value = f"label {last.label}: {len(self._clicked)} clicks"

    def _remove_point(self, point: np.ndarray) -> None:
        layer = self.points.value
        if not isinstance(layer, Points) or not len(layer.data):
            return
        same = np.flatnonzero(np.all(np.isclose(layer.data, point), axis=1))
        if same.size:
            layer.remove([int(same[-1])])
