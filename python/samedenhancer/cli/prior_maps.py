"""``samedenhancer prior-maps``: SAMAug's prior maps (and augmented images) for a folder of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import io, runner
from ..predictor import as_predictor
from ..prior_maps import augment, prior_maps
from . import flags

NAME = "prior-maps"
SUMMARY = "SAMAug prior maps of images; writes OUT/<stem>_segmentation.png, _boundary.png"
#: The segmentation prior is written as 16-bit PNG in units of 1/SEGMENTATION_SCALE.
SEGMENTATION_SCALE = 1000


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="SAMAug's prior maps of each image (the model's segmentation and boundary evidence "
                          "from a grid of prompts), for a downstream segmenter to take as extra input channels. "
                          f"Writes OUT/<stem>_segmentation.png (16-bit, probability x {SEGMENTATION_SCALE}), "
                          "OUT/<stem>_boundary.png (0/65535) or float32 .npy with --format npy, and "
                          "OUT/<stem>_augmented.png with --augment.")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm)")
    flags.add(p, "out", "resume", "quiet", out="output folder: <stem>_segmentation, <stem>_boundary "
                                               "(and <stem>_augmented.png)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                   help="also write SAMAug's augmented image as 8-bit RGB PNG")
    p.add_argument("--format", choices=("png", "npy"), default="png",
                   help=f"prior maps as 16-bit PNG (segmentation x {SEGMENTATION_SCALE}, boundary 0/65535) or float32 .npy")
    flags.add(p, "model", "providers", "threads")
    flags.add_store(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)

    def outputs(item: runner.Item) -> dict[str, Path]:
        names = {"segmentation": out / f"{item.stem}_segmentation.{args.format}",
                 "boundary": out / f"{item.stem}_boundary.{args.format}"}
        return names | ({"augmented": out / f"{item.stem}_augmented.png"} if args.augment else {})

    work = runner.plan([runner.Source("images", args.images, "image")], out, outputs, resume=args.resume)
    store = flags.open_store(args, {"images": args.images}, out=out,
                             files=work.input_files())
    predictor = as_predictor(args.model, providers=args.providers, threads=args.threads, embeddings=store)

    def write_maps(item: runner.Item) -> None:
        if io.is_volume(item.inputs["images"]):
            raise ValueError("prior-maps takes 2-D images, got a NIfTI volume")
        image = io.read_image(item.inputs["images"])
        maps = prior_maps(image, predictor)
        if args.format == "npy":
            io.write_mask(item.outputs["segmentation"], maps.segmentation)
            io.write_mask(item.outputs["boundary"], maps.boundary)
        else:
            scaled = np.clip(np.rint(maps.segmentation * SEGMENTATION_SCALE), 0, 65535).astype(np.uint16)
            io.write_mask(item.outputs["segmentation"], scaled)
            io.write_mask(item.outputs["boundary"], (maps.boundary * 65535).astype(np.uint16))
        if "augmented" in item.outputs:
            rgb = np.rint(augment(image, maps) * 255).astype(np.uint8)
            io.write_mask(item.outputs["augmented"], np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR

    outcome = runner.run(work, write_maps, command=NAME, quiet=args.quiet)
    print(outcome.summary(out, detail=flags.store_detail(store)), file=sys.stderr)
    return outcome.exit_code
