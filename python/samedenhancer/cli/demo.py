"""``samedenhancer demo``: refine a real Kvasir image from its PraNet map and write an overlay PNG."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .. import io


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="refine a real endoscopy image and write an overlay PNG")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--index", type=int, default=0, help="which Kvasir image (0-based)")
    p.add_argument("--out", default="samedenhancer-demo.png", help="overlay PNG to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import datasets
    from ..drawing import overlay
    from ..enhancer import Enhancer
    from ..metrics import dice

    root = datasets.data_root()
    if root is None:
        print("demo needs the real data of ../shared/data (or set $SAMEDENHANCER_DATA)", file=sys.stderr)
        return 2
    samples = datasets.samples("kvasir", root)
    if not 0 <= args.index < len(samples):
        raise ValueError(f"--index must be in [0, {len(samples) - 1}] (the Kvasir images of {root}), got {args.index}")
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the overlay's file name (e.g. {out / 'demo.png'})")
    io.prepare_output_folder(out.parent, name="the folder of --out")
    sample = samples[args.index]
    image, truth, coarse = sample.image(), sample.ground_truth(), sample.coarse("pranet")
    start = time.perf_counter()
    enhancer = Enhancer(args.model, threshold=127)
    loaded = time.perf_counter()
    refined = enhancer.enhance(image, coarse)
    done = time.perf_counter()
    coarse_mask = (coarse > 127).astype(np.uint8)
    d0, d1 = dice(coarse_mask, truth), dice(refined, truth)
    panels = overlay(image, [truth, coarse_mask, refined], ["expert", f"coarse {d0:.3f}", f"refined {d1:.3f}"])
    io.write_mask(out, np.ascontiguousarray(panels[..., ::-1]))  # OpenCV writes BGR
    print(
        f"kvasir/{sample.stem}: Dice coarse {d0:.4f} -> refined {d1:.4f} "
        f"(model ready in {loaded - start:.1f} s, refined in {1e3 * (done - loaded):.0f} ms); overlay: {out.resolve()}"
    )
    return 0
