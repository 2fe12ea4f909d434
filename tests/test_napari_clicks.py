"""The napari plugin, part 2: Correct by clicks and Propagate end to end on a real viewer with the
real LiteMedSAM, on a few slices of an ACDC volume (a stack): a click changes the selected label
where it was made and nowhere else, undo restores the slice exactly, the propagation is
samedenhancer.propagate's, the seed layer is left as it was, and bad inputs get a message."""

from __future__ import annotations

import numpy as np
import pytest

from _napari_helpers import acdc_stack, messages, require_viewer, wait  # noqa: F401

require_viewer()

import samedenhancer as se  # noqa: E402
from samedenhancer.metrics import dice  # noqa: E402
from samedenhancer.napari import engine  # noqa: E402

PLUGIN = "samedenhancer"
LV, MYO = 3, 2


@pytest.fixture(scope="module")
def stack(data_root):
    return acdc_stack(data_root)


def _click_widget(viewer, image, mask):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Correct by clicks")
    widget.reset_choices()
    widget.image.value, widget.mask.value = image, mask
    widget.new_points.native.click()
    return widget, viewer.layers["clicks"]


def _click(qtbot, widget, points, z, y, x, positive):
    widget.positive.value = positive
    points.add([z, y, x])
    if widget.job is not None:
        wait(qtbot, widget.job)  # the first click on a slice waits for its encoding


def test_clicks_correct_the_selected_label_on_their_slice_and_undo_restores_it(make_napari_viewer, qtbot, stack,
                                                                               litemedsam_dir, messages):
    volume, truth = stack
    viewer = make_napari_viewer()
    image = viewer.add_image(volume, name="mri")
    mask = viewer.add_labels(truth.copy(), name="mask")
    mask.selected_label = LV
    widget, points = _click_widget(viewer, image, mask)
    assert points.ndim == 3 and points.mode == "add"
    z = 1
    original = mask.data.copy()
    # a positive click on the myocardium next to the cavity: the cavity grows to take that pixel
    lv = truth[z] == LV
    ys, xs = np.nonzero(lv)
    y, x = int(ys.mean()), int(xs.max()) + 2
    assert truth[z, y, x] == MYO
    _click(qtbot, widget, points, z, y, x, True)
    after_add = mask.data.copy()
    assert after_add[z, y, x] == LV
    changed = after_add[z] != original[z]
    assert changed.any() and set(np.unique(after_add[z][changed])) == {LV}  # only the selected label grew
    assert np.array_equal(after_add[[0, 2]], original[[0, 2]])  # other slices untouched
    assert widget.latency_ms is not None and widget.latency_ms > 0
    # a negative click inside the cavity removes it there; the other labels stay
    y, x = int(ys.mean()), int(xs.mean())
    _click(qtbot, widget, points, z, y, x, False)
    assert mask.data[z, y, x] == 0
    assert np.array_equal(mask.data[z] == MYO, after_add[z] == MYO) and np.array_equal(mask.data[z] == 1, truth[z] == 1)
    assert len(points.data) == 2 and points.features["positive"].tolist() == [True, False]
    widget.undo_button.native.click()
    assert np.array_equal(mask.data, after_add) and len(points.data) == 1
    widget.undo_button.native.click()
    assert np.array_equal(mask.data, original) and len(points.data) == 0
    widget.undo_button.native.click()  # nothing left: a message, no exception
    assert [text for severity, text in messages if severity == "error"] == [
        "Undo: nothing to undo: no click since the session started"]


def test_a_first_click_on_an_empty_label_starts_it_and_a_negative_one_is_refused(make_napari_viewer, qtbot, stack,
                                                                                 litemedsam_dir, messages):
    volume, truth = stack
    viewer = make_napari_viewer()
    image = viewer.add_image(volume, name="mri")
    mask = viewer.add_labels(np.zeros_like(truth), name="empty")
    widget, points = _click_widget(viewer, image, mask)
    mask.selected_label = 0
    _click(qtbot, widget, points, 1, 100, 100, True)
    mask.selected_label = LV
    ys, xs = np.nonzero(truth[1] == LV)
    _click(qtbot, widget, points, 1, int(ys.mean()), int(xs.mean()), False)
    errors = [text for severity, text in messages if severity == "error"]
    assert len(errors) == 2 and "0 is the background" in errors[0] and "start with a positive click" in errors[1]
    assert not mask.data.any() and len(points.data) == 0  # a refused click leaves no point
    _click(qtbot, widget, points, 1, int(ys.mean()), int(xs.mean()), True)
    found = mask.data[1] == LV
    assert found[int(ys.mean()), int(xs.mean())] and dice(found, truth[1] == LV) > 0.5
    widget.undo_button.native.click()
    assert not mask.data.any()


def test_propagate_carries_the_labelled_slice_through_the_stack(make_napari_viewer, qtbot, stack, litemedsam_dir,
                                                                 messages):
    volume, truth = stack
    seeds = np.zeros_like(truth)
    seeds[1] = truth[1]
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="mri")
    seed_layer = viewer.add_labels(seeds.copy(), name="seed")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Propagate")
    widget.reset_choices()
    widget.run_button.native.click()
    wait(qtbot, widget.job)
    propagated = viewer.layers["propagated"].data
    expected = se.propagate(volume, seeds={1: truth[1]}, model=engine.shared("litemedsam"), axis=0).mask
    np.testing.assert_array_equal(propagated, expected)
    assert np.array_equal(propagated[1], truth[1]) and np.array_equal(seed_layer.data, seeds)
    assert min(dice(propagated[z] == LV, truth[z] == LV) for z in (0, 2)) > 0.8
    assert "propagated" in widget.status.value and not [m for m in messages if m[0] == "error"]


@pytest.mark.parametrize("case, expected", [
    ("2-D image", "needs a stack of slices"),
    ("no labelled slice", "holds no label"),
])
def test_propagate_refuses_bad_inputs_with_a_message(make_napari_viewer, qtbot, messages, case, expected):
    viewer = make_napari_viewer()
    shape = (40, 50) if case == "2-D image" else (3, 40, 50)
    viewer.add_image(np.zeros(shape, np.uint8), name="image")
    viewer.add_labels(np.zeros(shape, np.uint8), name="seed")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Propagate")
    widget.reset_choices()
    widget.run_button.native.click()
    errors = [text for severity, text in messages if severity == "error"]
    assert len(errors) == 1 and expected in errors[0] and widget.job is None
