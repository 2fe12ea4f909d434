"""``samedenhancer demo``: refine the shipped sample (or your own image and coarse mask) and write a
figure with the coarse and the refined outline in one panel."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .. import io
from ..core import as_label_map
from ..data import fundus
from ..drawing import MIN_SIDE, outlines
from ..enhancer import Enhancer
from ..metrics import label_scores
from . import flags
from .evaluate import comparable

NAME = "demo"
SUMMARY = "refine the shipped sample (or your pair), draw coarse vs refined; writes a PNG"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Refine a coarse mask. Writes a PNG (--out) with the coarse (yellow) and the refined "
                          "(cyan) outline in one panel. Without --image/--coarse it uses the sample shipped with the "
                          "package: a fundus photograph of the optic disc (public domain) with a weak segmenter's "
                          "probability map.")
    p.add_argument("--image", help="your image (png/jpg/tif/bmp/npy/dcm) instead of the shipped sample")
    p.add_argument("--coarse", help="its coarse mask (label map or probability map; with --image)")
    p.add_argument("--truth", help="optional ground truth for --image: also draw it and print Dice / HD95")
    flags.add(p, "model", "providers", "threads",
              threshold="threshold of a probability map given as --coarse (e.g. 127 or 0.5)",
              out=dict(required=False, default="samedenhancer-demo.png", metavar="FILE",
                       help="figure to write (default samedenhancer-demo.png)"))
    flags.add_store(p)
    p.set_defaults(func=run)


def _inputs(args: argparse.Namespace):
    """``(image, coarse, threshold, name, truth)`` of the shipped sample or of --image/--coarse."""
    if (args.image is None) != (args.coarse is None):
        raise ValueError("give --image and --coarse together (or neither, for the shipped sample)")
    if args.image is None:
        if args.truth is not None or args.threshold is not None:
            raise ValueError("--truth and --threshold go with --image/--coarse; the shipped sample brings its own")
        sample = fundus()
        return sample.image, sample.coarse, sample.threshold, "the shipped sample", None
    truth = None if args.truth is None else io.read_mask(args.truth)
    return io.read_image(args.image), io.read_mask(args.coarse), args.threshold, args.image, truth


def run(args: argparse.Namespace) -> int:
    inputs = {"image": args.image, "coarse": args.coarse, "truth": args.truth}
    out = io.prepare_output_file(args.out, inputs)
    image, coarse, threshold, name, truth = _inputs(args)
    store = flags.open_store(args, inputs, out=out)
    start = time.perf_counter()
    enhancer = Enhancer(args.model, providers=args.providers, threads=args.threads, threshold=threshold,
                        embeddings=store)
    loaded = time.perf_counter()
    result = enhancer.enhance(image, coarse)
    done = time.perf_counter()
    coarse_labels = as_label_map(coarse, threshold)
    changed = int(np.count_nonzero((coarse_labels > 0) != (result.mask > 0)))
    masks = {"coarse": coarse_labels, "refined": result.mask}
    summary = f"{len(result.regions)} region(s), {changed} pixels changed"
    if truth is not None:
        truth_labels = as_label_map(truth)
        before = label_scores(*comparable(coarse_labels, truth_labels))
        after = label_scores(*comparable(result.mask, truth_labels))
        masks["truth"] = truth_labels
        summary += f"; Dice {before[0]:.4f} -> {after[0]:.4f}, HD95 {before[1]:.1f} -> {after[1]:.1f} px"
    figure = outlines(image, masks, summary, min_side=MIN_SIDE)
    io.write_mask(out, np.ascontiguousarray(figure[..., ::-1]))  # OpenCV writes BGR
    print(f"{name}: {summary} (model ready in {loaded - start:.1f} s, refined in {1e3 * (done - loaded):.0f} ms); "
          f"figure: {Path(out).resolve()}" + (f"; {flags.store_detail(store)}" if store else ""), file=sys.stdout)
    return 0
