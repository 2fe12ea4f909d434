"""Where an export goes, and how it gets there without touching anything it did not make.

The output folder is checked before any work (:func:`output_folder`): it must be new, empty, or an
earlier export (it carries :data:`~samedenhancer.engines.export_folder.MARKER`, or holds an older
export's files and nothing else). The graphs are written into a staging folder beside it
(:func:`staging_folder`, marked and locked from its first moment), and :func:`publish` swaps the
finished folder in under the folder's exclusive lock, so that a load in another process sees the
old export or the new one, never a mix. Staging folders left by killed exports are removed only
when they carry the marker and no live export holds it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from samedenhancer.engines.export_folder import MARKER, folder_lock, holds_live_export, write_marker
from samedenhancer.engines.manifest import MANIFEST_FILE

__all__ = ["ABANDONED_AFTER_S", "EXPORT_NAMES", "output_folder", "publish", "remove_abandoned_staging", "staging_folder"]

#: Every name an export writes into its folder; ONNX Runtime's TensorRT provider adds ``trt_cache``.
EXPORT_NAMES = frozenset({MARKER, MANIFEST_FILE, "trt_cache", "encoder.onnx", "decoder.onnx", "encoder.onnx.data",
                          "decoder.onnx.data", "encoder.engine", "decoder.engine"})
#: A marked staging folder that no live export holds is removed once it is this old (a younger one
#: may be an export that has created its folder but not yet locked its marker).
ABANDONED_AFTER_S = 3600.0


def _earlier_export(folder: Path) -> bool:
    """Whether ``folder`` holds the manifest of an export made before exports were marked."""
    try:
        doc = json.loads((folder / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("exporter"), dict) and isinstance(doc.get("files"), dict)


def _why_not_replaceable(target: Path) -> str | None:
    """Why the existing folder ``target`` may not be replaced by an export (``None`` when it may:
    missing, empty, or an earlier export holding nothing else)."""
    if not target.exists():
        return None
    entries = sorted(entry.name for entry in target.iterdir())
    others = [name for name in entries if name not in EXPORT_NAMES]
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        return (f"out {target} holds files that samedenhancer export did not write ({shown}); an export replaces its "
                "folder whole, so it only ever replaces one it made: give a new or empty folder")
    if entries and MARKER not in entries and not _earlier_export(target):
        return (f"out {target} does not hold an export made by samedenhancer (no {MARKER} and no export manifest): "
                "give a new or empty folder")
    return None


def output_folder(out: str | os.PathLike, inputs: dict | None = None) -> Path:
    """``out`` resolved to the folder an export may write, checked before any work is done.

    ``inputs`` (``{"checkpoint": path}``; ``None`` values skipped) are files the export reads: none
    may lie in ``out``, directly or through a link.

    Raises
    ------
    ValueError
        ``out`` is a file, lies under a file, is the working directory or holds it, holds an
        input, is a folder with anything an export did not write, or its parent folder cannot be
        created.
    """
    target = Path(out).expanduser().resolve()
    for name, source in (inputs or {}).items():
        if source is not None and Path(source).resolve().is_relative_to(target):
            raise ValueError(f"{name} {source} is (or links to) a file inside out {target}, which an export replaces "
                             "whole: move it elsewhere or give another folder")
    if target.parent == target:
        raise ValueError(f"out must name a folder below the file system root, got {os.fspath(out)!r}")
    if target.exists() and not target.is_dir():
        raise ValueError(f"out must be a folder, got the file {target}")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"out {target} lies under {parent}, which is a file, not a folder")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise ValueError(f"out {target} is the working directory or holds it; an export replaces its folder whole: "
                         "give a new folder")
    problem = _why_not_replaceable(target)
    if problem:
        raise ValueError(problem)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create {target.parent} for the export ({exc.strerror or exc}): give a folder you can "
                         "write") from None
    return target


def remove_abandoned_staging(target: Path) -> None:
    """Remove the staging folders (``.<name>-*`` beside ``target``) that killed exports left: only
    those carrying the marker, held by no live export, and older than :data:`ABANDONED_AFTER_S`."""
    now = time.time()
    for leftover in target.parent.glob(f".{target.name}-*"):
        try:
            if (leftover.is_dir() and not leftover.is_symlink() and now - leftover.stat().st_mtime > ABANDONED_AFTER_S
                    and holds_live_export(leftover) is False):
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:  # vanished meanwhile
            continue


@contextlib.contextmanager
def staging_folder(target: Path):
    """A new staging folder beside ``target``, marked and locked, removed on the way out unless it
    was published; ``ValueError`` when ``target``'s parent cannot be written (``OSError`` when
    its disk is full)."""
    remove_abandoned_staging(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise  # a full disk: an output that could not be written
        raise ValueError(f"{target.parent} is not a writable folder ({exc.strerror}): the export is written there, "
                         f"beside {target.name}; give a folder you can write") from None
    try:
        marker = write_marker(staging)
        try:
            staging.chmod(0o755)
            yield staging
        finally:
            os.close(marker)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, target: Path) -> None:
    """Make the finished ``staging`` folder ``target``, replacing the export there, while no load
    reads it (the folder's exclusive lock): the old export is renamed aside, the new one renamed in,
    and the old one removed."""
    aside = None
    with folder_lock(target, exclusive=True):
        problem = _why_not_replaceable(target)  # again: the folder may have changed while the export ran
        if problem:
            raise ValueError(problem)
        if target.exists() and any(target.iterdir()):
            aside = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:12]}")
            target.rename(aside)
        try:
            staging.rename(target)  # onto a missing or empty folder: one step
        except OSError:
            if aside is not None:
                aside.rename(target)
            raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
