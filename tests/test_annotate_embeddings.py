"""``annotate`` and the embedding store: the background pass encodes the folder so that opening an
image reads its embedding back, ``--embeddings DIR`` keeps them between runs, a temporary store goes
with the server, and stopping mid-pass leaves a consistent store and no thread.

The model is the subject here: real Kvasir images with their PraNet maps and LiteMedSAM.
:class:`~samedenhancer.annotate.background.BackgroundPass`'s order and priority are checked with a
stand-in ``embed`` (no model).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the annotate extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the annotate extra (starlette, uvicorn) is not installed")

from _annotate_helpers import Client, running  # noqa: E402

from samedenhancer import EmbeddingStore, io  # noqa: E402
from samedenhancer.annotate import Annotator, Catalog  # noqa: E402
from samedenhancer.annotate.backend import ModelBackend  # noqa: E402
from samedenhancer.annotate.background import THREAD_NAME, BackgroundPass  # noqa: E402
from samedenhancer.annotate.server import create_app  # noqa: E402
from samedenhancer.bench import datasets  # noqa: E402
from samedenhancer.cli import main  # noqa: E402
from samedenhancer.predictor import as_predictor  # noqa: E402

#: Bound of every wait for the background pass (the encoder takes ~1 s an image on 2 idle cores).
WAIT_S = 180


def _kvasir_folders(root, count: int):
    """``root/images`` and ``root/coarse``: the first ``count`` Kvasir images and their PraNet maps."""
    images, coarse = root / "images", root / "coarse"
    images.mkdir()
    coarse.mkdir()
    samples = datasets.samples("kvasir")[:count]
    for sample in samples:
        shutil.copy(sample.image_path, images / sample.image_path.name)
        shutil.copy(sample.coarse_paths["pranet"], coarse / f"{sample.stem}.png")
    return images, coarse, [sample.stem for sample in samples]


def _annotator(root, count: int, litemedsam_dir):
    images, coarse, stems = _kvasir_folders(root, count)
    store = EmbeddingStore(root / "store")
    backend = ModelBackend(as_predictor(litemedsam_dir, embeddings=store), threshold=127)
    annotator = Annotator(Catalog(images, coarse, out=root / "out"), backend, threshold=127, precompute=True)
    return annotator, store, stems


def _wait(client: Client, done) -> dict:
    """Poll ``/api/embeddings`` until ``done(progress)`` (at most ``WAIT_S`` seconds)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        status, progress = client.get("/api/embeddings")
        assert status == 200
        if done(progress):
            return progress
        if time.monotonic() > deadline:
            pytest.fail(f"the background pass did not get there in {WAIT_S} s: {progress}")
        time.sleep(0.05)


def _pass_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


def test_the_background_pass_encodes_every_image_and_opening_one_then_calls_no_encoder(
        data_root, litemedsam_dir, tmp_path):
    annotator, store, stems = _annotator(tmp_path, 3, litemedsam_dir)
    try:
        with running(create_app(annotator)) as address:
            client = Client(address)
            status, progress = client.get("/api/embeddings")
            assert status == 200 and progress == {"ready": 0, "failed": 0, "total": 3, "running": False,
                                                  "encoded": 0, "reused": 0}  # starts with the first image shown
            assert client.post(f"/api/images/{stems[0]}/open", {})[0] == 200
            progress = _wait(client, lambda p: p["ready"] == 3 and not p["running"])
            assert progress["failed"] == 0 and progress["encoded"] == 3  # each image encoded once
            assert len(store) == 3 and store.stats.misses == 3
            hits = store.stats.hits
            status, view = client.post(f"/api/images/{stems[2]}/open", {})
            assert status == 200 and view["start"] == "refined" and view["refined"]
            assert store.stats.misses == 3 and store.stats.hits == hits + 1  # read back: no encoder call
            assert client.get("/api/embeddings")[1]["encoded"] == 3
    finally:
        annotator.close()
    assert not _pass_threads()


def test_stopping_the_server_mid_pass_leaves_every_entry_readable_and_no_thread(data_root, litemedsam_dir, tmp_path):
    annotator, store, stems = _annotator(tmp_path, 6, litemedsam_dir)
    try:
        with running(create_app(annotator)) as address:
            client = Client(address)
            assert client.post(f"/api/images/{stems[0]}/open", {})[0] == 200
            progress = _wait(client, lambda p: p["ready"] >= 2)
            assert progress["running"] and progress["ready"] < 6  # stopped in the middle of the pass
    finally:
        annotator.close()
    assert not _pass_threads() and not annotator.progress().running
    folder = store.path
    assert not [p for p in folder.rglob(".*") if p.is_file()]  # no temporary file left behind
    entries = len(store)
    assert 2 <= entries <= 6

    class NotStored(Exception):
        pass

    def refuse():
        raise NotStored

    reopened, predictor = EmbeddingStore(folder), as_predictor(litemedsam_dir)
    read = 0
    for stem in stems:  # every entry reads back whole (a damaged one would warn: warnings are errors)
        tensor = predictor.prepare(io.read_image(next((tmp_path / "images").glob(f"{stem}.*")))).tensor
        try:
            reopened.fetch(predictor.manifest.identity, tensor, refuse)
            read += 1
        except NotStored:
            pass
    assert read == entries and reopened.stats.rejected == 0


def test_the_pass_goes_in_name_order_after_the_shown_image_and_waits_for_the_user():
    ids = ["a", "b", "c", "d"]
    locks = {image_id: threading.Lock() for image_id in ids}
    embedded, started = [], threading.Event()

    def embed(image_id):
        embedded.append(image_id)
        started.set()
        if image_id == "c":
            raise ValueError("unreadable")

    background = BackgroundPass(ids, embed, locks)
    user = background.foreground()
    user.__enter__()  # a user's request in progress: the pass starts no image
    background.begin("b")
    background.mark_ready("d")  # opened by the user meanwhile: skipped
    assert not started.wait(0.3) and embedded == []
    user.__exit__(None, None, None)
    deadline = time.monotonic() + 10
    while background.progress().running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert embedded == ["c", "a"]  # after b, wrapping; d skipped; b (shown) not again
    progress = background.progress()
    assert (progress.ready, progress.failed, progress.total, progress.running) == (2, 1, 4, False)
    background.stop()
    background.begin("a")  # stopped: never starts again
    assert not _pass_threads()


def test_a_folder_that_is_not_a_store_is_refused(tmp_path, capsys):
    images, notes = tmp_path / "images", tmp_path / "notes"
    images.mkdir()
    notes.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((20, 20), np.uint8))
    (notes / "notes.txt").write_text("mine")
    code = main(["annotate", str(images), "--out", str(tmp_path / "out"), "--embeddings", str(notes), "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and f"embeddings path {notes.resolve()} is not an embedding store" in err and "notes.txt" in err
    assert (notes / "notes.txt").read_text() == "mine" and sorted(p.name for p in notes.iterdir()) == ["notes.txt"]


def _serve(args, env=None):
    """``samedenhancer annotate ARGS --port 0`` in a subprocess: ``(process, client)`` once it listens."""
    command = [sys.executable, "-c", "import sys; from samedenhancer.cli import main; sys.exit(main())"]
    process = subprocess.Popen([*command, "annotate", *map(str, args), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()  # "annotate: open http://127.0.0.1:PORT/ in a browser"
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        process.kill()
        pytest.fail(f"the server did not start: {line!r} {process.communicate(timeout=30)}")
    return process, Client(("127.0.0.1", int(found.group(1))))


def _interrupt(process) -> str:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


def test_embeddings_dir_persists_between_runs_and_a_temporary_store_goes_with_the_server(
        data_root, litemedsam_dir, tmp_path):
    images, coarse, stems = _kvasir_folders(tmp_path, 2)
    store = tmp_path / "store"
    common = [images, "--coarse", coarse, "--out", tmp_path / "out", "--threshold", "127", "--model", litemedsam_dir]
    for run, encoded in ((1, 2), (2, 0)):  # the second run encodes nothing
        process, client = _serve([*common, "--embeddings", store])
        try:
            assert client.post(f"/api/images/{stems[1]}/open", {})[0] == 200
            progress = _wait(client, lambda p: p["ready"] == 2 and not p["running"])
        finally:
            err = _interrupt(process)
        assert progress["encoded"] == encoded and progress["reused"] >= 2 - encoded, (run, progress)
        assert f"embeddings in {store.resolve()}" in err
        assert len(EmbeddingStore(store)) == 2
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    process, client = _serve([*common, "--no-precompute"], env={**os.environ, "TMPDIR": str(scratch)})
    try:
        assert client.post(f"/api/images/{stems[0]}/open", {})[0] == 200
        assert client.get("/api/embeddings") == (200, None)
        (temporary,) = scratch.glob("samedenhancer-annotate-*")
        assert len(EmbeddingStore(temporary)) == 1
    finally:
        err = _interrupt(process)
    assert "(temporary)" in err and not temporary.exists()  # removed when the server stopped
