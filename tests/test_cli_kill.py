"""Kill test (issue 12): ``samedenhancer enhance`` in a subprocess is SIGKILLed at seeded random
points of a batch of real Kvasir images, then ``--resume``d; in the end every output is present
and byte-identical to an uninterrupted run, and no temporary file is left. The model is not the
subject: the subprocess runs the CLI on the fake model of ``fakes.py`` (with a short pause per
image, standing in for the encoder, so kills land inside the batch)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.bench import datasets

TESTS = Path(__file__).resolve().parent
RUNNER = f"""
import sys, time
sys.path.insert(0, {os.fspath(TESTS)!r})
from fakes import DoublePredictor, use_fake_model

class SlowDouble(DoublePredictor):
    def encode(self, image):
        time.sleep(0.05)
        return super().encode(image)

use_fake_model(None, lambda: SlowDouble(grow=2))
from samedenhancer.cli import main
sys.exit(main(sys.argv[1:]))
"""
IMAGES = 10


@pytest.fixture(scope="module")
def batch(tmp_path_factory, data_root):
    """Ten real Kvasir images with their PraNet maps, shrunk to 160 px wide."""
    base = tmp_path_factory.mktemp("kill")
    for sample in datasets.samples("kvasir", data_root)[:IMAGES]:
        image, coarse = sample.image(), sample.coarse("pranet")
        size = (160, round(160 * image.shape[0] / image.shape[1]))
        io.write_mask(base / "images" / f"{sample.stem}.png", cv2.resize(image, size, interpolation=cv2.INTER_AREA)[..., ::-1].copy())
        io.write_mask(base / "coarse" / f"{sample.stem}.png", cv2.resize(coarse, size, interpolation=cv2.INTER_AREA))
    return base


def _command(batch, out, *extra):
    return [sys.executable, "-c", RUNNER, "enhance", str(batch / "images"), str(batch / "coarse"), "--out", str(out),
            "--threshold", "127", "--details", "--quiet", *extra]


def _outputs(out: Path) -> dict:
    """Every file of ``out``: masks as bytes, details without their (run-dependent) timings."""
    found = {}
    for path in sorted(out.iterdir()):
        if path.suffix == ".json":
            details = json.loads(path.read_text())
            details.pop("timings_s")
            found[path.name] = details
        else:
            found[path.name] = path.read_bytes()
    return found


def _masks(out: Path) -> int:
    """How many masks ``out`` holds (the progress of the batch)."""
    return sum(1 for p in out.iterdir() if p.suffix == ".png" and not p.name.startswith(".")) if out.is_dir() else 0


def test_killed_and_resumed_runs_end_byte_identical_to_an_uninterrupted_one(batch, tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run(_command(batch, reference), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = _outputs(reference)
    assert len(expected) == 2 * IMAGES

    out = tmp_path / "out"
    rng = random.Random(12)
    for attempt in range(6):
        present = _masks(out)
        if present >= IMAGES - 1:
            break
        if attempt == 0:  # during the start (imports, the output-folder check, the clean-up)
            kill_after, delay = present, rng.uniform(0.0, 1.0)
        else:  # right after, or a random part of one image's time after, the n-th new mask
            kill_after, delay = present + 1 + rng.randrange(min(3, IMAGES - present - 1)), rng.choice([0.0, rng.uniform(0.0, 0.06)])
        process = subprocess.Popen(_command(batch, out, "--resume"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline and _masks(out) < kill_after:
                time.sleep(0.001)
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
    final = subprocess.run(_command(batch, out, "--resume"), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert _outputs(out) == expected
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    refined = io.read_mask(out / f"{next(iter(expected)).split('.')[0]}.png")
    assert refined.dtype == np.uint8 and refined.max() == 255  # a 0..255 map thresholded comes back 0/255
