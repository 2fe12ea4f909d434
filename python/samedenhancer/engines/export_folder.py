"""An export folder on disk: the marker that proves ``samedenhancer export`` wrote it, the lock that
keeps loads and re-exports of one folder apart, and the size and SHA-256 of its model files.

- The exporter writes :data:`MARKER` into its staging folder first and holds a lock on it while it
  works; the marker travels with the folder when it is published. The exporter only ever replaces
  or removes a folder that carries the marker (or an earlier export's files and nothing else), and
  removes a leftover staging folder only when no live export holds its marker.
- :func:`folder_lock` is an ``flock`` on ``.<name>.lock`` beside the folder: an export holds it
  exclusively while it swaps the new folder in, a load holds it shared while it reads the manifest
  and opens the model files, so a load sees one whole export, never half of two.
- :func:`file_record` is what the manifest records of each model file (``file_hashes``) and what a
  load compares: the size on every load, the hash once per process per version of the file.

Locks are advisory POSIX ``flock`` locks; where ``fcntl`` does not exist they are no-ops.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from pathlib import Path
from typing import Callable, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["MARKER", "file_record", "folder_lock", "holds_live_export", "lock_path", "read_consistently", "sha256_file",
           "write_marker"]

T = TypeVar("T")

#: Written first into every staging folder; it stays in the published export folder.
MARKER = ".samedenhancer-export"
_MARKER_TEXT = ("Written by `samedenhancer export`: a re-export replaces this folder whole, so keep nothing else "
                "in it.\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_of_version(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """``sha256_file(path)``, computed once per process for each (size, mtime, inode) of the file."""
    return sha256_file(path)


def file_record(path: str | os.PathLike) -> dict:
    """``{"sha256": hex, "bytes": size}`` of the file at ``path``, as the manifest records it.

    The hash is computed once per process for each version of the file (its path, size,
    modification time and inode), so checking a model at every load costs a ``stat``.
    """
    stat = os.stat(path)
    return {"sha256": _sha256_of_version(os.fspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino), "bytes": stat.st_size}


def lock_path(folder: Path) -> Path:
    """The lock file of export folder ``folder``: ``.<name>.lock`` beside it (never removed, so that
    every process locks the same file)."""
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def folder_lock(folder: Path, *, exclusive: bool):
    """Hold the lock of export folder ``folder`` for the ``with`` block; yields whether it is held.

    ``exclusive=True`` (an export replacing the folder) creates the lock file if needed and waits
    for every load to finish; ``exclusive=False`` (a load) waits for a running replacement, and
    holds nothing where there is no lock file (no export was published there by this version, or
    the parent folder cannot be read): :func:`read_consistently` then checks afterwards.
    """
    path = lock_path(folder)
    if exclusive:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    else:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            fd = None
    try:
        if fd is not None and fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def read_consistently(folder: Path, read: Callable[[], T]) -> T:
    """``read()`` (read the manifest and files of export folder ``folder``) while no export replaces
    the folder: under its shared lock. Where there is no lock file to hold, an export may create it
    meanwhile (it does so before it replaces anything), so the read is repeated under the lock when
    the file appeared while reading."""
    for _ in range(2):
        with folder_lock(folder, exclusive=False) as locked:
            result = read()
        if locked or not lock_path(folder).exists():
            return result
    return result


def write_marker(folder: Path) -> int:
    """Create :data:`MARKER` in the new, empty ``folder`` and lock it exclusively; return its open
    descriptor (closing it releases the lock: keep it open while the export works)."""
    fd = os.open(folder / MARKER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, _MARKER_TEXT.encode())
    except OSError:
        os.close(fd)
        raise
    return fd


def holds_live_export(folder: Path) -> bool | None:
    """Whether a running export holds ``folder``'s marker: ``None`` when the folder has no marker
    (not an export's folder), ``False`` when the marker is free (its export ended or was killed)."""
    try:
        fd = os.open(folder / MARKER, os.O_RDONLY)
    except OSError:
        return None
    try:
        if fcntl is None:  # pragma: no cover - not POSIX: cannot tell, assume alive
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)
