"""The embedding store's mechanics (``samedenhancer.embeddings``) with a deterministic stand-in for
the encoder: keys, safe reads of damaged and foreign entries, atomic writes under SIGKILL, two real
processes filling one store, least-recently-used eviction, refusing foreign folders, and never
writing outside the store. The real model through the Predictor: ``test_embeddings_predictor.py``."""

from __future__ import annotations

import doctest
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from samedenhancer import EmbeddingStore, embeddings, io
from samedenhancer.bench import datasets
from samedenhancer.embeddings import MARKER, STALE_PARTIAL_S, EmbeddingStoreWarning, _write_entry
from samedenhancer.engines import Manifest, static_manifest
from samedenhancer.io.atomic import PARTIAL_MARK
from samedenhancer.transforms import preprocess

MODEL = "0" * 64
OTHER_MODEL = "1" * 64
#: The stand-in encoder, as source: the subprocesses of the concurrency and kill tests run it too.
ENCODER = """
import numpy as np

def tensor(i, side=32):
    return np.random.default_rng(i).random((1, 3, side, side), dtype=np.float32)

def encode(tensor):
    base = np.tanh(tensor[0] * 3.0 - 1.0).astype(np.float32)
    return (np.repeat(base, 4, axis=0)[None], (base[:1] * 0.5)[None])
"""
namespace: dict = {}
exec(ENCODER, namespace)
tensor, encode = namespace["tensor"], namespace["encode"]


class Counting:
    """``encode`` of one tensor, counting calls."""

    def __init__(self, array):
        self.array, self.calls = array, 0

    def __call__(self):
        self.calls += 1
        return encode(self.array)


def entry_path(store: EmbeddingStore, identity: str, array) -> Path:
    key = store.key(identity, array)
    return store.path / key[:2] / f"{key}.npz"


def files_under(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_doctests():
    result = doctest.testmod(embeddings, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- opening a folder ---------------------------------------------------------------------------
def test_a_new_or_empty_folder_becomes_a_store_and_is_opened_again(tmp_path):
    store = EmbeddingStore(tmp_path / "new" / "store")
    assert (store.path / MARKER).is_file() and len(store) == 0
    (tmp_path / "empty").mkdir()
    assert (EmbeddingStore(tmp_path / "empty").path / MARKER).is_file()
    store.fetch(MODEL, tensor(0), Counting(tensor(0)))
    again = EmbeddingStore(str(tmp_path / "new" / "store"))
    assert len(again) == 1 and again.path == store.path


def test_a_foreign_folder_is_refused_and_left_untouched(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not an embedding")
    with pytest.raises(ValueError, match=r"is not an embedding store.*holiday\.jpg.*give an empty or new folder"):
        EmbeddingStore(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]
    file = tmp_path / "file.npz"
    file.write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        EmbeddingStore(file)


@pytest.mark.parametrize("marker, message", [
    ("{not json", "is damaged"),
    ('{"format": "something-else", "version": 1}', "does not describe"),
    ('{"format": "samedenhancer-embeddings", "version": 99}', "format version 99"),
])
def test_a_damaged_or_newer_marker_is_refused(tmp_path, marker, message):
    (tmp_path / MARKER).write_text(marker)
    with pytest.raises(ValueError, match=message):
        EmbeddingStore(tmp_path)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"path": 3}, TypeError, "path must be a folder path"),
    ({"max_gb": "1"}, TypeError, "max_gb"),
    ({"max_gb": True}, TypeError, "max_gb"),
    ({"max_gb": 0}, ValueError, "max_gb"),
    ({"max_gb": float("nan")}, ValueError, "max_gb"),
    ({"fp16": 1}, TypeError, "fp16 must be True or False"),
])
def test_bad_arguments_name_the_parameter(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        EmbeddingStore(**{"path": tmp_path / "s", **kwargs})


def test_bad_fetch_arguments_name_the_parameter(tmp_path):
    store = EmbeddingStore(tmp_path / "s")
    with pytest.raises(TypeError, match="identity must be a non-empty str"):
        store.fetch("", tensor(0), Counting(tensor(0)))
    with pytest.raises(TypeError, match="tensor must be a numpy array"):
        store.fetch(MODEL, tensor(0).tolist(), Counting(tensor(0)))


# -- hits, misses and keys ----------------------------------------------------------------------
def test_a_miss_encodes_once_and_a_hit_returns_the_same_read_only_bytes(tmp_path):
    store = EmbeddingStore(tmp_path / "s")
    counting = Counting(tensor(0))
    first = store.fetch(MODEL, tensor(0), counting)
    second = store.fetch(MODEL, tensor(0), counting)
    assert counting.calls == 1
    assert tuple(store.stats) == (1, 1, 1, 0, 0)
    for a, b, expected in zip(first, second, encode(tensor(0))):
        assert a.dtype == np.float32 and not a.flags.writeable and not b.flags.writeable
        assert a.tobytes() == b.tobytes() == expected.tobytes()


def test_device_outputs_are_stored_as_host_arrays(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    store = EmbeddingStore(tmp_path / "s")
    arrays = encode(tensor(0))  # an OrtValue made from numpy borrows its memory: keep it alive
    on_device = lambda: tuple(onnxruntime.OrtValue.ortvalue_from_numpy(a) for a in arrays)  # noqa: E731
    got = store.fetch(MODEL, tensor(0), on_device)
    assert all(isinstance(a, np.ndarray) for a in got)
    assert [a.tobytes() for a in got] == [a.tobytes() for a in encode(tensor(0))]
    assert store.fetch(MODEL, tensor(0), on_device)[0].tobytes() == got[0].tobytes() and store.stats.hits == 1


def test_fp16_stores_half_the_bytes_and_returns_the_same_rounding_on_every_run(tmp_path):
    full, half = EmbeddingStore(tmp_path / "full"), EmbeddingStore(tmp_path / "half", fp16=True)
    first = half.fetch(MODEL, tensor(0), Counting(tensor(0)))
    again = half.fetch(MODEL, tensor(0), Counting(tensor(0)))
    full.fetch(MODEL, tensor(0), Counting(tensor(0)))
    rounded = [a.astype(np.float16).astype(np.float32) for a in encode(tensor(0))]
    assert [a.tobytes() for a in first] == [a.tobytes() for a in again] == [a.tobytes() for a in rounded]
    assert first[0].dtype == np.float32
    assert half.size_bytes() < 0.6 * full.size_bytes()
    assert half.key(MODEL, tensor(0)) != full.key(MODEL, tensor(0))


def test_the_key_follows_the_preprocessed_content_not_the_file_name(tmp_path, data_root, monkeypatch):
    sample = datasets.samples("kvasir", data_root)[0]
    renamed = tmp_path / "renamed-copy.jpg"
    shutil.copyfile(sample.image_path, renamed)
    manifest = Manifest.from_dict(static_manifest("litemedsam"))
    store = EmbeddingStore(tmp_path / "s")
    original = preprocess(io.read_image(sample.image_path), manifest)[0]
    copy = preprocess(io.read_image(renamed), manifest)[0]
    assert store.key(MODEL, original) == store.key(MODEL, copy)
    edited = io.read_image(renamed)
    edited[10, 10] = 255 - edited[10, 10]
    assert store.key(MODEL, preprocess(edited, manifest)[0]) != store.key(MODEL, original)
    assert store.key(OTHER_MODEL, original) != store.key(MODEL, original)
    key = store.key(MODEL, original)
    monkeypatch.setattr("samedenhancer.transforms.PREPROCESS_VERSION", 2)
    assert store.key(MODEL, original) != key


# -- damaged and foreign entries ------------------------------------------------------------------
class Payload:
    """Unpickling it would create ``flag``: proves a store never unpickles."""

    def __init__(self, flag: Path):
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (self.flag,))


def _damage(kind: str, path: Path, store: EmbeddingStore, tmp_path: Path, monkeypatch) -> None:
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "flipped byte":
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(Payload(tmp_path / "unpickled")))
    elif kind == "pickled npz member":
        with open(path, "wb") as handle:
            np.savez(handle, meta=np.array([{"key": "x"}], dtype=object))
    elif kind == "another input":
        shutil.copyfile(entry_path(store, MODEL, tensor(1)), path)
    elif kind == "another model":
        shutil.copyfile(entry_path(store, OTHER_MODEL, tensor(0)), path)
    elif kind == "another preprocessing version":
        with monkeypatch.context() as patched:
            patched.setattr("samedenhancer.transforms.PREPROCESS_VERSION", 2)
            newer = EmbeddingStore(tmp_path / "newer")
            newer.fetch(MODEL, tensor(0), Counting(tensor(0)))
            shutil.copyfile(entry_path(newer, MODEL, tensor(0)), path)
    elif kind == "another format version":
        key = store.key(MODEL, tensor(0))
        _write_entry(os.fspath(path), {"format": "samedenhancer-embeddings", "version": 2, "key": key, "count": 0}, [])
    elif kind == "checksum":
        with np.load(path) as archive:
            import json

            meta = json.loads(archive["meta"].tobytes())
        tampered = [a + 1.0 for a in encode(tensor(0))]
        _write_entry(os.fspath(path), meta, tampered)
    elif kind == "link out of the store":
        outside = tmp_path / "outside.npz"
        shutil.copyfile(path, outside)
        path.unlink()
        path.symlink_to(outside)


DAMAGE = ("truncated", "empty", "flipped byte", "garbage", "pickle", "pickled npz member", "another input",
          "another model", "another preprocessing version", "another format version", "checksum", "link out of the store")


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_or_foreign_entry_is_encoded_again_with_a_warning(tmp_path, kind, monkeypatch):
    store = EmbeddingStore(tmp_path / "s")
    for identity, i in ((MODEL, 0), (MODEL, 1), (OTHER_MODEL, 0)):
        store.fetch(identity, tensor(i), Counting(tensor(i)))
    path = entry_path(store, MODEL, tensor(0))
    _damage(kind, path, store, tmp_path, monkeypatch)
    outside = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    counting = Counting(tensor(0))
    with pytest.warns(EmbeddingStoreWarning, match="cannot be trusted.*encoding the image again"):
        got = store.fetch(MODEL, tensor(0), counting)
    assert counting.calls == 1 and store.stats.rejected == 1
    assert [a.tobytes() for a in got] == [a.tobytes() for a in encode(tensor(0))]
    assert not (tmp_path / "unpickled").exists()
    assert path.is_file() and not path.is_symlink()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == outside
    repaired = store.fetch(MODEL, tensor(0), counting)  # a warning now would fail the test (strict mode)
    assert counting.calls == 1 and repaired[0].tobytes() == got[0].tobytes()


# -- atomic writes and several processes --------------------------------------------------------------
KILLED_WRITER = ENCODER + """
import os, signal, sys
import numpy as np
from samedenhancer.embeddings import EmbeddingStore

real = np.lib.format.write_array

def dying(member, array, **options):
    if array.dtype == np.float32:  # the first feature, after meta.npy
        member.write(b"half an embedding" * 100)
        member.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(member, array, **options)

np.lib.format.write_array = dying
EmbeddingStore(sys.argv[1]).fetch({model!r}, tensor(0), lambda: encode(tensor(0)))
"""


def test_a_killed_writer_leaves_no_half_entry(tmp_path):
    store = EmbeddingStore(tmp_path / "s")
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER.format(model=MODEL), os.fspath(store.path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    partials = [p for p in store.path.rglob("*") if PARTIAL_MARK in p.name]
    assert len(partials) == 1  # the kill landed inside the write
    assert len(store) == 0 and not entry_path(store, MODEL, tensor(0)).exists()
    counting = Counting(tensor(0))
    got = store.fetch(MODEL, tensor(0), counting)  # a plain miss: no warning
    assert counting.calls == 1 and got[0].tobytes() == encode(tensor(0))[0].tobytes() and len(store) == 1
    old = (partials[0].stat().st_mtime_ns - int((STALE_PARTIAL_S + 60) * 1e9))
    os.utime(partials[0], ns=(old, old))
    bounded = EmbeddingStore(store.path, max_gb=1)
    bounded.fetch(MODEL, tensor(1), Counting(tensor(1)))  # the first write of a bounded store lists the folder
    assert not partials[0].exists()


FILLER = ENCODER + """
import sys, time
from samedenhancer.embeddings import EmbeddingStore

store = EmbeddingStore(sys.argv[1])
order = list(range(int(sys.argv[2])))
if sys.argv[3] == "reverse":
    order.reverse()
for i in order:
    time.sleep(0.002)
    store.fetch({model!r}, tensor(i), lambda: encode(tensor(i)))
print(tuple(store.stats))
"""


def test_two_processes_filling_one_store_give_the_same_bytes_as_one(tmp_path):
    command = [sys.executable, "-W", "error", "-c", FILLER.format(model=MODEL)]
    alone = subprocess.run([*command, os.fspath(tmp_path / "alone"), "30", "forward"], capture_output=True, text=True,
                           timeout=300)
    assert alone.returncode == 0, alone.stderr
    shared = os.fspath(tmp_path / "shared")  # both make this new store at once
    runs = [subprocess.Popen([*command, shared, "30", order], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for order in ("forward", "reverse")]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0 and err == "", err
    assert sum(eval(out)[1] for out, _ in outputs) >= 30  # every image was encoded by one or both
    alone_files, shared_files = files_under(tmp_path / "alone"), files_under(tmp_path / "shared")
    assert len(alone_files) == 31 and alone_files == shared_files


def test_a_pickled_store_reopens_its_folder_in_another_process(tmp_path):
    store = EmbeddingStore(tmp_path / "s", max_gb=2.5, fp16=True)
    store.fetch(MODEL, tensor(0), Counting(tensor(0)))
    copy = pickle.loads(pickle.dumps(store))
    assert (copy.path, copy.max_gb, copy.fp16) == (store.path, 2.5, True) and repr(copy) == repr(store)
    counting = Counting(tensor(0))
    copy.fetch(MODEL, tensor(0), counting)
    assert counting.calls == 0 and copy.stats.hits == 1


# -- size limit ---------------------------------------------------------------------------------
def test_eviction_removes_the_least_recently_used_and_keeps_the_bound(tmp_path):
    probe = EmbeddingStore(tmp_path / "probe")
    probe.fetch(MODEL, tensor(0, 64), Counting(tensor(0, 64)))
    entry_bytes = probe.size_bytes()
    limit = 4.5 * entry_bytes
    store = EmbeddingStore(tmp_path / "s", max_gb=limit / 1e9)
    for i in range(4):
        store.fetch(MODEL, tensor(i, 64), Counting(tensor(i, 64)))
    store.fetch(MODEL, tensor(0, 64), Counting(tensor(0, 64)))  # 0 is now the most recently used
    kept = lambda: {i for i in range(6) if entry_path(store, MODEL, tensor(i, 64)).exists()}  # noqa: E731
    assert kept() == {0, 1, 2, 3}
    store.fetch(MODEL, tensor(4, 64), Counting(tensor(4, 64)))
    assert kept() == {0, 2, 3, 4} and store.size_bytes() <= limit
    store.fetch(MODEL, tensor(5, 64), Counting(tensor(5, 64)))
    assert kept() == {0, 3, 4, 5} and store.size_bytes() <= limit
    assert store.stats.evicted == 2 and store.stats.writes == 6


def test_a_limit_smaller_than_one_embedding_stores_nothing_and_says_so(tmp_path):
    store = EmbeddingStore(tmp_path / "s", max_gb=1e-9)
    counting = Counting(tensor(0))
    with pytest.warns(EmbeddingStoreWarning, match="holds no embedding of this model"):
        got = store.fetch(MODEL, tensor(0), counting)
    assert got[0].tobytes() == encode(tensor(0))[0].tobytes() and len(store) == 0
    store.fetch(MODEL, tensor(1), Counting(tensor(1)))  # said once
    assert store.stats.misses == 2


# -- never outside the folder ---------------------------------------------------------------------
def test_a_link_out_of_the_store_is_never_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store = EmbeddingStore(tmp_path / "s")
    key = store.key(MODEL, tensor(0))
    (store.path / key[:2]).symlink_to(outside, target_is_directory=True)
    counting = Counting(tensor(0))
    with pytest.warns(EmbeddingStoreWarning, match="leads outside the store"):
        got = store.fetch(MODEL, tensor(0), counting)
    assert got[0].tobytes() == encode(tensor(0))[0].tobytes() and list(outside.iterdir()) == []


def test_eviction_never_deletes_through_a_link_out_of_the_store(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {f"{c * 64}.npz": np.random.default_rng(0).bytes(100_000) for c in "ab"}
    for name, data in victims.items():
        (outside / name).write_bytes(data)
    store = EmbeddingStore(tmp_path / "s", max_gb=1e-4)  # 100 kB: every write evicts
    (store.path / "aa").symlink_to(outside, target_is_directory=True)
    for i in range(4):
        store.fetch(MODEL, tensor(i), Counting(tensor(i)))
    assert store.stats.evicted > 0
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == victims


def test_a_whole_workload_writes_only_inside_the_store(tmp_path):
    bystander = tmp_path / "bystander.txt"
    bystander.write_text("mine")
    before = {p for p in tmp_path.rglob("*")}
    store = EmbeddingStore(tmp_path / "s", max_gb=1.5e-4)  # room for two entries
    for i in (0, 1, 2, 0, 3, 1):
        store.fetch(MODEL, tensor(i), Counting(tensor(i)))
    entry_path(store, MODEL, tensor(1)).write_bytes(b"damaged")
    with pytest.warns(EmbeddingStoreWarning):
        store.fetch(MODEL, tensor(1), Counting(tensor(1)))
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p.resolve().is_relative_to(store.path) for p in created)
    assert bystander.read_text() == "mine"
