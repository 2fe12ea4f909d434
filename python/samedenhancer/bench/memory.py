"""``python -m samedenhancer.bench memory``: peak memory of refining many regions of a large image.

Each configuration runs in a fresh process (peak RSS is per process) with the real LiteMedSAM:
a real Kvasir image resized to S x S and a coarse map of R disjoint discs (every disc a region,
``min_fraction=0``). Measured in the same run:

- ``loaded``: the process after loading the model, reading the image and mining the prompts (the
  floor every configuration shares);
- ``ours``: ``Enhancer.enhance`` (per-region work inside each region's window);
- ``dense`` (the competitor, the previous release's paste): every region's logits upscaled to the
  full image (``Predictor.upscale``), compared and pasted at full size.

Target (issue 12): 64 regions at 4000 x 4000 under 1.5 GB for ``ours``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import cv2
import numpy as np

from .report import Row, report

TARGET_GB = 1.5


def _inputs(size: int, regions: int):
    from samedenhancer.bench import datasets

    image = cv2.resize(datasets.samples("kvasir")[0].image(), (size, size), interpolation=cv2.INTER_LINEAR)
    side = int(np.ceil(np.sqrt(regions)))
    step = size // side
    radius = int(step * 0.15)  # far enough apart that SAMRefiner's criterion merges no two discs
    coarse = np.zeros((size, size), np.uint8)
    for k in range(regions):
        cy, cx = (k // side) * step + step // 2, (k % side) * step + step // 2
        cv2.circle(coarse, (cx, cy), radius, 1, -1)
    return image, coarse


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def _child(variant: str, size: int, regions: int) -> dict:
    from samedenhancer import Enhancer

    image, coarse = _inputs(size, regions)
    enhancer = Enhancer("litemedsam", min_fraction=0.0)
    prompts = enhancer.mine(coarse)
    if len(prompts) != regions:
        raise RuntimeError(f"the synthetic map gave {len(prompts)} regions, not {regions}")
    out = {"variant": variant, "regions": len(prompts)}
    if variant == "ours":
        refined = enhancer.enhance(image, coarse).mask
        out["foreground"] = int((refined > 0).sum())
    elif variant == "dense":
        predictor = enhancer.predictor
        embedding = predictor.encode(image)
        low, _ = predictor.decode(embedding, box=prompts.boxes.astype(np.float32))
        logits = predictor.upscale(embedding, low[:, :1])[:, 0]  # (R, H, W) float32
        refined = np.zeros(coarse.shape, np.uint8)
        best = np.full(coarse.shape, -np.inf, np.float32)
        for i, class_id in enumerate(prompts.class_ids.tolist()):
            wins = (logits[i] > 0) & (logits[i] > best)
            best[wins], refined[wins] = logits[i][wins], class_id
        out["foreground"] = int((refined > 0).sum())
    out["peak_gb"] = _peak_gb()
    return out


def _run(variant: str, size: int, regions: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "samedenhancer.bench.memory", "--child", variant, "--size", str(size), "--regions", str(regions)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child {variant} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench memory", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, nargs="+", default=[2000, 4000], help="image side(s) in pixels")
    parser.add_argument("--regions", type=int, nargs="+", default=[16, 64], help="region count(s)")
    parser.add_argument("--child", choices=("loaded", "ours", "dense"), help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.size[0], args.regions[0])))
        return 0
    rows, failed = [], False
    for size in args.size:
        for regions in args.regions:
            measured = {variant: _run(variant, size, regions) for variant in ("loaded", "ours", "dense")}
            ours, dense = measured["ours"]["peak_gb"], measured["dense"]["peak_gb"]
            met = size < 4000 or regions < 64 or ours < TARGET_GB
            failed |= not met
            target = f"< {TARGET_GB} GB" + ("" if met else " (missed)") if (size, regions) == (4000, 64) else ""
            rows.append(Row(
                f"{regions} regions, {size}x{size}", ours, dense, "dense per-region paste (previous release)", unit="GB",
                target=target,
                extra={"loaded GB": round(measured["loaded"]["peak_gb"], 2),
                       "same foreground": measured["ours"]["foreground"] == measured["dense"]["foreground"]},
            ))
    notes = [f"{r.case}: the process after loading the model, image and prompts peaks at {r.extra['loaded GB']} GB; "
             f"ours and the competitor give the same foreground: {r.extra['same foreground']}" for r in rows]
    report("Peak RSS of refining R regions (fresh process per cell; real LiteMedSAM, ONNX Runtime CPU)", rows,
           as_json=args.json, notes=notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
