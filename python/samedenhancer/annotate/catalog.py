"""What the annotation page may touch: the images (and coarse masks) of the given folders, and OUT.

The catalog is built once, when the server starts, from the folders' listings
(:func:`samedenhancer.io.files_by_stem`). A request names an image by its id (the file's stem) and
the server looks the id up here: no part of a request is ever joined to a path, so ``..``,
absolute paths and any other name outside the catalog are unknown ids. Files that are symbolic
links resolving outside their folder, NIfTI volumes and unreadable suffixes are left out at start
(and listed in :attr:`Catalog.refused`). Outputs go to ``OUT/<stem>.<format>`` and
``OUT/annotations.csv``, both written atomically, and earlier versions of an accepted mask to
``OUT/history/``.
"""

from __future__ import annotations

import csv
import io as _io
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io, validation

__all__ = ["ACTIONS", "HISTORY", "LEDGER_COLUMNS", "LEDGER_NAME", "STATES", "Catalog", "Entry", "Ledger"]

#: An image's state on the page.
STATES = ("todo", "accepted", "skipped")
#: What a ledger row records.
ACTIONS = ("accepted", "skipped")
LEDGER_NAME = "annotations.csv"
#: Folder in OUT where an accepted mask's earlier versions are kept (``<stem>.v<n>.<format>``).
HISTORY = "history"
#: Columns of ``OUT/annotations.csv``, one row per accept or skip (the last row of a file gives its state).
LEDGER_COLUMNS = ("file", "time", "action", "clicks", "start", "dice_vs_coarse", "dice_vs_refined", "seconds")
#: Output formats (as ``samedenhancer enhance --format``).
FORMATS = ("png", "npy", "tif")


@dataclass(frozen=True)
class Entry:
    """One image of the catalog.

    Attributes
    ----------
    id : str
        The image's stem: how requests name it.
    image : Path
        The image file (resolved, inside the images folder).
    coarse : Path or None
        Its coarse mask (resolved, inside the coarse folder), if there is one.
    output : Path
        Where an accepted mask is written (``OUT/<stem>.<format>``).
    """

    id: str
    image: Path
    coarse: Path | None
    output: Path


def _inside(path: Path, folder: Path) -> Path | None:
    """``path`` resolved when it lies inside ``folder`` (resolved), else ``None`` (a symlink out)."""
    resolved = path.resolve()
    return resolved if resolved.is_relative_to(folder) and resolved.is_file() else None


def _listing(folder: Path, name: str, refused: list[tuple[str, str]]) -> dict[str, Path]:
    if not folder.is_dir():
        raise ValueError(f"{name} must be a folder, got {folder}" + ("" if folder.exists() else " (does not exist)"))
    root = folder.resolve()
    found = {}
    for stem, path in io.files_by_stem(root).items():
        if io.is_volume(path):
            refused.append((path.name, "a NIfTI volume (annotate works on 2-D images)"))
            continue
        inside = _inside(path, root)
        if inside is None:
            refused.append((path.name, f"resolves outside {name} {root}"))
            continue
        found[stem] = inside
    return found


class Catalog:
    """The images a server may show, their coarse masks, and where their outputs go.

    Parameters
    ----------
    images : path
        Folder of images (png/jpg/tif/bmp/npy/single-frame dcm).
    coarse : path, optional
        Folder of coarse masks matched to the images by stem (label maps or soft maps).
    out : path
        Output folder (created; it must be writable and lie outside the images and coarse folders).
    format : {"png", "npy", "tif"}
        Format of the written masks.

    Attributes
    ----------
    entries : dict of str to Entry
        By id, in name order.
    refused : list of (str, str)
        Files left out and why (symlinks out of their folder, volumes, coarse masks without image).
    """

    def __init__(self, images, coarse=None, *, out, format: str = "png") -> None:
        validation.choice(format, "format", FORMATS)
        self.refused: list[tuple[str, str]] = []
        image_files = _listing(Path(images), "images", self.refused)
        coarse_files = {} if coarse is None else _listing(Path(coarse), "coarse", self.refused)
        self.out = Path(out).resolve()
        self.refused += [(f"{stem} (coarse)", "no image of that stem") for stem in coarse_files if stem not in image_files]
        self.entries = {
            stem: Entry(stem, path, coarse_files.get(stem), self.out / f"{stem}.{format}")
            for stem, path in image_files.items()
        }
        if not self.entries:
            raise ValueError(f"images holds no readable 2-D image: {images}")
        io.prepare_output_folder(  # the folder runner's check: no output may reach an input, writable
            out, {"images": images, "coarse": coarse},
            # every listed file, links out of a folder too: they are left out, but must not be written through
            files={name: list(io.files_by_stem(folder).values())
                   for name, folder in (("images", images), ("coarse", coarse)) if folder is not None},
            outputs=[entry.output for entry in self.entries.values()] + [self.out / LEDGER_NAME], name="out")
        self.ledger = Ledger(self.out / LEDGER_NAME)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, image_id: str) -> Entry:
        """The entry of ``image_id``; ``KeyError`` for any id not in the catalog."""
        return self.entries[image_id]

    def ids(self) -> list[str]:
        return list(self.entries)

    def saved_mask(self, entry: Entry, shape: tuple) -> tuple[np.ndarray | None, str | None]:
        """The mask an earlier accept wrote for ``entry`` (bool H x W; ``None`` when there is none
        or it cannot be used) and, when there is one it cannot use, why (for the page)."""
        if not entry.output.exists():
            accepted = self.ledger.states().get(entry.id) == "accepted"
            return None, (f"{entry.output.name} was accepted but is no longer in {self.out}: starting from the refined "
                          "mask" if accepted else None)
        try:
            saved = io.read_mask(entry.output)
        except (OSError, ValueError, TypeError) as error:
            reason = f"cannot read {entry.output.name} ({error})"
        else:
            if saved.shape == tuple(shape):
                return saved > 0, None
            reason = f"{entry.output.name} is {saved.shape[1]} x {saved.shape[0]} px, the image {shape[1]} x {shape[0]} px"
        return None, f"the saved mask is not used: {reason}; accepting keeps it in {HISTORY}/ first"

    def keep_previous(self, entry: Entry, mask: np.ndarray) -> Path | None:
        """Before ``mask`` replaces ``entry.output``, keep that file as its next earlier version
        ``OUT/history/<stem>.v<n>.<format>`` (a hard link where the file system has them, else a
        copy), unless it holds ``mask`` already; return where it went."""
        output = entry.output
        if not output.exists():
            return None
        try:
            if np.array_equal(io.read_mask(output) > 0, mask):
                return None
        except (OSError, ValueError, TypeError):
            pass  # unreadable: kept as it is
        history = self.out / HISTORY
        history.mkdir(exist_ok=True)
        pattern = re.compile(re.escape(output.stem) + r"\.v(\d+)" + re.escape(output.suffix))
        versions = [int(match.group(1)) for match in map(pattern.fullmatch, os.listdir(history)) if match]
        kept = history / f"{output.stem}.v{max(versions, default=0) + 1}{output.suffix}"
        try:
            os.link(output, kept)
        except OSError:
            shutil.copy2(output, kept)
        return kept


class Ledger:
    """``OUT/annotations.csv``: one row per accept or skip, rewritten atomically under a lock.

    The states of the images are the last action of each file, so a restarted server picks up
    where the last one stopped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rows: list[dict[str, str]] = self._read()

    def _read(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                return []
            if tuple(reader.fieldnames) != LEDGER_COLUMNS:
                raise ValueError(f"{self.path} is not an annotations ledger: columns {reader.fieldnames}, "
                                 f"expected {list(LEDGER_COLUMNS)}")
            return list(reader)

    def states(self) -> dict[str, str]:
        """``{file: "accepted" | "skipped"}``, the last action of each file."""
        with self._lock:
            return {row["file"]: row["action"] for row in self._rows}

    def rows(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(row) for row in self._rows]

    def append(self, row: dict) -> None:
        """Add ``row`` (the :data:`LEDGER_COLUMNS`) and rewrite the file atomically."""
        if set(row) != set(LEDGER_COLUMNS) or row["action"] not in ACTIONS:
            raise ValueError(f"a ledger row has the columns {LEDGER_COLUMNS} and an action in {ACTIONS}, got {row}")
        with self._lock:
            rows = self._rows + [{key: str(row[key]) for key in LEDGER_COLUMNS}]
            text = _io.StringIO()
            writer = csv.DictWriter(text, LEDGER_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            io.write_atomically(self.path, ".csv", lambda tmp: Path(tmp).write_text(text.getvalue()))
            self._rows = rows
