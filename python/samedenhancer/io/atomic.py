"""Writing files atomically: a killed process never leaves a half-written output.

The temporary file is created with mode ``0o666`` minus the umask (what ``open`` gives a new file),
not ``0o600`` as :func:`tempfile.mkstemp` would: outputs stay readable to the other users and
services the umask allows. Its name, ``.NAME.partial-XXXXXXXX.SUFFIX``, is hidden and marked, so
:func:`remove_partial_files` can clear what a killed run left behind.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: The marker in the name of every temporary file :func:`write_atomically` makes.
PARTIAL_MARK = ".partial-"


def temporary_file(path: Path, suffix: str) -> Path:
    """A new empty file beside ``path`` (mode ``0o666`` minus the umask), never an existing one,
    named so that :func:`remove_partial_files` clears it when the process dies before renaming it
    to ``path`` (for writers that need a file name, such as a video writer)."""
    while True:
        tmp = path.with_name(f".{path.name}{PARTIAL_MARK}{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def write_atomically(path: Path, suffix: str, write) -> Path:
    """Call ``write(temporary_path)`` on a temporary file (same folder, same ``suffix``), then
    rename it to ``path``: a killed process never leaves a half-written file at ``path``. The
    result has the permissions a new file gets under the process's umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(path, suffix)
    try:
        write(os.fspath(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`write_atomically`."""
    path = Path(path)
    return write_atomically(path, path.suffix, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def remove_partial_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed :func:`write_atomically` left in ``folder`` (not
    recursive); returns what was removed. Only for a folder no other process is writing to."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for item in folder.iterdir():
        if item.name.startswith(".") and PARTIAL_MARK in item.name and item.is_file():
            item.unlink(missing_ok=True)
            removed.append(item)
    return removed
