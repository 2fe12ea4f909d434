"""The annotation page keeps the user's work and refuses what it must: an accepted mask reopens as
saved (after a restart, after it left memory) and no accepted version is lost; every loopback form
keeps the Host check and a non-loopback address needs ``--allow-remote``; hostile bodies are 400."""

from __future__ import annotations

import csv
import socket

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the annotate extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the annotate extra (starlette, uvicorn) is not installed")

from _annotate_helpers import Client, DiskBackend, image_folders, running, started  # noqa: E402

from samedenhancer import io  # noqa: E402
from samedenhancer.annotate import Annotator, Catalog  # noqa: E402
from samedenhancer.annotate.server import MAX_DIGITS, create_app, is_loopback, listen  # noqa: E402
from samedenhancer.cli import main  # noqa: E402

@pytest.fixture
def folders(tmp_path):
    return image_folders(tmp_path, ("a", "b", "c", "d"), seed=1)


def _annotator(folders, **kwargs):
    return Annotator(Catalog(folders / "images", folders / "coarse", out=folders / "out"), DiskBackend(), **kwargs)


def _op(client, image, action, version, op, **args):
    return client.post(f"/api/images/{image}/{action}", {"op": op, "version": version, **args})


def _served_mask(client, image):
    status, png = client.get(f"/api/images/{image}/mask")
    assert status == 200
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) > 0


def _ledger(folders):
    with open(folders / "out" / "annotations.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# -- an accepted mask is the user's work ------------------------------------------------------------
def test_an_accepted_mask_reopens_as_saved_after_a_restart_and_a_new_version_keeps_the_old(folders):
    out = folders / "out"
    with running(create_app(_annotator(folders))) as address:
        client = Client(address)
        assert client.post("/api/images/a/open", {})[1]["start"] == "refined"
        _op(client, "a", "click", 0, "c1", x=70, y=50, positive=True)  # a correction far from the refined mask
        corrected = _served_mask(client, "a")
        assert _op(client, "a", "accept", 1, "a1")[0] == 200
    first = (out / "a.png").read_bytes()
    with running(create_app(_annotator(folders))) as address:  # the server restarted
        client = Client(address)
        status, view = client.post("/api/images/a/open", {})
        assert status == 200 and view["start"] == "saved" and view["state"] == "accepted" and view["notice"] is None
        np.testing.assert_array_equal(_served_mask(client, "a"), corrected)  # not a fresh refinement
        assert view["refined"] and view["area"] == corrected.sum()  # the refined mask is still one reset away
        assert _op(client, "a", "accept", 0, "again")[0] == 200  # unchanged: nothing to keep
        assert not (out / "history").exists() and (out / "a.png").read_bytes() == first
        _op(client, "a", "click", 0, "c2", x=5, y=5, positive=True)
        second = _served_mask(client, "a")
        assert _op(client, "a", "accept", 1, "a2")[0] == 200
    assert sorted(p.name for p in (out / "history").iterdir()) == ["a.v1.png"]
    assert (out / "history" / "a.v1.png").read_bytes() == first
    np.testing.assert_array_equal(io.read_mask(out / "a.png") > 0, second)
    rows = _ledger(folders)
    assert [(r["file"], r["action"], r["start"], r["clicks"]) for r in rows] == [
        ("a", "accepted", "refined", "1"), ("a", "accepted", "saved", "0"), ("a", "accepted", "saved", "1")]


def test_an_accepted_mask_reopens_as_saved_once_it_left_memory(folders):
    annotator = _annotator(folders, keep=2)
    annotator.open("a")
    annotator.apply("a", "b1", 0, "box", box=[2, 3, 12, 9])
    boxed = annotator.mask("a").copy()
    annotator.apply("a", "ok", 1, "accept")
    for other in ("b", "c", "d"):
        annotator.open(other)
    assert "a" not in annotator._open and annotator.backend.opened == 4
    view = annotator.open("a")
    assert annotator.backend.opened == 5 and view.start == "saved"
    np.testing.assert_array_equal(annotator.mask("a"), boxed)
    annotator.apply("a", "r", 0, "reset", to="refined")  # the user may still go back to the refinement
    assert annotator.mask("a").sum() == 28 * 28
    annotator.apply("a", "skip", 1, "skip")
    for other in ("b", "c", "d"):
        annotator.open(other)
    assert annotator.open("a").start == "saved"  # skipped after the accept: the written mask is still the work
    np.testing.assert_array_equal(annotator.mask("a"), boxed)


def test_a_lost_or_unreadable_saved_mask_is_said_and_kept(folders):
    out = folders / "out"
    annotator = _annotator(folders)
    annotator.open("a")
    annotator.apply("a", "acc", 0, "accept")
    (out / "a.png").unlink()
    restarted = _annotator(folders)
    view = restarted.open("a")
    assert view.start == "refined" and "a.png was accepted but is no longer in" in view.notice
    (out / "b.png").write_bytes(b"not a png")  # something in OUT under b's name, never accepted here
    view = restarted.open("b")
    assert view.start == "refined" and "cannot read b.png" in view.notice and "history/" in view.notice
    restarted.apply("b", "acc", 0, "accept")
    assert (out / "history" / "b.v1.png").read_bytes() == b"not a png"  # kept, not overwritten
    assert io.read_mask(out / "b.png").sum() == 28 * 28
    cv2.imwrite(str(out / "c.png"), np.ones((5, 5), np.uint8))  # the wrong size
    assert "c.png is 5 x 5 px, the image 80 x 60 px" in restarted.open("c").notice


# -- the Host check on every loopback form ----------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "localhost", "LocalHost", "localhost.", "::1",
                                  "[::1]", "0:0:0:0:0:0:0:1"])
def test_loopback_forms_are_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "evil.example", "localhost.evil.example",
                                  "127.0.0.1.evil.example", "", "[::1", "fe80::1"])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_every_loopback_bind_keeps_the_host_check(folders, host):
    if host == "::1" and not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    annotator = _annotator(folders)
    with started(*listen(annotator, host, 0)) as address:
        client = Client(address)
        port = address[1]
        assert client.get("/api/images")[0] == 200  # the Host header http.client sends: the address itself
        for good in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
            assert client.get("/api/images", headers={"Host": good})[0] == 200, good
        for bad in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", f"[::1]:{port}x", "[::1"):
            status, error = client.get("/api/images", headers={"Host": bad})
            assert status == 400 and "does not name this machine's loopback" in error["error"], bad
        status, _ = client.get("/api/images/a/image", headers={"Host": "evil.example"})
        assert status == 400  # a rebinding page cannot read an image...
        status, _ = client.post("/api/images/a/open", {}, headers={"Host": "evil.example"})
        assert status == 400 and "a" not in annotator._open  # ...nor open, change or accept one
    assert not (folders / "out" / "a.png").exists()


def test_a_non_loopback_host_needs_allow_remote(folders, capsys):
    annotator = _annotator(folders)
    with pytest.raises(ValueError, match=r"host '0.0.0.0' is not a loopback address .*--allow-remote"):
        listen(annotator, "0.0.0.0", 0)
    with started(*listen(annotator, "0.0.0.0", 0, allow_remote=True)) as (_, port):
        assert Client(("127.0.0.1", port)).get("/api/images", headers={"Host": "annotate.lan"})[0] == 200
    out = folders / "elsewhere"
    args = ["annotate", str(folders / "images"), "--out", str(out), "--model", str(folders / "no-model"), "--port", "0"]
    assert main(args + ["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samedenhancer annotate: host '0.0.0.0' is not a loopback address") and "--allow-remote" in err
    assert not out.exists()  # refused before any work
    assert main(args + ["--host", "0.0.0.0", "--allow-remote"]) == 2  # then the missing model stops it
    assert "warning: listening on 0.0.0.0, not loopback" in capsys.readouterr().err
    assert main(args + ["--host", "::1"]) == 2
    assert "warning" not in capsys.readouterr().err


# -- hostile bodies ---------------------------------------------------------------------------------
_JSON = {"Content-Type": "application/json"}
_HOSTILE = [
    (b"[" * 6000 + b"]" * 6000, "nested too deeply"),
    (b'{"op": "n", "version": 0, "x": ' + b"[" * 6000 + b"]" * 6000 + b', "y": 1, "positive": true}', "nested too deeply"),
    (b'{"op": "n", "version": 0, "x": ' + b"7" * 5000 + b', "y": 1, "positive": true}', "an integer of 5000 digits"),
    (b'{"op": "n", "version": -' + b"9" * 4000 + b', "x": 1, "y": 1, "positive": true}', "an integer of 4000 digits"),
    (b'{"op": "n", "version": ' + b"1" * (MAX_DIGITS + 1) + b', "x": 1, "y": 1, "positive": true}', f"of {MAX_DIGITS + 1} digits"),
    (b'{"op": "n", "version": 0, "x": 1e5000, "y": 1, "positive": true}', "x must be a number, got inf"),
    (b'{"op": "n", "version": 0, "x": 1' + b"0" * 300 + b'.5, "y": 1, "positive": true}', "outside the image"),
    (b'{"op": "n", "version": 0, "x": 1, "y": 1, "positive": true, "\xff": 1}', "must be JSON"),
    (b'{"op": "\\ud800", "version": 0, "x": 1e400, "y": 1, "positive": true}', "x must be a number"),
]


@pytest.mark.parametrize("raw, message", _HOSTILE)
def test_hostile_bodies_are_400_with_a_clear_message_and_the_server_stays_up(folders, raw, message):
    annotator = _annotator(folders)
    with running(create_app(annotator)) as address:
        client = Client(address)
        client.post("/api/images/a/open", {})
        status, error = client.post("/api/images/a/click", raw=raw, headers=_JSON)
        assert status == 400 and message in error["error"]
        status, error = client.post("/api/images/b/open", raw=raw, headers=_JSON)
        assert status == 400
        assert _op(client, "a", "click", 0, "after", x=5, y=5, positive=True)[0] == 200
