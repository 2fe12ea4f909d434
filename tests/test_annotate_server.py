"""The annotation server on a real socket (uvicorn in a thread) with a stand-in model: the workflow,
request validation, what may be read and written, replays and two tabs on one image.

The model is not the subject here (``_annotate_helpers.DiskBackend`` paints disks where it is
clicked); ``test_annotate_browser.py`` drives the page with the real session and LiteMedSAM.
"""

from __future__ import annotations

import csv
import json
import os
import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the annotate extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the annotate extra (starlette, uvicorn) is not installed")

from _annotate_helpers import H, W, Client, DiskBackend, image_folders, running  # noqa: E402

from samedenhancer import io  # noqa: E402
from samedenhancer.annotate import LEDGER_COLUMNS, Annotator, Catalog  # noqa: E402
from samedenhancer.annotate.server import MAX_BODY, create_app, parse_body  # noqa: E402
from samedenhancer.cli import main  # noqa: E402

@pytest.fixture
def folders(tmp_path):
    image_folders(tmp_path, ("a", "b", "c"))
    images = tmp_path / "images"
    secret = tmp_path / "secret"
    secret.mkdir()
    cv2.imwrite(str(secret / "private.png"), np.full((H, W), 7, np.uint8))
    os.symlink(secret / "private.png", images / "escape.png")  # a link out of the folder
    os.symlink(images / "a.png", images / "alias.png")  # a link that stays inside
    return tmp_path


@pytest.fixture
def served(folders):
    catalog = Catalog(folders / "images", folders / "coarse", out=folders / "out")
    annotator = Annotator(catalog, DiskBackend())
    with running(create_app(annotator)) as address:
        yield Client(address), annotator, folders


def _op(client, image, action, version, op, **args):
    return client.post(f"/api/images/{image}/{action}", {"op": op, "version": version, **args})


def test_open_click_undo_accept_writes_the_mask_and_a_ledger_row(served):
    client, annotator, folders = served
    status, listing = client.get("/api/images")
    assert status == 200 and listing["total"] == 4 and listing["done"] == 0  # a, alias, b, c
    assert [item["id"] for item in listing["images"]] == ["a", "alias", "b", "c"]
    status, view = client.post("/api/images/a/open", {})
    assert status == 200 and (view["width"], view["height"]) == (W, H)
    assert view["start"] == "refined" and view["version"] == 0 and view["coarse"] and view["refined"]
    refined_area = view["area"]
    assert refined_area == 28 * 28  # the stand-in erodes the 30 x 30 coarse square by a pixel
    status, view = _op(client, "a", "click", 0, "op1", x=5.7, y=5.2, positive=True)
    assert status == 200 and view["clicks"] == [[5, 5, True]] and view["version"] == 1
    assert view["area"] > refined_area
    status, view = _op(client, "a", "undo", 1, "op2")
    assert status == 200 and view["clicks"] == [] and view["area"] == refined_area
    status, view = _op(client, "a", "click", 2, "op3", x=30, y=20, positive=False)
    assert status == 200 and view["area"] < refined_area
    status, png = client.get("/api/images/a/mask")
    served_mask = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) > 0
    assert served_mask.sum() == view["area"]
    status, view = _op(client, "a", "accept", 3, "op4")
    assert status == 200 and view["state"] == "accepted"
    written = io.read_mask(folders / "out" / "a.png")
    assert written.dtype == np.uint8 and set(np.unique(written)) <= {0, 1}
    np.testing.assert_array_equal(written > 0, served_mask)
    with open(folders / "out" / "annotations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(LEDGER_COLUMNS) and len(rows) == 1
    row = rows[0]
    assert row["file"] == "a" and row["action"] == "accepted" and row["clicks"] == "1" and row["start"] == "refined"
    coarse = io.read_mask(folders / "coarse" / "a.png") > 0
    inter = (served_mask & coarse).sum()
    assert float(row["dice_vs_coarse"]) == pytest.approx(2 * inter / (served_mask.sum() + coarse.sum()), abs=1e-4)
    assert client.get("/api/images")[1]["done"] == 1


def test_reset_box_skip_and_a_restart_keeps_the_states(served):
    client, annotator, folders = served
    client.post("/api/images/b/open", {})
    status, view = _op(client, "b", "reset", 0, "r1", to="coarse")
    assert status == 200 and view["start"] == "coarse" and view["area"] == 30 * 30
    status, view = _op(client, "b", "box", 1, "r2", box=[0, 0, 10, 20])
    assert status == 200 and view["start"] == "box" and view["area"] == 200
    status, view = _op(client, "b", "reset", 2, "r3", to="refined")
    assert status == 200 and view["start"] == "refined" and view["area"] == 28 * 28
    status, error = _op(client, "b", "undo", 3, "r4")
    assert status == 409 and error["reason"] == "refused" and "nothing to undo" in error["error"]
    assert _op(client, "b", "skip", 3, "r5")[1]["state"] == "skipped"
    assert not (folders / "out" / "b.png").exists()  # a skip writes no mask
    again = Annotator(Catalog(folders / "images", folders / "coarse", out=folders / "out"), DiskBackend())
    assert {i.id: i.state for i in again.listing().images}["b"] == "skipped"


def test_an_image_without_coarse_mask_starts_from_a_positive_click(folders):
    catalog = Catalog(folders / "images", None, out=folders / "out")
    with running(create_app(Annotator(catalog, DiskBackend()))) as address:
        client = Client(address)
        status, view = client.post("/api/images/c/open", {})
        assert status == 200 and view["start"] is None and view["area"] == 0 and view["coarse"] is None
        status, error = _op(client, "c", "click", 0, "n1", x=10, y=10, positive=False)
        assert status == 409 and "positive click or a box" in error["error"]
        status, error = _op(client, "c", "reset", 0, "n2", to="refined")
        assert status == 409 and "no refined mask" in error["error"]
        status, view = _op(client, "c", "click", 0, "n3", x=10, y=10, positive=True)
        yy, xx = np.ogrid[:H, :W]
        assert status == 200 and view["start"] == "point" and view["area"] == ((xx - 10) ** 2 + (yy - 10) ** 2 <= 36).sum()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"op": "x", "version": 0, "x": 80, "y": 5, "positive": True}, "outside the image"),
        ({"op": "x", "version": 0, "x": -0.5, "y": 5, "positive": True}, "outside the image"),
        ({"op": "x", "version": 0, "x": 5, "y": 60, "positive": True}, "outside the image"),
        ({"op": "x", "version": 0, "x": 5, "y": 5}, "missing ['positive']"),
        ({"op": "x", "version": 0, "x": 5, "y": 5, "positive": True, "extra": 1}, "unknown ['extra']"),
        ({"op": "x", "version": 0, "x": "5", "y": 5, "positive": True}, "x must be a number"),
        ({"op": "x", "version": 0, "x": True, "y": 5, "positive": True}, "x must be a number"),
        ({"op": "x", "version": 0, "x": 5, "y": 5, "positive": 1}, "positive must be True or False"),
        ({"op": "x", "version": -1, "x": 5, "y": 5, "positive": True}, "version must be an integer"),
        ({"op": "", "version": 0, "x": 5, "y": 5, "positive": True}, "op must be a string"),
        ([1, 2], "a JSON object"),
    ],
)
def test_bad_click_bodies_are_400_and_the_server_stays_up(served, body, message):
    client, _, _ = served
    client.post("/api/images/a/open", {})
    status, error = client.post("/api/images/a/click", body)
    assert status == 400 and message in error["error"]
    assert client.get("/api/images")[0] == 200
    assert _op(client, "a", "click", 0, "after", x=5, y=5, positive=True)[0] == 200


def test_malformed_requests_get_a_clear_4xx(served):
    client, _, _ = served
    client.post("/api/images/a/open", {})
    status, error = client.post("/api/images/a/click", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and "must be JSON" in error["error"]
    status, error = client.post("/api/images/a/click", raw=b'{"op": "n", "version": 0, "x": NaN, "y": 1, "positive": true}',
                                headers={"Content-Type": "application/json"})
    assert status == 400 and "x must be a number, got nan" in error["error"]
    status, error = client.post("/api/images/a/undo", raw=b'{"op": "t", "version": 0}', headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in error["error"]  # a cross-origin form cannot send JSON
    status, _ = client.post("/api/images/a/click", raw=b"{" + b" " * (MAX_BODY + 10) + b"}",
                            headers={"Content-Type": "application/json"})
    assert status == 413
    status, error = client.post("/api/images/a/explode", {"op": "e", "version": 0})
    assert status == 400 and "unknown action" in error["error"]
    status, error = _op(client, "a", "box", 0, "b", box=[10, 10, 5, 20])
    assert status == 400 and "box" in error["error"]
    status, error = _op(client, "a", "reset", 0, "b2", to="nowhere")
    assert status == 400 and "refined" in error["error"]
    status, error = _op(client, "nope", "click", 0, "u", x=1, y=1, positive=True)
    assert status == 404 and "unknown image id 'nope'" in error["error"]
    status, error = _op(client, "b", "click", 0, "u2", x=1, y=1, positive=True)
    assert status == 409 and error["reason"] == "closed"  # b exists but is not open yet
    assert client.get("/api/images", headers={"Host": "evil.example:8765"})[0] == 400  # DNS rebinding
    assert client.get("/api/images")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/escape/image",  # a symlink out of the images folder
        "/api/images/private/image",
        "/api/images/../secret/private.png",
        "/api/images/..%2Fsecret%2Fprivate/image",
        "/api/images/%2Fetc%2Fpasswd/image",
        "/api/images//etc/passwd/image",
        "/static/../workflow.py",
        "/static/%2e%2e/workflow.py",
        "/static/..%2Fworkflow.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
    ],
)
def test_only_files_of_the_given_folders_are_served(served, path):
    client, annotator, _ = served
    status, body = client.get(path)
    assert status == 404
    assert b"private" not in (body if isinstance(body, bytes) else json.dumps(body).encode()) or "unknown" in str(body)
    assert "escape" not in [item.id for item in annotator.listing().images]
    assert any("escape.png" in name and "outside" in reason for name, reason in annotator.catalog.refused)


def test_a_symlink_inside_its_folder_and_the_static_files_are_served(served):
    client, _, _ = served
    status, png = client.get("/api/images/alias/image")
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("annotate.js", "annotate.css"):
        assert client.get(f"/static/{name}")[0] == 200
    status, page = client.get("/")
    assert status == 200 and b"/static/annotate.js" in page


def test_the_page_needs_nothing_from_outside():
    from importlib.resources import files

    static = files("samedenhancer.annotate") / "static"
    names = sorted(p.name for p in static.iterdir())
    assert names == ["annotate.css", "annotate.js", "index.html"]
    for name in names:
        text = (static / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
    page = (static / "index.html").read_text()
    for key in ("Enter", "Ctrl", "undo", "reset to the refined mask", "reset to the coarse mask", "skip", "next image"):
        assert key in page  # the shortcuts are listed on the page


def test_the_static_files_are_package_data_of_the_wheel():
    """scikit-build-core puts every file of a ``wheel.packages`` folder in the wheel: the page ships
    when ``annotate/static`` lies inside the folder mapped to ``samedenhancer`` and no exclude drops it."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python >= 3.11")
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["scikit-build"]
    (package,) = config["wheel"]["packages"]
    source = root / package
    static = source / "annotate" / "static"
    files = sorted(p.relative_to(source).as_posix() for p in static.iterdir())
    assert files == ["annotate/static/annotate.css", "annotate/static/annotate.js", "annotate/static/index.html"]
    excludes = config.get("wheel", {}).get("exclude", []) + config.get("sdist", {}).get("exclude", [])
    assert not [(f, x) for f in files for x in excludes if fnmatch.fnmatch(f"samedenhancer/{f}", x)]


def test_a_replayed_operation_is_applied_once(served):
    client, _, folders = served
    client.post("/api/images/a/open", {})
    first = _op(client, "a", "click", 0, "same", x=5, y=5, positive=True)[1]
    again = _op(client, "a", "click", 0, "same", x=5, y=5, positive=True)[1]
    assert again == first and len(again["clicks"]) == 1 and first["took_ms"] >= 0
    _op(client, "a", "accept", 1, "acc")
    _op(client, "a", "accept", 1, "acc")
    with open(folders / "out" / "annotations.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 1


def test_two_tabs_on_one_image_cannot_corrupt_its_mask(folders):
    catalog = Catalog(folders / "images", folders / "coarse", out=folders / "out")
    annotator = Annotator(catalog, DiskBackend(delay=0.002))
    accepted: list[np.ndarray] = []
    lock = threading.Lock()
    with running(create_app(annotator)) as address:
        client = Client(address)
        client.post("/api/images/a/open", {})

        def tab(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for i in range(12):
                status, view = client.post("/api/images/a/open", {})
                version = view["version"]
                if rng.random() < 0.7:
                    x, y = rng.integers(0, W), rng.integers(0, H)
                    _op(client, "a", "click", version, f"{seed}-{i}", x=int(x), y=int(y), positive=bool(rng.random() < 0.5))
                else:
                    with lock:  # what the server holds at the moment of the accept
                        status, view = _op(client, "a", "accept", version, f"{seed}-{i}")
                        if status == 200:
                            accepted.append(io.read_mask(folders / "out" / "a.png") > 0)
                    assert status in (200, 409)

        threads = [threading.Thread(target=tab, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        final = _op(client, "a", "accept", client.post("/api/images/a/open", {})[1]["version"], "final")
        assert final[0] == 200
        status, png = client.get("/api/images/a/mask")
    current = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) > 0
    written = io.read_mask(folders / "out" / "a.png") > 0
    np.testing.assert_array_equal(written, current)  # the last accept won, whole
    with open(folders / "out" / "annotations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(accepted) + 1 and all(row["file"] == "a" for row in rows)
    assert not [p for p in (folders / "out").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_writes_stay_under_out_and_inputs_are_never_outputs(folders):
    before = {p: p.stat().st_mtime_ns for p in folders.rglob("*") if p.is_file()}
    catalog = Catalog(folders / "images", folders / "coarse", out=folders / "out")
    annotator = Annotator(catalog, DiskBackend())
    annotator.open("a")
    annotator.apply("a", "o", 0, "accept")
    after = {p: p.stat().st_mtime_ns for p in folders.rglob("*") if p.is_file()}
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed == {folders / "out" / "a.png", folders / "out" / "annotations.csv"}
    for inputs in ("images", "coarse"):
        with pytest.raises(ValueError, match=f"out .* is the {inputs} folder"):
            Catalog(folders / "images", folders / "coarse", out=folders / inputs)
    with pytest.raises(ValueError, match="images must be a folder"):
        Catalog(folders / "nope", out=folders / "out")


def test_parse_body_names_what_it_expected():
    with pytest.raises(ValueError, match=r"needs the fields \['a'\]; missing \['a'\]"):
        parse_body(b"{}", {"a": None})


def test_cli_refuses_bad_folders_and_warns_before_listening_elsewhere(folders, capsys):
    assert main(["annotate", str(folders / "nope"), "--out", str(folders / "out")]) == 2
    assert "images must be a folder" in capsys.readouterr().err
    assert main(["annotate", str(folders / "images"), "--out", str(folders / "images")]) == 2
    assert "is the images folder" in capsys.readouterr().err
    code = main(["annotate", str(folders / "images"), "--out", str(folders / "out"), "--host", "0.0.0.0", "--allow-remote",
                 "--model", str(folders / "no-model")])
    err = capsys.readouterr().err
    assert code == 2 and "warning: listening on 0.0.0.0" in err and "left out escape.png" in err


def test_prefetch_opens_the_next_image_to_do_in_the_background(folders):
    catalog = Catalog(folders / "images", folders / "coarse", out=folders / "out")
    backend = DiskBackend()
    annotator = Annotator(catalog, backend, prefetch=True)

    def settled():
        if annotator._prefetching is not None:
            annotator._prefetching.result(timeout=10)
        return set(annotator._open)

    try:
        annotator.open("a")
        assert settled() == {"a", "alias"} and backend.opened == 2
        annotator.open("b")
        assert settled() == {"a", "alias", "b", "c"} and backend.opened == 4
        view = annotator.open("c")
        assert view.start == "refined" and backend.opened == 4  # no second refinement
        assert annotator.next_todo("c") == "a"  # wraps
        annotator.apply("a", "s", 0, "skip")
        assert annotator.next_todo("c") == "alias"  # passing a, skipped
    finally:
        annotator.close()
    with pytest.raises(ValueError, match="keep must be an integer >= 2, got 1"):
        Annotator(catalog, backend, keep=1)


def test_unreadable_files_are_422_and_the_server_stays_up(folders):
    images, coarse = folders / "images", folders / "coarse"
    (images / "broken.jpg").write_bytes((images / "a.png").read_bytes()[:100])
    cv2.imwrite(str(images / "small.png"), np.zeros((10, 10), np.uint8))
    cv2.imwrite(str(coarse / "small.png"), np.zeros((12, 10), np.uint8))
    annotator = Annotator(Catalog(images, coarse, out=folders / "out"), DiskBackend())
    with running(create_app(annotator)) as address:
        client = Client(address)
        status, error = client.post("/api/images/broken/open", {})
        assert status == 422 and "cannot read broken.jpg" in error["error"]
        assert client.get("/api/images/broken/image")[0] == 422
        status, error = client.post("/api/images/small/open", {})
        assert status == 422 and "10 x 12 px" in error["error"] and "10 x 10 px" in error["error"]
        assert client.post("/api/images/a/open", {})[0] == 200


@pytest.mark.parametrize("dtype, low, high", [(np.uint16, 100, 4000), (np.float32, -1000.0, 2000.0)])
def test_images_beyond_8_bits_are_stretched_for_display(dtype, low, high):
    from samedenhancer.annotate.views import display_png

    ramp = np.linspace(low, high, 64 * 64).reshape(64, 64).astype(dtype)
    shown = cv2.imdecode(np.frombuffer(display_png(ramp), np.uint8), cv2.IMREAD_UNCHANGED)
    assert shown.dtype == np.uint8 and shown.shape == (64, 64)
    assert shown.min() == 0 and shown.max() == 255 and (np.diff(shown.ravel().astype(int)) >= 0).all()
    rgb = np.dstack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30)])
    back = cv2.imdecode(np.frombuffer(display_png(rgb), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back[0, 0].tolist() == [30, 20, 10]  # PNG stores BGR as OpenCV writes it: RGB kept
