"""``samedenhancer demo``: refine the shipped sample (or your own image and coarse mask) and write a
figure with the coarse and the refined outline in one panel."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .. import io


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="refine the shipped sample (or --image/--coarse) and draw coarse vs refined",
        description="Refine a coarse mask and write a PNG with the coarse (orange) and the refined (green) outline "
                    "in one panel. Without --image/--coarse it uses the sample shipped with the package: a fundus "
                    "photograph of the optic disc (public domain) with a weak segmenter's probability map.")
    p.add_argument("--image", help="your image (png/jpg/tif/bmp/npy/dcm) instead of the shipped sample")
    p.add_argument("--coarse", help="its coarse mask (label map or probability map; with --image)")
    p.add_argument("--truth", help="optional ground truth for --image: also draw it and print Dice / HD95")
    p.add_argument("--threshold", type=float, default=None,
                   help="threshold of a probability map given as --coarse (e.g. 127 or 0.5)")
    p.add_argument("--model", default="litemedsam", help="model name or exported model folder")
    p.add_argument("--out", default="samedenhancer-demo.png", help="figure to write (default samedenhancer-demo.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core import as_label_map
    from ..data import fundus
    from ..drawing import MIN_SIDE, outlines
    from ..enhancer import Enhancer

    if (args.image is None) != (args.coarse is None):
        raise ValueError("give --image and --coarse together (or neither, for the shipped sample)")
    if args.image is None:
        if args.truth is not None or args.threshold is not None:
            raise ValueError("--truth and --threshold go with --image/--coarse; the shipped sample brings its own")
        sample = fundus()
        image, coarse, threshold, name, truth = sample.image, sample.coarse, sample.threshold, "the shipped sample", None
    else:
        image, coarse, threshold, name = io.read_image(args.image), io.read_mask(args.coarse), args.threshold, args.image
        truth = None if args.truth is None else io.read_mask(args.truth)
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the figure's file name (e.g. {out / 'demo.png'})")
    inputs = [Path(p).resolve() for p in (args.image, args.coarse, args.truth) if p is not None]
    if out.resolve() in inputs:
        raise ValueError(f"--out {out} is an input file: choose another name")
    io.prepare_output_folder(out.parent, name="the folder of --out")
    start = time.perf_counter()
    enhancer = Enhancer(args.model, threshold=threshold)
    loaded = time.perf_counter()
    result = enhancer.enhance(image, coarse)
    done = time.perf_counter()
    coarse_labels = as_label_map(coarse, threshold)
    changed = int(np.count_nonzero((coarse_labels > 0) != (result.mask > 0)))
    masks = {"coarse": coarse_labels, "refined": result.mask}
    summary = f"{len(result.regions)} region(s), {changed} pixels changed"
    if truth is not None:
        from ..metrics import label_scores

        truth_labels = (truth > 0).astype(np.uint8) if np.isin(truth, (0, 255)).all() else truth
        before, after = label_scores(coarse_labels, truth_labels), label_scores(result.mask, truth_labels)
        masks["truth"] = truth_labels
        summary += f"; Dice {before[0]:.4f} -> {after[0]:.4f}, HD95 {before[1]:.1f} -> {after[1]:.1f} px"
    figure = outlines(image, masks, summary, min_side=MIN_SIDE)
    io.write_mask(out, np.ascontiguousarray(figure[..., ::-1]))  # OpenCV writes BGR
    print(f"{name}: {summary} (model ready in {loaded - start:.1f} s, refined in {1e3 * (done - loaded):.0f} ms); "
          f"figure: {out.resolve()}", file=sys.stdout)
    return 0
