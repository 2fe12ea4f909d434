"""``samedenhancer prior-maps``: SAMAug's prior maps (and augmented images) for a folder of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import io
from ._failures import Failure, report_failures

#: The segmentation prior is written as 16-bit PNG in units of 1/SEGMENTATION_SCALE.
SEGMENTATION_SCALE = 1000


def add_parser(sub) -> None:
    p = sub.add_parser("prior_maps", help="SAMAug segmentation / boundary prior maps of a folder of images")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm)")
    p.add_argument("--out", required=True, help="output folder: <stem>_segmentation, <stem>_boundary (and <stem>_augmented.png)")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--augment", action="store_true", help="also write SAMAug's augmented image as 8-bit RGB PNG")
    p.add_argument("--format", choices=("png", "npy"), default="png",
                   help=f"prior maps as 16-bit PNG (segmentation x {SEGMENTATION_SCALE}, boundary 0/65535) or float32 .npy")
    p.add_argument("--resume", action="store_true", help="skip images whose outputs exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _outputs(out: Path, stem: str, args) -> list[Path]:
    names = [out / f"{stem}_segmentation.{args.format}", out / f"{stem}_boundary.{args.format}"]
    return names + ([out / f"{stem}_augmented.png"] if args.augment else [])


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..predictor import Predictor
    from ..prior_maps import augment, prior_maps

    images = {s: p for s, p in io.files_by_stem(Path(args.images)).items() if not io.is_volume(p)}
    if not images:
        raise ValueError(f"{args.images} holds no image files ({', '.join(io.IMAGE_SUFFIXES)})")
    out = Path(args.out)
    todo = sorted(images)
    if args.resume:
        todo = [s for s in todo if not all(p.exists() for p in _outputs(out, s, args))]
    predictor = Predictor(args.model)
    failures, done = [], 0
    for stem in tqdm(todo, unit="img", disable=args.quiet, dynamic_ncols=True):
        try:
            image = io.read_image(images[stem])
            maps = prior_maps(image, predictor)
            segmentation, boundary, *augmented = _outputs(out, stem, args)
            if args.format == "npy":
                io.write_mask(segmentation, maps.segmentation)
                io.write_mask(boundary, maps.boundary)
            else:
                io.write_mask(segmentation, np.clip(np.rint(maps.segmentation * SEGMENTATION_SCALE), 0, 65535).astype(np.uint16))
                io.write_mask(boundary, (maps.boundary * 65535).astype(np.uint16))
            if augmented:
                rgb = np.rint(augment(image, maps) * 255).astype(np.uint8)
                io.write_mask(augmented[0], np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR
            done += 1
        except Exception as error:  # one image's failure is that image's reported error
            failures.append(Failure(stem, f"{type(error).__name__}: {error}"))
    print(f"prior maps of {done} of {len(todo)} images in {out}", file=sys.stderr)
    report_failures(failures, len(todo))
    return 1 if failures else 0
