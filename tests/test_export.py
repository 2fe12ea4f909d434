"""Where an export goes: the output folder is checked before any work, only folders the exporter
made are ever replaced or removed, and a re-export replaces an earlier one whole.

Exports here trace no model (``_export_helpers.trace_by_copying``): the rest of ``export``
(staging, manifest, hashes, publishing) runs as it does for users.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from _export_helpers import trace_by_copying

from samedenhancer.cli import main
from samedenhancer.engines.export_folder import MARKER, sha256_file, write_marker
from samedenhancer.engines.manifest import MANIFEST_FILE, Manifest
from samedenhancer.export.publish import ABANDONED_AFTER_S, remove_abandoned_staging


def _snapshot(folder):
    """Every path under ``folder`` with its bytes (files) or ``None`` (folders)."""
    return {p.relative_to(folder): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _user_folder(path):
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("a user's work")
    (path / "scans").mkdir()
    (path / "scans" / "case1.png").write_bytes(b"\x89PNG not really")
    (path / "encoder.onnx").write_bytes(b"a user's own graph")
    return path


def test_an_out_folder_holding_user_files_is_refused_and_left_as_it_is(tmp_path, capsys):
    out = _user_folder(tmp_path / "mine")
    before = _snapshot(tmp_path)
    assert main(["export", "litemedsam", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samedenhancer export: ") and f"out {out} holds files that samedenhancer export did not write" in err
    assert "notes.txt, scans" in err and "give a new or empty folder" in err
    assert _snapshot(tmp_path) == before  # nothing written beside it either (no staging folder, no lock)


def test_out_dot_and_the_folders_holding_the_working_directory_are_refused(tmp_path, monkeypatch, capsys):
    work = tmp_path / "project" / "work"
    work.mkdir(parents=True)
    (work / "data.csv").write_text("1,2\n")
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    for out in (".", str(work), "..", str(tmp_path)):
        assert main(["export", "--out", out]) == 2
        assert "is the working directory or holds it" in capsys.readouterr().err
    (work / "data.csv").unlink()  # even an empty working directory is not replaced
    assert main(["export", "--out", "."]) == 2
    assert "working directory" in capsys.readouterr().err
    assert work.is_dir() and _snapshot(tmp_path) == {k: v for k, v in before.items() if k.name != "data.csv"}


def test_an_out_that_is_a_file_or_lies_under_one_is_refused(tmp_path, capsys):
    (tmp_path / "model.onnx").write_bytes(b"a file")
    assert main(["export", "--out", str(tmp_path / "model.onnx")]) == 2
    assert "out must be a folder, got the file" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "model.onnx" / "sub")]) == 2
    assert "which is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "model.onnx").read_bytes() == b"a file"


def test_only_marked_staging_folders_that_no_live_export_holds_are_removed(tmp_path):
    target = tmp_path / "litemedsam"
    foreign = tmp_path / ".litemedsam-x"  # the user's, named like a staging folder: no marker
    abandoned = tmp_path / ".litemedsam-abc123"  # a killed export's
    live = tmp_path / ".litemedsam-def456"  # a running export's (it holds its marker)
    young = tmp_path / ".litemedsam-ghi789"  # a killed export's, but too recent to be sure
    other = tmp_path / ".medsam2-xyz"  # another model's
    for folder in (foreign, abandoned, live, young, other):
        folder.mkdir()
        (folder / "encoder.onnx").write_bytes(b"half written")
    (foreign / "thesis.tex").write_text("months of work")
    os.close(write_marker(abandoned))
    os.close(write_marker(young))
    os.close(write_marker(other))
    held = write_marker(live)
    try:
        old = time.time() - 2 * ABANDONED_AFTER_S
        for folder in (foreign, abandoned, live, other):
            os.utime(folder, (old, old))
        remove_abandoned_staging(target)
        assert not abandoned.exists()
        assert (foreign / "thesis.tex").read_text() == "months of work"
        assert live.exists() and young.exists() and other.exists()
    finally:
        os.close(held)
    remove_abandoned_staging(target)
    assert not live.exists()  # its export ended


@pytest.fixture
def graphs_copied_from(litemedsam_dir, monkeypatch):
    """``export("litemedsam")`` copying the cached export's graphs instead of tracing them; the list
    of folders graphs were written into."""
    pytest.importorskip("torch", reason="export needs the export extra (torch)")
    return trace_by_copying([litemedsam_dir], monkeypatch.setattr)


@pytest.mark.export
def test_a_reexport_replaces_an_earlier_export_whole_and_leaves_nothing_beside_it(graphs_copied_from, litemedsam_dir, tmp_path):
    from samedenhancer.export import export
    from samedenhancer.registry import load_model

    out = tmp_path / "models" / "lm"
    assert export("litemedsam", out=out) == out
    first = Manifest.load(out)
    assert (out / MARKER).is_file() and first.file_hashes == {
        name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size} for name in ("decoder.onnx", "encoder.onnx")
    }
    (out / "trt_cache").mkdir()  # what ONNX Runtime's TensorRT provider writes at run time
    inode = (out / "encoder.onnx").stat().st_ino
    assert export("litemedsam", out=out) == out
    assert (out / "encoder.onnx").stat().st_ino != inode and not (out / "trt_cache").exists()
    assert Manifest.load(out).identity == first.identity
    assert sorted(p.name for p in out.parent.iterdir()) == [".lm.lock", "lm"]  # no staging or old folder left
    assert load_model(out).manifest.file_hashes == first.file_hashes
    (out / "notes.txt").write_text("mine")  # the user's file in an export folder: never replaced
    with pytest.raises(ValueError, match=r"holds files that samedenhancer export did not write \(notes.txt\)"):
        export("litemedsam", out=out)
    assert (out / "notes.txt").read_text() == "mine" and len(graphs_copied_from) == 2  # refused before any work


@pytest.mark.export
def test_an_export_made_before_the_marker_is_replaced_and_an_empty_folder_is_used(graphs_copied_from, litemedsam_dir, tmp_path):
    from samedenhancer.export import export

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("encoder.onnx", "decoder.onnx"):
        (earlier / name).write_bytes(b"old graph")
    doc = json.loads((litemedsam_dir / MANIFEST_FILE).read_text())
    (earlier / MANIFEST_FILE).write_text(json.dumps({**doc, "schema": 2, "file_hashes": None}))
    export("litemedsam", out=earlier)
    assert (earlier / MARKER).is_file() and Manifest.load(earlier).file_hashes["encoder.onnx"]["bytes"] > 1000
    lookalike = tmp_path / "lookalike"  # an export's file names, but no export manifest: not provably ours
    lookalike.mkdir()
    (lookalike / "encoder.onnx").write_bytes(b"someone's graph")
    with pytest.raises(ValueError, match="does not hold an export made by samedenhancer"):
        export("litemedsam", out=lookalike)
    assert (lookalike / "encoder.onnx").read_bytes() == b"someone's graph"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export("litemedsam", out=empty) == empty and (empty / MANIFEST_FILE).is_file()
