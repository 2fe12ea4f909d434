"""The napari plugin, part 1: the manifest (npe2 validate, found through the package's entry
point), the sample data, the embedding cache, and Refine masks end to end on a real viewer with
the real LiteMedSAM (a Kvasir image with PraNet's soft map, a few ACDC slices as a stack), its
cancel button, and the messages bad inputs get instead of exceptions in the event loop."""

from __future__ import annotations

import numpy as np
import pytest

from _napari_helpers import kvasir, acdc_stack, messages, require_viewer, wait, KVASIR_STEMS  # noqa: F401

require_viewer()

import samedenhancer as se  # noqa: E402
from samedenhancer import data  # noqa: E402
from samedenhancer.metrics import dice  # noqa: E402
from samedenhancer.napari import engine  # noqa: E402

PLUGIN = "samedenhancer"


def test_npe2_validates_the_manifest_and_imports_every_contribution():
    from npe2.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["validate", "--imports", PLUGIN])  # `npe2 validate --imports samedenhancer`
    assert result.exit_code == 0 and "valid" in result.output, result.output


def test_the_manifest_names_the_widgets_and_the_sample():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    assert manifest.display_name == "samedenhancer"
    assert [w.display_name for w in manifest.contributions.widgets] == [
        "Refine masks", "Correct by clicks", "Propagate", "Review a folder"]
    assert [s.key for s in manifest.contributions.sample_data] == ["fundus"]


def test_open_sample_gives_the_fundus_and_its_thresholded_coarse_mask(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "fundus")
    sample = data.fundus()
    image, coarse = viewer.layers["fundus"], viewer.layers["fundus coarse"]
    assert image.rgb and np.array_equal(image.data, sample.image)
    assert type(coarse).__name__ == "Labels"
    assert np.array_equal(coarse.data, (sample.coarse > sample.threshold).astype(np.uint8))


def test_the_shared_engine_encodes_each_image_once(data_root, litemedsam_dir):
    image = kvasir(data_root, KVASIR_STEMS[0])[0]
    cached = engine.shared("litemedsam")
    assert engine.shared("litemedsam") is cached and isinstance(cached.predictor, se.Predictor)
    first = cached.encode(image)
    encodes = cached.encodes
    assert cached.encode(image.copy()) is first and cached.cached(image) is first  # the same pixels: no encode
    other = image.copy()
    other[0, 0, 0] ^= 1  # one pixel differs: another image
    assert cached.cached(other) is None and cached.encodes == encodes


class CountingPredictor:
    """Encodes to the image's mean; counts its encodes."""

    manifest = None

    def __init__(self):
        self.calls = 0

    def encode(self, image):
        self.calls += 1
        return float(image.mean())


def test_the_cache_keeps_the_most_recently_used_embeddings():
    cached = engine.CachedPredictor(CountingPredictor(), size=2)
    images = [np.full((8, 8), value, np.uint8) for value in (1, 2, 3)]
    assert [cached.encode(i) for i in images[:2]] == [1.0, 2.0]
    cached.encode(images[0])  # a hit, now the most recent
    cached.encode(images[2])  # evicts image 1
    assert cached.predictor.calls == 3 and cached.cached(images[1]) is None and cached.cached(images[0]) == 1.0
    assert cached.encode(np.full((8, 8), 1, np.uint16)) == 1.0 and cached.predictor.calls == 4  # another dtype


def _refine_widget(viewer):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Refine masks")
    widget.reset_choices()
    return widget


def test_refine_a_soft_map_gives_the_enhancers_mask_and_leaves_the_coarse_layer(make_napari_viewer, qtbot, data_root,
                                                                                 litemedsam_dir, messages):
    image, soft, truth = kvasir(data_root, KVASIR_STEMS[0])
    viewer = make_napari_viewer()
    viewer.add_image(image, name="polyp", rgb=True)
    coarse_layer = viewer.add_labels(soft.copy(), name="pranet", scale=(0.5, 0.5))
    widget = _refine_widget(viewer)
    widget.image.value, widget.coarse.value = viewer.layers["polyp"], coarse_layer
    widget.soft.value, widget.threshold.value, widget.gate.value = True, 127.0, "off"
    widget.run_button.native.click()
    wait(qtbot, widget.job)
    refined = viewer.layers["refined"]
    assert type(refined).__name__ == "Labels" and refined.data.shape == soft.shape
    np.testing.assert_array_equal(refined.scale, coarse_layer.scale)
    expected = se.Enhancer(engine.shared("litemedsam"), threshold=127, gate=False).enhance(image, soft).mask
    np.testing.assert_array_equal(refined.data, expected)
    assert np.array_equal(coarse_layer.data, soft)  # the coarse layer is never modified
    coarse_dice, refined_dice = dice(soft > 127, truth), dice(refined.data > 0, truth)
    assert refined_dice > 0.9 and not np.array_equal(refined.data > 0, soft > 127), (coarse_dice, refined_dice)
    assert widget.status.value.startswith("refined") and not [m for m in messages if "error" in m[0]]


def test_refine_a_stack_refines_it_as_a_volume(make_napari_viewer, qtbot, data_root, litemedsam_dir):
    volume, truth = acdc_stack(data_root)
    coarse = np.roll(truth, 4, axis=2)  # a coarse map 4 px off to the side
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="mri")
    coarse_layer = viewer.add_labels(coarse.copy(), name="coarse")
    widget = _refine_widget(viewer)
    widget.run_button.native.click()
    bar = widget.job.bar  # the run's progress bar in the activity dock: one step per slice
    assert bar.total == len(volume) and bar.desc.startswith("Refine")
    wait(qtbot, widget.job)
    assert bar.n == len(volume)
    refined = viewer.layers["refined"].data
    expected = se.Enhancer(engine.shared("litemedsam")).enhance_volume(volume, coarse, axis=0).mask
    np.testing.assert_array_equal(refined, expected)
    assert np.array_equal(coarse_layer.data, coarse)
    lv_coarse, lv_refined = dice(coarse == 3, truth == 3), dice(refined == 3, truth == 3)
    assert lv_refined > lv_coarse, (lv_coarse, lv_refined)


def test_cancel_stops_the_run_and_adds_no_layer(make_napari_viewer, qtbot, data_root, litemedsam_dir, messages):
    volume, truth = acdc_stack(data_root)
    viewer = make_napari_viewer()
    viewer.add_image(np.ascontiguousarray(volume[:, ::-1]), name="flipped")  # not in the cache yet
    viewer.add_labels(np.ascontiguousarray(truth[:, ::-1]), name="coarse")
    widget = _refine_widget(viewer)
    widget.run_button.native.click()
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    widget.cancel_button.native.click()
    wait(qtbot, widget.job)
    assert "refined" not in viewer.layers and widget.status.value == "cancelled"
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert any(severity == "info" and "cancelled" in text for severity, text in messages)


@pytest.mark.parametrize("case, expected", [
    ("rgb stack", "stack of colour images"),
    ("shapes differ", "must match pixel for pixel"),
    ("empty", "holds no label"),
    ("no coarse layer", "must be a Labels layer, got no layer"),
    ("unknown model", "Refine: "),
])
def test_bad_inputs_show_a_message_and_raise_nothing(make_napari_viewer, qtbot, messages, case, expected):
    viewer = make_napari_viewer()
    image = np.zeros((3, 40, 50, 3), np.uint8) if case == "rgb stack" else np.zeros((40, 50), np.uint8)
    viewer.add_image(image, name="image", rgb=case == "rgb stack")
    shape = {"shapes differ": (40, 60), "rgb stack": (3, 40, 50)}.get(case, (40, 50))
    labels = np.zeros(shape, np.uint8)
    if case != "empty":
        labels[..., 10:20, 10:20] = 1
    if case != "no coarse layer":
        viewer.add_labels(labels, name="coarse")
    widget = _refine_widget(viewer)
    if case == "unknown model":
        widget.model.value = "no-such-model"
    widget.run_button.native.click()
    if widget.job is not None:
        wait(qtbot, widget.job)
    errors = [text for severity, text in messages if severity == "error"]
    assert len(errors) == 1 and expected in errors[0], messages
    assert "refined" not in viewer.layers and widget.run_button.enabled
