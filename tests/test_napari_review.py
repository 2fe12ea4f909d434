"""The napari plugin, part 3: Review a folder end to end on a real viewer with the real LiteMedSAM,
on two Kvasir images with PraNet's soft maps: accept as refined, correct by a click then accept,
skip, the outputs and annotations.csv as ``samedenhancer annotate`` writes them, and the refusal of
an output folder that is an input folder."""

from __future__ import annotations

import csv
import shutil

import numpy as np

from _napari_helpers import KVASIR_STEMS, messages, require_viewer, wait  # noqa: F401

require_viewer()

from samedenhancer import io  # noqa: E402
from samedenhancer.annotate import LEDGER_COLUMNS  # noqa: E402
from samedenhancer.bench import datasets  # noqa: E402
from samedenhancer.napari.review import LAYER_NAMES  # noqa: E402

PLUGIN = "samedenhancer"


def _folders(tmp_path, data_root):
    """images/ and coarse/ with the Kvasir images and PraNet maps (copies in tmp_path), out/."""
    for sub in ("images", "coarse"):
        (tmp_path / sub).mkdir()
    for sample in datasets.samples("kvasir", data_root):
        if sample.stem in KVASIR_STEMS:
            shutil.copy(sample.image_path, tmp_path / "images" / sample.image_path.name)
            shutil.copy(sample.coarse_paths["pranet"], tmp_path / "coarse" / f"{sample.stem}.png")
    return tmp_path / "images", tmp_path / "coarse", tmp_path / "out"


def _review_widget(viewer, images, coarse, out):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Review a folder")
    widget.images.value, widget.coarse.value, widget.out.value = images, coarse, out
    widget.soft.value, widget.threshold.value = True, 127.0
    return widget


def test_review_accepts_corrects_and_skips_with_annotates_outputs(make_napari_viewer, qtbot, tmp_path, data_root,
                                                                  litemedsam_dir, messages):
    images, coarse, out = _folders(tmp_path, data_root)
    inputs = {p: p.read_bytes() for p in [*images.iterdir(), *coarse.iterdir()]}
    viewer = make_napari_viewer()
    widget = _review_widget(viewer, images, coarse, out)
    widget.run_button.native.click()
    wait(qtbot, widget.job)
    first, second = sorted(KVASIR_STEMS)
    assert widget.image_id == first and widget.position.value == f"1 of 2: {first} (todo)"
    assert set(LAYER_NAMES.values()) <= {layer.name for layer in viewer.layers}
    shown = viewer.layers[LAYER_NAMES["mask"]].data.copy()
    assert np.array_equal(shown > 0, widget.annotator.mask(first)) and shown.any()
    # accept the refined mask as it is: written to out/, one ledger row, the next image opens
    widget.accept_button.native.click()
    wait(qtbot, widget.job)
    np.testing.assert_array_equal(io.read_mask(out / f"{first}.png") > 0, shown > 0)
    assert widget.image_id == second
    # a negative click on the refined polyp removes it there; accept writes the corrected mask
    before = viewer.layers[LAYER_NAMES["mask"]].data.copy()
    ys, xs = np.nonzero(before)
    y, x = int(np.median(ys)), int(np.median(xs))
    assert before[y, x]
    widget.positive.value = False
    viewer.layers[LAYER_NAMES["clicks"]].add([y, x])
    corrected = viewer.layers[LAYER_NAMES["mask"]].data.copy()
    assert not corrected[y, x] and corrected.sum() < before.sum()
    widget.accept_button.native.click()
    np.testing.assert_array_equal(io.read_mask(out / f"{second}.png") > 0, corrected > 0)
    assert widget.status.value.startswith("all 2 images reviewed")
    # skip the first one on a second pass: a row, its accepted file stays
    widget.previous_button.native.click()
    wait(qtbot, widget.job)
    widget.skip_button.native.click()
    with open(out / "annotations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == LEDGER_COLUMNS
    assert [(r["file"], r["action"], r["clicks"], r["start"]) for r in rows] == [
        (first, "accepted", "0", "refined"), (second, "accepted", "1", "refined"), (first, "skipped", "0", "refined")]
    assert (out / f"{first}.png").is_file()
    assert all(p.read_bytes() == content for p, content in inputs.items())  # inputs untouched
    assert not [m for m in messages if m[0] == "error"]


def test_review_refuses_an_output_folder_that_is_an_input(make_napari_viewer, tmp_path, data_root, messages):
    images, coarse, _ = _folders(tmp_path, data_root)
    viewer = make_napari_viewer()
    widget = _review_widget(viewer, images, coarse, images)
    widget.run_button.native.click()
    errors = [text for severity, text in messages if severity == "error"]
    assert len(errors) == 1 and "is the images folder" in errors[0] and widget.job is None
    widget.accept_button.native.click()  # nothing open: a message, no exception
    widget.out.value = None
    widget.run_button.native.click()
    errors = [text for severity, text in messages if severity == "error"]
    assert "open a folder first" in errors[-2] and "choose the output folder" in errors[-1]
