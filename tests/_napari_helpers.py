"""Shared by the napari plugin's tests: the skip when no viewer can open here, waiting for a
widget's worker, the notifications shown, and the real images they run on."""

from __future__ import annotations

import os

import numpy as np
import pytest

from samedenhancer.bench import datasets

#: Kvasir-SEG images of the PraNet test split, small ones (about 560 x 350 and 490 x 530 px).
KVASIR_STEMS = ("cju5hi52odyf90817prvcwg45", "cju1hp9i2xu8e0988u2dazk7m")
#: Slices 3..5 of ACDC's patient011 end-diastole volume (256 x 216, RV 1 / MYO 2 / LV 3).
ACDC_VOLUME, ACDC_SLICES = "patient011_frame01", slice(3, 6)


def require_viewer() -> None:
    """Skip unless napari is installed and an X display is there (pytest-xvfb starts Xvfb for the
    session when scripts/install-napari-deps.sh installed it): napari's canvas needs OpenGL,
    which Qt's offscreen platform does not give it."""
    pytest.importorskip("napari", reason="the napari plugin needs the napari extra")
    pytest.importorskip("pytestqt", reason="the napari tests need pytest-qt (test extra)")
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display: install Xvfb (scripts/install-napari-deps.sh) so that pytest-xvfb starts one")


def wait(qtbot, job, timeout_s: float = 300) -> None:
    """Wait until ``job`` (a widget's :class:`samedenhancer.napari.jobs.Job`) has finished."""
    assert job is not None, "the widget started no job"
    qtbot.waitUntil(lambda: not job.running, timeout=int(timeout_s * 1000))


def kvasir(data_root, stem: str):
    """(image RGB uint8, PraNet's soft map uint8 0..255, expert mask 0/1) of a Kvasir image."""
    sample = next(s for s in datasets.samples("kvasir", data_root) if s.stem == stem)
    return sample.image(), sample.coarse("pranet"), sample.ground_truth()


def acdc_stack(data_root):
    """(image Z x H x W uint16, expert labels Z x H x W uint8) of a few slices of one ACDC volume."""
    samples = sorted((s for s in datasets.samples("acdc", data_root) if s.stem.startswith(ACDC_VOLUME + "_slice")),
                     key=lambda s: s.stem)[ACDC_SLICES]
    return np.stack([s.image() for s in samples]), np.stack([s.ground_truth() for s in samples])


@pytest.fixture
def messages():
    """The (severity, text) of every napari notification shown during the test."""
    from napari.utils.notifications import notification_manager

    shown: list[tuple[str, str]] = []

    def record(notification) -> None:
        shown.append((str(notification.severity), str(notification.message)))

    notification_manager.notification_ready.connect(record)
    yield shown
    notification_manager.notification_ready.disconnect(record)
