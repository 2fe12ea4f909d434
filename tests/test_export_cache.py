"""The model cache as loads see it: the manifest's file hashes, damaged files (found, and for the
embedded model exported again), read-only and misplaced caches, and loads racing re-exports in
another process. Every test that writes a cache uses its own under ``tmp_path``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _export_helpers import trace_by_copying

from samedenhancer.cli import main
from samedenhancer.engines.export_folder import MARKER, file_record, sha256_file
from samedenhancer.engines.manifest import MANIFEST_FILE, DamagedExportError, Manifest, StaleExportError
from samedenhancer.registry import ModelMissingError, load_model


def _copy(litemedsam_dir, folder):
    shutil.copytree(litemedsam_dir, folder, ignore=shutil.ignore_patterns("trt_cache"))
    return folder


def _flip_a_byte(path, at=None):
    """Change one byte in the middle of ``path`` in place (same size)."""
    with open(path, "r+b") as handle:
        handle.seek(at if at is not None else path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _demo(model, tmp_path, capsys):
    """``samedenhancer demo --model MODEL``: (exit code, stderr)."""
    code = main(["demo", "--model", str(model), "--out", str(tmp_path / "figure.png")])
    return code, capsys.readouterr().err


def test_the_manifest_records_each_model_files_size_and_hash(litemedsam_dir):
    manifest = Manifest.load(litemedsam_dir)
    assert set(manifest.file_hashes) == set(manifest.files.values()) == {"encoder.onnx", "decoder.onnx"}
    for name, record in manifest.file_hashes.items():
        assert record == {"sha256": sha256_file(litemedsam_dir / name), "bytes": (litemedsam_dir / name).stat().st_size}
    assert json.loads((litemedsam_dir / MANIFEST_FILE).read_text())["file_hashes"] == manifest.file_hashes
    assert (litemedsam_dir / MARKER).is_file()


def test_the_identity_names_the_files_and_the_preprocessing(litemedsam_dir):
    manifest = Manifest.load(litemedsam_dir)
    identity = manifest.identity
    assert len(identity) == 64 and int(identity, 16) >= 0
    assert Manifest.load(litemedsam_dir).identity == identity  # stable
    doc = manifest.raw
    other_files = {**doc, "file_hashes": {**doc["file_hashes"], "encoder.onnx": {"sha256": "0" * 64, "bytes": 1}}}
    other_preprocess = {**doc, "preprocess": {**doc["preprocess"], "interpolation": "area_down_linear_up"}}
    renamed = {**doc, "name": "copy", "description": "the same files under another name"}
    assert Manifest.from_dict(other_files, litemedsam_dir).identity != identity
    assert Manifest.from_dict(other_preprocess, litemedsam_dir).identity != identity
    assert Manifest.from_dict(renamed, litemedsam_dir).identity == identity  # what it computes, not what it is called
    static = Manifest.from_dict({k: v for k, v in doc.items() if k != "file_hashes"})
    assert static.identity is None and static.file_hashes == {}


def test_a_byte_changed_in_a_model_file_is_found_at_load(litemedsam_dir, tmp_path, capsys):
    folder = _copy(litemedsam_dir, tmp_path / "model")
    _flip_a_byte(folder / "encoder.onnx")
    with pytest.raises(DamagedExportError, match=r"encoder.onnx is damaged: its SHA-256 differs") as error:
        load_model(folder)
    assert f"--out {folder}" in str(error.value) and "samedenhancer export litemedsam" in str(error.value)
    code, err = _demo(folder, tmp_path, capsys)
    assert code == 2 and err.startswith("samedenhancer demo: ") and "encoder.onnx is damaged" in err
    assert not (tmp_path / "figure.png").exists()


def test_a_missing_or_empty_model_file_is_a_clear_error_from_the_api_and_the_cli(litemedsam_dir, tmp_path, capsys):
    folder = _copy(litemedsam_dir, tmp_path / "model")
    size = (folder / "encoder.onnx").stat().st_size
    (folder / "encoder.onnx").write_bytes(b"")
    with pytest.raises(DamagedExportError, match=rf"encoder.onnx is damaged: 0 bytes where the export wrote {size}"):
        load_model(folder)
    code, err = _demo(folder, tmp_path, capsys)
    assert code == 2 and "samedenhancer demo: " in err and "0 bytes where the export wrote" in err
    assert f"re-run `samedenhancer export litemedsam --out {folder}`" in err  # the bundled weights: no --checkpoint
    (folder / "decoder.onnx").unlink()
    (folder / "encoder.onnx").write_bytes((litemedsam_dir / "encoder.onnx").read_bytes())
    with pytest.raises(DamagedExportError, match=r"decoder.onnx cannot be read \(No such file or directory\)"):
        load_model(folder)


def test_a_manifest_without_file_hashes_is_stale_and_says_which_command_remakes_it(litemedsam_dir, tmp_path):
    folder = _copy(litemedsam_dir, tmp_path / "model")
    doc = json.loads((folder / MANIFEST_FILE).read_text())
    doc.pop("file_hashes")
    (folder / MANIFEST_FILE).write_text(json.dumps(doc))
    with pytest.raises(DamagedExportError, match=r"records no size and hash of \['decoder.onnx', 'encoder.onnx'\]"):
        load_model(folder)
    (folder / MANIFEST_FILE).write_text(json.dumps({**doc, "schema": 2}))  # an export made before the hashes
    with pytest.raises(StaleExportError, match=rf"exported with schema 2, this runtime needs 3: re-run `samedenhancer export "
                                               rf"litemedsam .*--out {folder}`"):
        load_model(folder)


def test_each_version_of_a_file_is_hashed_once_per_process(litemedsam_dir, tmp_path):
    folder = _copy(litemedsam_dir, tmp_path / "model")
    path = folder / "decoder.onnx"
    first = file_record(path)
    with open(path, "r+b") as handle:  # rewritten with other bytes and its old modification time
        stat = path.stat()
        handle.write(b"\x00" * 8)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_record(path) == first  # same path, size, mtime and inode: the hash is not read again
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert file_record(path)["sha256"] == sha256_file(path) != first["sha256"]


@pytest.mark.export
def test_a_damaged_embedded_model_is_exported_again_on_first_use(litemedsam_dir, tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="exporting needs the export extra (torch)")
    exported = trace_by_copying([litemedsam_dir], monkeypatch.setattr)
    cache = tmp_path / "cache"
    folder = _copy(litemedsam_dir, cache / "litemedsam")
    recorded = Manifest.load(folder).file_hashes
    _flip_a_byte(folder / "decoder.onnx")
    monkeypatch.setenv("SAMEDENHANCER_CACHE", str(cache))
    with pytest.warns(RuntimeWarning, match=r"the cached litemedsam export is damaged, exporting it again \(.*decoder.onnx"):
        model = load_model("litemedsam")
    assert model.manifest.file_hashes == recorded and [f.parent for f in exported] == [cache]  # one export, staged in the cache
    assert sha256_file(folder / "decoder.onnx") == recorded["decoder.onnx"]["sha256"]
    assert sorted(p.name for p in cache.iterdir()) == [".litemedsam.lock", "litemedsam"]


@contextlib.contextmanager
def _read_only(folder):
    """``folder`` read-only for this process: a read-only bind mount as root (whom permission bits
    do not stop), else its permission bits."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"running as root, and root cannot mount a read-only folder here: {bind.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_cache_holding_a_current_export_loads(litemedsam_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _copy(litemedsam_dir, cache / "litemedsam")
    monkeypatch.setenv("SAMEDENHANCER_CACHE", str(cache))
    with _read_only(cache):
        model = load_model("litemedsam")
        assert model.manifest.directory == cache / "litemedsam"
        assert sorted(p.name for p in cache.iterdir()) == ["litemedsam"]


@pytest.mark.parametrize("content", ["empty", "stale"])
def test_a_read_only_cache_that_needs_an_export_says_what_to_do(litemedsam_dir, tmp_path, monkeypatch, capsys, content):
    pytest.importorskip("torch", reason="without the export extra the message says to install it (tested elsewhere)")
    cache = tmp_path / "cache"
    cache.mkdir()
    if content == "stale":
        folder = _copy(litemedsam_dir, cache / "litemedsam")
        (folder / "encoder.onnx").write_bytes(b"")
    monkeypatch.setenv("SAMEDENHANCER_CACHE", str(cache))
    before = {p: p.stat().st_size for p in cache.rglob("*")}
    with _read_only(cache):
        with pytest.raises(ModelMissingError, match=rf"cannot export litemedsam into the model cache {cache / 'litemedsam'}: "
                                                    r".*(Read-only file system|Permission denied)") as error:
            with contextlib.ExitStack() as warned:
                if content == "stale":
                    warned.enter_context(pytest.warns(RuntimeWarning, match="damaged"))
                load_model("litemedsam")
        assert "Set SAMEDENHANCER_CACHE to a folder you can write" in str(error.value)
        with contextlib.ExitStack() as warned:
            if content == "stale":
                warned.enter_context(pytest.warns(RuntimeWarning, match="damaged"))
            code, err = _demo("litemedsam", tmp_path, capsys)
        assert code == 2 and err.startswith("samedenhancer demo: model missing: cannot export litemedsam")
    assert {p: p.stat().st_size for p in cache.rglob("*")} == before


def test_a_cache_path_that_is_a_file_says_what_to_do(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch", reason="without the export extra the message says to install it (tested elsewhere)")
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    monkeypatch.setenv("SAMEDENHANCER_CACHE", str(cache))
    with pytest.raises(ModelMissingError, match=rf"lies under {cache}, which is a file, not a folder.*Set SAMEDENHANCER_CACHE"):
        load_model("litemedsam")
    code, err = _demo("litemedsam", tmp_path, capsys)
    assert code == 2 and err.startswith("samedenhancer demo: model missing") and "which is a file" in err
    assert cache.read_text() == "not a folder"


def test_export_into_a_read_only_folder_is_a_clear_error(tmp_path, capsys):
    parent = tmp_path / "models"
    parent.mkdir()
    with _read_only(parent):
        assert main(["export", "litemedsam", "--out", str(parent / "lm")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samedenhancer export: ") and f"{parent} is not a writable folder" in err
    assert not any(parent.iterdir())


#: Exports litemedsam ROUNDS times into $SAMEDENHANCER_CACHE, copying the graphs of SOURCE_A,
#: SOURCE_B, SOURCE_A... in turn instead of tracing them.
_EXPORTER = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, sys.argv[1])
    from _export_helpers import trace_by_copying
    import samedenhancer.export as export_module
    import torch  # noqa: F401  (export reads its version: imported before the first round)

    rounds = int(sys.argv[2])
    trace_by_copying(sys.argv[3:], setattr)
    print("ready", flush=True)
    for i in range(rounds):
        export_module.export("litemedsam")
        print("published", i + 1, flush=True)
    """
)


def _variant(source, folder, name):
    """Copies of ``source``'s graphs into ``folder`` that compute the same but carry the metadata
    ``variant=name`` (other bytes, other hashes: a second generation to tell apart)."""
    onnx = pytest.importorskip("onnx", reason="the export extra (onnx)")
    folder.mkdir()
    for graph in ("encoder.onnx", "decoder.onnx"):
        model = onnx.load(str(source / graph))
        model.metadata_props.add(key="variant", value=name)
        onnx.save(model, str(folder / graph))
    return folder


@pytest.mark.export
def test_loads_racing_reexports_in_another_process_always_see_one_whole_export(litemedsam_dir, tmp_path):
    pytest.importorskip("torch", reason="exporting needs the export extra (torch)")
    cache = tmp_path / "cache"
    folder = _copy(litemedsam_dir, cache / "litemedsam")
    variant_b = _variant(litemedsam_dir, tmp_path / "b", "b")
    variant_of = {sha256_file(litemedsam_dir / "encoder.onnx"): "a", sha256_file(variant_b / "encoder.onnx"): "b"}
    rounds = 4
    exporter = subprocess.Popen([sys.executable, "-c", _EXPORTER, str(Path(__file__).parent), str(rounds), str(litemedsam_dir),
                                 str(variant_b)],
                                env=dict(os.environ, SAMEDENHANCER_CACHE=str(cache)), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    loads = []
    try:
        assert exporter.stdout.readline().strip() == "ready", exporter.stderr.read()
        while exporter.poll() is None or not loads:
            model = load_model(folder)
            graphs = [engine.session.get_modelmeta().custom_metadata_map.get("variant", "a")
                      for engine in (model.encoder, model.decoder)]
            loads.append((variant_of[model.manifest.file_hashes["encoder.onnx"]["sha256"]], *graphs))
    finally:
        out, err = exporter.communicate(timeout=120)
    assert exporter.returncode == 0, err
    assert out.split() == [word for i in range(1, rounds + 1) for word in ("published", str(i))]
    mixed = [load for load in loads if len(set(load)) > 1]
    assert not mixed, f"{len(mixed)} of {len(loads)} loads mixed two exports (manifest, encoder, decoder): {mixed}"
    assert sorted(p.name for p in cache.iterdir()) == [".litemedsam.lock", "litemedsam"]
    Manifest.load(folder).check_files()
