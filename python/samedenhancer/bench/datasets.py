"""The real test data laid out in ``../shared/data`` (see its README): images, expert masks and
coarse predictions of published segmenters, matched by stem.

Used by the test suite, ``python -m samedenhancer.bench`` and ``samedenhancer demo``. The data are
never copied into the repository; the folder is found through ``$SAMEDENHANCER_DATA`` or as
``../shared/data`` next to the working directory or next to the source checkout.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import read_image, read_mask

DATA_ENV = "SAMEDENHANCER_DATA"
DATASETS = ("kvasir", "cvc_clinicdb", "busi", "thyroid_ddti", "acdc")
#: Datasets whose ``coarse/`` folder holds real segmenter predictions (8-bit probability maps).
SEGMENTERS = {
    "kvasir": ("pranet", "pranet_retrain_archeml01"),
    "cvc_clinicdb": ("pranet", "pranet_retrain_archeml01"),
}


def data_root() -> Path | None:
    """The shared data folder, or ``None`` if it cannot be found."""
    candidates = []
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data")
    for candidate in candidates:
        if (candidate / "README.md").is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Sample:
    """One image of a dataset with its expert mask and coarse predictions (paths)."""

    dataset: str
    stem: str
    image_path: Path
    mask_path: Path
    coarse_paths: dict[str, Path] = field(default_factory=dict)

    def image(self) -> np.ndarray:
        """The image, H x W x 3 RGB (BUSI, Kvasir, CVC) or H x W grey (DDTI uint8, ACDC uint16)."""
        return read_image(self.image_path)

    def ground_truth(self) -> np.ndarray:
        """The expert mask as uint8: 0/1 for the binary sets, 0..3 labels for ACDC."""
        mask = read_mask(self.mask_path)
        if self.dataset == "acdc":
            return mask.astype(np.uint8)
        threshold = 0 if self.dataset == "busi" else 127
        return (mask > threshold).astype(np.uint8)

    def coarse(self, segmenter: str) -> np.ndarray:
        """The segmenter's probability map, uint8 0..255 (threshold at 127 for a binary mask)."""
        try:
            path = self.coarse_paths[segmenter]
        except KeyError:
            raise ValueError(
                f"segmenter must be one of {sorted(self.coarse_paths)} for {self.dataset}, got {segmenter!r}"
            ) from None
        return read_mask(path)


def samples(dataset: str, root: str | os.PathLike | None = None) -> list[Sample]:
    """All samples of ``dataset`` in manifest order."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    base = Path(root) if root is not None else data_root()
    if base is None:
        raise FileNotFoundError(f"shared data not found: set ${DATA_ENV} or place it at ../shared/data")
    folder = base / dataset
    image_dir = folder / ("images_png" if dataset == "cvc_clinicdb" else "images")
    with open(folder / "manifest.csv", newline="") as handle:
        stems = [row["stem"] for row in csv.DictReader(handle)]

    def find(directory: Path, stem: str) -> Path:
        matches = sorted(directory.glob(f"{stem}.*"))
        if not matches:
            raise FileNotFoundError(f"{directory} has no file for stem {stem!r}")
        return matches[0]

    result = []
    for stem in stems:
        coarse = {seg: folder / "coarse" / seg / f"{stem}.png" for seg in SEGMENTERS.get(dataset, ())}
        result.append(Sample(dataset, stem, find(image_dir, stem), find(folder / "masks", stem), coarse))
    return result
