"""Output folders: checked before any work, never an input folder, provably writable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .atomic import _create_temporary


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def prepare_output_folder(out: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None] | None = None,
                          *, name: str = "--out") -> Path:
    """Check ``out`` before any work and create it: refuse a folder that would overwrite inputs,
    prove it writable.

    Parameters
    ----------
    out : path
        The output folder (created with its parents when missing).
    inputs : mapping of str to path, optional
        What the command reads, by the name the user knows it by (``{"images": ..., "coarse": ...}``;
        ``None`` values are skipped). ``out`` may be neither equal to nor inside an input folder,
        nor the folder holding an input file; symbolic links are resolved first.
    name : str
        How messages name ``out``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        When ``out`` is or lies in an input folder, is a file, or cannot be created or written to.
    """
    out = Path(out)
    target = out.resolve()
    for label, source in (inputs or {}).items():
        if source is None or not Path(source).exists():
            continue
        source = Path(source).resolve()
        if source.is_dir() and _inside(target, source):
            raise ValueError(f"{name} {out} is {'the' if target == source else 'inside the'} {label} folder {source}: "
                             "outputs would overwrite or mix with the inputs; choose another folder")
        if source.is_file() and target == source.parent:
            raise ValueError(f"{name} {out} is the folder holding the {label} file {source}: outputs could overwrite "
                             "the inputs; choose another folder")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name} {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _create_temporary(out / "write-test", "").unlink()
    except OSError as exc:
        raise ValueError(f"{name} {out} is not a writable folder: {exc.strerror or exc}") from None
    return out
