"""The embedding store: a folder of image-encoder outputs, so that an image is encoded once and
every later call, process or command that needs it reads it back.

An entry is the encoder's output for one model input. Its key is a SHA-256 over the model's
identity (``Manifest.identity``: the exported files' hashes and the manifest's preprocessing),
:data:`~samedenhancer.transforms.PREPROCESS_VERSION`, the stored dtype and the preprocessed input
itself, never a file name: a renamed or copied image is found, an edited one is not, and a store
filled by another model or another version of the preprocessing is never used. A volume is stored
slice by slice (each slice is an image).

On disk::

    STORE/
      samedenhancer-embeddings.json    the marker: only a folder holding it is opened as a store
      3f/3fa2...e9.npz                 one entry per key, in folders named by its first two digits

An entry is an uncompressed ``.npz`` (NumPy's zip of ``.npy`` files, read with
``allow_pickle=False``): ``f0.npy``, ``f1.npy``, ... the encoder outputs in the manifest's order and
``meta.npy``, UTF-8 JSON with the key, the model identity, the preprocessing version and a SHA-256
of the outputs; a read checks the key and the checksum, and an entry that fails (truncated, damaged,
written for another key) is encoded again with a warning. The zip carries fixed timestamps, so one
input gives the same bytes in every process; each entry goes to a temporary file that is then
renamed (:func:`samedenhancer.io.write_atomically`), so a killed writer never leaves a half entry
and processes or Ray actors filling one store at once need no lock. Recency is an entry's
modification time, set on every write and every hit, so ``max_gb`` evicts the least recently used
entries whichever process used them. Entry bytes per model and the effect of fp16:
``benchmarks/EMBEDDINGS.md``.

Not zarr (micro-sam's choice, one container per image): an embedding is always read whole, so
chunking buys nothing, and a zarr array is several files that cannot be replaced in one rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from . import transforms
from .io import write_atomically, write_text_atomically
from .io.atomic import PARTIAL_MARK
from .validation import choice, flag, number

__all__ = ["EmbeddingStore", "EmbeddingStoreWarning", "StoreStats", "check_store"]

#: The file that makes a folder an embedding store.
MARKER = "samedenhancer-embeddings.json"
#: What the marker and every entry say they are, and the version of this layout.
FORMAT, FORMAT_VERSION = "samedenhancer-embeddings", 1
#: Eviction removes least recently used entries until the store holds at most this share of
#: ``max_gb``, so that the folder is not listed again on every write once it is full.
LOW_WATER = 0.9
#: A temporary entry file older than this (seconds) was left by a killed writer; eviction removes it.
STALE_PARTIAL_S = 3600
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, zlib.error, MemoryError)


class EmbeddingStoreWarning(UserWarning):
    """An image's embedding could not be read from or written to the store; it was encoded."""


class StoreStats(NamedTuple):
    """What one :class:`EmbeddingStore` object did in this process."""

    hits: int  # embeddings read back (no encoder call)
    misses: int  # embeddings encoded (one encoder call each)
    writes: int  # entries written
    evicted: int  # entries removed to keep under max_gb
    rejected: int  # entries found damaged or foreign (encoded again, with a warning)


class _Untrusted(ValueError):
    """Why an entry on disk is not used."""


def _checksum(arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode("ascii"))
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _write_entry(path: str, meta: dict, arrays: Sequence[np.ndarray]) -> None:
    """An uncompressed ``.npz`` whose bytes depend only on ``meta`` and ``arrays`` (fixed zip times)."""
    text = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), np.uint8)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in (("meta", text), *((f"f{i}", a) for i, a in enumerate(arrays))):
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _read_entry(path: Path, key: str, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The arrays of the entry at ``path``; raises (``_UNREADABLE``) unless it is whole and was
    written for ``key`` in ``dtype``."""
    if path.is_symlink():
        raise _Untrusted("it is a symbolic link")
    with open(path, "rb") as handle:  # np.load leaves its own handle open when the zip is truncated
        archive = np.load(handle, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _Untrusted("it is not an .npz archive")
        with archive:
            meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise _Untrusted(f"not a {FORMAT} entry of version {FORMAT_VERSION}")
            if meta.get("key") != key:
                raise _Untrusted(f"it was written for another input or model (key {str(meta.get('key'))[:12]}..., "
                                 f"model {str(meta.get('model'))[:12]}...)")
            arrays = tuple(archive[f"f{i}"] for i in range(int(meta["count"])))
    if any(array.dtype != dtype for array in arrays):
        raise _Untrusted(f"its arrays are not {dtype}")
    if _checksum(arrays) != meta.get("sha256"):
        raise _Untrusted("its checksum does not match its contents")
    return arrays


def _host(value) -> np.ndarray:
    """An encoder output as a numpy array (a device ``OrtValue`` is copied to the host)."""
    return value if isinstance(value, np.ndarray) else np.asarray(value.numpy())


def _check_marker(marker: Path) -> None:
    try:
        document = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{marker} is damaged ({type(exc).__name__}: {exc}): not an embedding store this "
                         "version can open; give another folder") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{marker} does not describe a {FORMAT} folder; give another folder")
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"{marker.parent} is an embedding store of format version {document.get('version')!r}; "
                         f"this samedenhancer reads version {FORMAT_VERSION}: give another folder")


def _open_root(path: Path) -> Path:
    """``path`` made (or checked to be) an embedding store; returns it resolved."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"embeddings path {path} is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    root = path.resolve()
    names = [item.name for item in root.iterdir()]
    if MARKER in names:
        _check_marker(root / MARKER)
        return root
    # another process making the same new store may be writing the marker right now
    others = sorted(name for name in names if not name.startswith(f".{MARKER}{PARTIAL_MARK}"))
    if others:
        raise ValueError(f"embeddings path {root} is not an embedding store: it holds {len(others)} item(s) "
                         f"({others[0]!r}, ...) and no {MARKER}; give an empty or new folder")
    write_text_atomically(root / MARKER, json.dumps({"format": FORMAT, "version": FORMAT_VERSION}) + "\n")
    return root


def check_store(embeddings) -> None:
    """Raise ``TypeError`` unless ``embeddings`` is an :class:`EmbeddingStore` or ``None`` (what
    every ``embeddings=`` keyword takes)."""
    if embeddings is not None and not isinstance(embeddings, EmbeddingStore):
        raise TypeError(f"embeddings must be a samedenhancer.EmbeddingStore or None, got {type(embeddings).__name__}")


class EmbeddingStore:
    """A folder of per-image encoder outputs shared by calls, processes and commands.

    Give it to a :class:`~samedenhancer.Predictor` (``Predictor(model, embeddings=store)``) and every
    encode looks the preprocessed image up first: a hit costs no encoder call; a miss is encoded
    and stored.

    Parameters
    ----------
    path : str or path
        The store's folder: a new or empty folder becomes a store; a folder made by
        ``EmbeddingStore`` is opened; any other folder is refused (``ValueError``), so that
        nothing else is ever written into or deleted from it.
    max_gb : float, optional
        Size limit in gigabytes (1e9 bytes) of the entries; when exceeded, the least recently used
        entries are deleted (down to ``LOW_WATER`` of the limit). ``None``: unbounded.
    fp16 : bool
        Store the outputs as float16 (half the disk; the decoder then sees float16-rounded
        embeddings, also on the first run, so every run gives the same masks). Off by default:
        results are then those of a run without a store. Entries of the two kinds never mix.
    write_errors : {"warn", "raise"}
        What an entry that cannot be written does (a full disk, a read-only store, an entry larger
        than ``max_gb``): ``"warn"`` (once) and go on without storing it, for commands whose outputs
        are elsewhere; ``"raise"`` the error, for ``samedenhancer embed``, whose output is the store.

    Notes
    -----
    Safe with several threads, processes and Ray actors on one folder (a pickled store reopens its
    folder). ``stats`` counts what this object did in this process.

    Examples
    --------
    With a model: ``Enhancer(Predictor("litemedsam", embeddings=EmbeddingStore(folder)))``. The
    store alone, with a stand-in for the encoder:

    >>> import tempfile, numpy as np
    >>> from samedenhancer import EmbeddingStore
    >>> folder = tempfile.TemporaryDirectory()
    >>> store = EmbeddingStore(folder.name, max_gb=1)
    >>> tensor = np.zeros((1, 3, 8, 8), np.float32)  # a preprocessed image
    >>> _ = store.fetch("toy-model", tensor, lambda: (tensor + 1,))  # encoded, then stored
    >>> store.fetch("toy-model", tensor, lambda: 1 / 0)[0].shape  # read back: no encoder call
    (1, 3, 8, 8)
    >>> store.stats.hits, store.stats.misses
    (1, 1)
    >>> folder.cleanup()
    """

    def __init__(self, path: str | os.PathLike, max_gb: float | None = None, *, fp16: bool = False,
                 write_errors: str = "warn") -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a folder path (str or os.PathLike), got {type(path).__name__}")
        self.max_gb = None if max_gb is None else number(max_gb, "max_gb (gigabytes)", above=0)
        self.fp16 = flag(fp16, "fp16")
        self.write_errors = choice(write_errors, "write_errors", ("warn", "raise"))
        self.path = _open_root(Path(path))
        self._max_bytes = None if self.max_gb is None else int(self.max_gb * 1e9)
        self._dtype = np.dtype(np.float16 if self.fp16 else np.float32)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(StoreStats._fields, 0)
        self._size: int | None = None  # entry bytes as last listed, plus what this object wrote since
        self._last_stamp = 0
        self._warned: set[str] = set()

    def __getstate__(self) -> dict:
        return {"path": os.fspath(self.path), "max_gb": self.max_gb, "fp16": self.fp16, "write_errors": self.write_errors}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"EmbeddingStore({os.fspath(self.path)!r}, max_gb={self.max_gb!r}, fp16={self.fp16!r})"

    @property
    def stats(self) -> StoreStats:
        """Hits, misses, writes, evictions and rejected entries of this object so far."""
        with self._lock:
            return StoreStats(**self._counts)

    def key(self, identity: str, tensor: np.ndarray) -> str:
        """The entry name (SHA-256 hex) of the model input ``tensor`` for the model ``identity``."""
        digest = hashlib.sha256(json.dumps({
            "format": FORMAT_VERSION, "model": identity, "preprocess": transforms.PREPROCESS_VERSION,
            "stored": self._dtype.name, "shape": list(tensor.shape), "dtype": tensor.dtype.str,
        }, sort_keys=True).encode("utf-8"))
        digest.update(np.ascontiguousarray(tensor).data)
        return digest.hexdigest()

    def fetch(self, identity: str, tensor: np.ndarray, encode: Callable[[], Sequence]) -> tuple[np.ndarray, ...]:
        """The encoder outputs for ``tensor``: read from the store, or ``encode()`` and stored.

        Parameters
        ----------
        identity : str
            ``Manifest.identity`` of the model whose encoder ``encode`` runs.
        tensor : (1, 3, S, S) float32
            The preprocessed image (``Predictor.prepare(image).tensor``).
        encode : callable
            Runs the encoder on ``tensor``: a sequence of arrays (or device ``OrtValue`` objects).

        Returns
        -------
        tuple of read-only float32 arrays
            The same bytes whether read or just encoded (with ``fp16``, float16-rounded both times).
        """
        if not isinstance(identity, str) or not identity:
            raise TypeError(f"identity must be a non-empty str (Manifest.identity), got {identity!r}")
        if not isinstance(tensor, np.ndarray):
            raise TypeError(f"tensor must be a numpy array (the preprocessed image), got {type(tensor).__name__}")
        key = self.key(identity, tensor)
        path = self.path / key[:2] / f"{key}.npz"
        try:
            arrays = _read_entry(path, key, self._dtype)
        except FileNotFoundError:
            arrays = None
        except _UNREADABLE as exc:
            arrays = None
            self._count("rejected")
            warnings.warn(f"embedding store entry {path} cannot be trusted ({type(exc).__name__}: {exc}); "
                          "encoding the image again", EmbeddingStoreWarning, stacklevel=2)
        if arrays is not None:
            self._count("hits")
            self._stamp(path)
        else:
            self._count("misses")
            arrays = tuple(np.ascontiguousarray(_host(value), dtype=self._dtype) for value in encode())
            self._store(path, {"format": FORMAT, "version": FORMAT_VERSION, "key": key, "model": identity,
                               "preprocess": transforms.PREPROCESS_VERSION, "count": len(arrays),
                               "sha256": _checksum(arrays)}, arrays)
        features = tuple(np.asarray(array, dtype=np.float32) for array in arrays)
        for feature in features:
            feature.setflags(write=False)
        return features

    def size_bytes(self) -> int:
        """Bytes of the entries on disk now (all processes'), listed afresh."""
        return sum(size for _, size, _ in self._entries())

    def __len__(self) -> int:
        return sum(1 for _ in self._entries())

    # -- writing and eviction -------------------------------------------------------------------
    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _warn_once(self, topic: str, message: str) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        warnings.warn(message, EmbeddingStoreWarning, stacklevel=4)

    def _stamp(self, path: Path) -> None:
        """Mark ``path`` as used now (strictly later than this object's previous mark: the
        filesystem's own clock is too coarse to order quick successive writes)."""
        with self._lock:
            self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
            stamp = self._last_stamp
        try:
            os.utime(path, ns=(stamp, stamp))
        except OSError:
            pass  # a read-only store, or evicted by another process meanwhile: recency is advisory

    def _store(self, path: Path, meta: dict, arrays: tuple) -> None:
        size = sum(array.nbytes for array in arrays)
        if self._max_bytes is not None and size > LOW_WATER * self._max_bytes:
            message = f"max_gb={self.max_gb:g} holds no embedding of this model ({size / 1e9:.3g} GB each)"
            if self.write_errors == "raise":
                raise ValueError(message)
            return self._warn_once("size", f"{message}: nothing is stored in {self.path}")
        shard = path.parent
        try:
            shard.mkdir(exist_ok=True)
            if shard.is_symlink() or shard.resolve().parent != self.path:
                raise OSError(f"{shard} leads outside the store")
            write_atomically(path, ".npz", lambda tmp: _write_entry(tmp, meta, arrays))
        except OSError as exc:
            if self.write_errors == "raise":
                raise
            return self._warn_once("write", f"cannot write to the embedding store {self.path} ({type(exc).__name__}: "
                                            f"{exc}); embeddings are encoded but not stored")
        self._stamp(path)
        self._count("writes")
        if self._max_bytes is not None:
            with self._lock:
                if self._size is not None:
                    self._size += size
                due = self._size is None or self._size > self._max_bytes
            if due:
                self._evict()

    def _entries(self, remove_stale: bool = False):
        """``(path, bytes, mtime_ns)`` of every entry, never following a link out of the folder;
        with ``remove_stale``, temporary files older than ``STALE_PARTIAL_S`` (left by killed
        writers) are removed."""
        stale = time.time_ns() - int(STALE_PARTIAL_S * 1e9)
        with os.scandir(self.path) as shards:
            folders = [s.path for s in shards if len(s.name) == 2 and set(s.name) <= set("0123456789abcdef")
                       and s.is_dir(follow_symlinks=False)]
        for folder in folders:
            try:
                with os.scandir(folder) as items:
                    listed = [(item.path, item.name, item.stat(follow_symlinks=False)) for item in items
                              if item.is_file(follow_symlinks=False)]
            except OSError:
                continue  # removed meanwhile
            for item_path, name, stat in listed:
                if name.startswith(".") and PARTIAL_MARK in name:
                    if remove_stale and stat.st_mtime_ns < stale:
                        Path(item_path).unlink(missing_ok=True)
                elif name.endswith(".npz"):
                    yield item_path, stat.st_size, stat.st_mtime_ns

    def _evict(self) -> None:
        """List the entries; over ``max_gb``, delete the least recently used until at most
        ``LOW_WATER`` of it remains."""
        entries = sorted(self._entries(remove_stale=True), key=lambda entry: (entry[2], entry[0]))
        total = sum(size for _, size, _ in entries)
        target = LOW_WATER * self._max_bytes if total > self._max_bytes else total
        removed = 0
        for entry_path, size, _ in entries:
            if total <= target:
                break
            Path(entry_path).unlink(missing_ok=True)
            total -= size
            removed += 1
        with self._lock:
            self._size = total
            self._counts["evicted"] += removed
