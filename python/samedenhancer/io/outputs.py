"""Outputs: checked before any work (never an input, never a place that reaches one, provably
writable), and recognised as complete on a rerun only when they read back."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from io import StringIO
from pathlib import Path

from .atomic import temporary_file
from .images import read_array
from .nifti import read_volume
from .paths import DICOM_SUFFIXES, IMAGE_SUFFIXES, is_volume

Inputs = Mapping[str, "str | os.PathLike | None"]
Files = Mapping[str, Iterable["str | os.PathLike"]]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolved(inputs: Inputs | None, files: Files | None):
    """``(folders, files)``: the existing inputs resolved, as ``(label, given, resolved)``."""
    folders, found = [], []
    for label, source in (inputs or {}).items():
        if source is not None and Path(source).exists():
            resolved = Path(source).resolve()
            (folders if resolved.is_dir() else found).append((label, Path(source), resolved))
    for label, paths in (files or {}).items():
        found += [(label, Path(p), Path(p).resolve()) for p in paths if Path(p).exists()]
    return folders, found


def _link(given: Path, resolved: Path) -> str:
    return f"{given}" if given.absolute() == resolved else f"{given} (a link to {resolved})"


def _refuse_outputs(outputs: Iterable, folders, files, name: str, *, file: bool = False) -> None:
    """Refuse an output path that is (through links on its way) an input file or lies in an input
    folder: writing it would change the input. ``file``: the outputs are the one file ``name`` names."""
    by_path = {resolved: (label, given) for label, given, resolved in files}
    for output in outputs:
        output = Path(output)
        resolved = output.resolve()
        what = f"{name} {output}" if file else f"{name}: the output {output}"
        if resolved in by_path:
            label, given = by_path[resolved]
            if output.absolute() != resolved:
                raise ValueError(f"{what} is a link to the {label} file {resolved}: writing it would overwrite the "
                                 "input; remove the link or choose another place")
            raise ValueError(f"{what} is the {label} file {_link(given, resolved)}: writing it would overwrite the "
                             "input; choose another place")
        for label, given, folder in folders:
            if _inside(resolved, folder):
                raise ValueError(f"{what} lies in the {label} folder {folder}: outputs would overwrite or mix with the "
                                 "inputs; choose another place")


def _writable(folder: Path, name: str, what: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {what} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary_file(folder / "write-test", "").unlink()
    except OSError as exc:
        raise ValueError(f"{name} {what} is not a writable folder: {exc.strerror or exc}") from None


def prepare_output_folder(out: str | os.PathLike, inputs: Inputs | None = None, *, files: Files | None = None,
                          outputs: Iterable[str | os.PathLike] = (), name: str = "--out") -> Path:
    """Check ``out`` before any work and create it: refuse a folder whose outputs could overwrite
    an input, prove it writable.

    Parameters
    ----------
    out : path
        The output folder (created with its parents when missing).
    inputs : mapping of str to path, optional
        What the command reads, by the name the user knows it by (``{"images": ..., "coarse": ...}``;
        ``None`` values are skipped). ``out`` may be neither equal to nor inside an input folder,
        nor the folder holding an input file; links are resolved first.
    files : mapping of str to paths, optional
        Every input file the command will read, by input name: none may resolve (through a link)
        into ``out`` or into the folder of an output.
    outputs : paths
        The files the command will write: none may resolve to an input file or into an input folder
        (an output name that is a link to an input).
    name : str
        How messages name ``out``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        When an output could overwrite an input, or ``out`` is a file, or cannot be created or
        written to.
    """
    out = Path(out)
    target = out.resolve()
    folders, found = _resolved(inputs, files)
    for label, given, folder in folders:
        if _inside(target, folder):
            raise ValueError(f"{name} {out} is {'the' if target == folder else 'inside the'} {label} folder {folder}: "
                             "outputs would overwrite or mix with the inputs; choose another folder")
    outputs = list(outputs)
    written_to = {target} | {Path(o).parent.resolve() for o in outputs}
    for label, given, resolved in found:
        if resolved == target:
            raise ValueError(f"{name} {out} is the {label} file {_link(given, resolved)}: give an output folder")
        if resolved.parent in written_to:
            where = "is the folder holding" if resolved.parent == target and given.absolute() == resolved else "holds"
            raise ValueError(f"{name} {out} {where} the {label} file {_link(given, resolved)}: outputs could "
                             "overwrite the inputs; choose another folder")
    _refuse_outputs(outputs, folders, found, name)
    _writable(out, name, str(out))
    return out


def prepare_output_file(path: str | os.PathLike, inputs: Inputs | None = None, *, files: Files | None = None,
                        name: str = "--out") -> Path:
    """Check an output file before any work: not an input file (links resolved), not inside an
    input folder, not a folder; its folder is created and proven writable.

    Parameters and errors as :func:`prepare_output_folder`; returns ``path``.
    """
    path = Path(path)
    folders, found = _resolved(inputs, files)
    _refuse_outputs([path], folders, found, name, file=True)
    if path.is_dir():
        raise ValueError(f"{name} {path} is a folder: give the name of a file (in it or elsewhere)")
    _writable(path.parent, name, f"folder {path.parent}")
    return path


def reads_back(path: str | os.PathLike) -> bool:
    """Whether the output ``path`` is complete: it exists, is not empty and its reader takes it
    (an image, ``.npy``, NIfTI, JSON or CSV file). A rerun with ``--resume`` redoes anything else:
    a 0-byte or truncated file is not a finished output."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        suffix = path.suffix.lower()
        if is_volume(path):
            read_volume(path)
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".csv":
            text = path.read_text(encoding="utf-8")
            rows = list(csv.reader(StringIO(text, newline=""), strict=True))
            return text.endswith("\n") and all(len(row) == len(rows[0]) for row in rows)
        elif suffix in IMAGE_SUFFIXES and suffix not in DICOM_SUFFIXES:
            return read_array(path).ndim in (2, 3)  # a truncated TIFF can come back as an empty array
    except Exception:  # noqa: BLE001 - whatever the reader says, the file is not a finished output
        return False
    return True
