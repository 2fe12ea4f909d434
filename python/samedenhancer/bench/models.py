"""``python -m samedenhancer.bench models [--json] [--threads 2] [--sam2] [--sam]``: encoder and decoder
latency of the exported models per engine against PyTorch eager measured in the same run (decoder
per box prompt, and per click: accumulated points plus the previous low-resolution logits as mask
prompt, the interactive protocol), export time, and cold start (fresh process to first mask)
against the same in PyTorch. ``--sam`` adds SAM ViT-B at 1024 px with random weights (speed only).

Targets (issue 4): CPU ONNX Runtime >= 2.5x PyTorch for the LiteMedSAM encoder on 2 threads, decoder
per prompt >= 2x. Needs the export extra (torch) for the PyTorch side; the exported model comes
from the cache (made once if missing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .report import Row, measure, median_ms, report

_COLD_OURS = """
import numpy as np, samedenhancer
p = samedenhancer.Predictor({model!r}, intra_op_threads={threads})
image = np.zeros((480, 640, 3), np.uint8); image[100:300, 200:450] = 180
p.set_image(image)
masks, iou, low = p.predict(box=[190, 90, 460, 310])
assert masks.any()
"""
_COLD_TORCH = """
import numpy as np, torch
torch.set_num_threads({threads})
from samedenhancer.export.torch_models import TorchReference, build_litemedsam
from samedenhancer.transforms import preprocess
from samedenhancer.engines import Manifest, static_manifest
import torch.nn.functional as F
model, _ = build_litemedsam()
ref = TorchReference("litemedsam", model)
image = np.zeros((480, 640, 3), np.uint8); image[100:300, 200:450] = 180
tensor, scale, valid = preprocess(image, Manifest.from_dict(static_manifest("litemedsam")))
features = ref.encode(tensor)
low, iou = ref.decode(features, box=np.array([[190, 90, 460, 310]]) * scale[0])
up = F.interpolate(torch.from_numpy(low[..., :valid[0], :valid[1]]), size=(480, 640), mode="bilinear", align_corners=False)
assert (up > 0).any()
"""


def _cold(code: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def _image() -> np.ndarray:
    from samedenhancer.bench import datasets

    if datasets.data_root() is not None:
        return datasets.samples("kvasir")[0].image()
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (530, 620, 3), dtype=np.uint8)


def _prompts(image: np.ndarray, count: int) -> np.ndarray:
    h, w = image.shape[:2]
    rng = np.random.default_rng(count)
    x0, y0 = rng.integers(0, w // 2, count), rng.integers(0, h // 2, count)
    return np.stack([x0, y0, x0 + w // 3, y0 + h // 3], 1)


def bench_model(name: str, folder, reference, threads: int, repeat: int, providers_list) -> list[Row]:
    """Rows for one exported model: encoder, decoder at 1 and 8 prompts, per engine."""
    import torch

    from samedenhancer import Predictor
    from samedenhancer.transforms import preprocess

    image = _image()
    rows = []
    torch.set_num_threads(threads)
    for providers in providers_list:
        predictor = Predictor(folder, providers=providers, intra_op_threads=threads)
        engine = predictor.providers[0].replace("ExecutionProvider", "")
        tensor, scale, _ = preprocess(image, predictor.manifest)
        device = "cuda" if engine in ("CUDA", "Tensorrt") else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            continue
        ref_model = reference.model.to(device)
        x = torch.from_numpy(tensor).to(device)
        encoder = reference.encoder.to(device)

        def torch_encode():
            with torch.no_grad():
                out = encoder(x)
            if device == "cuda":
                torch.cuda.synchronize()
            return out

        ours_enc = measure(lambda: predictor.encode(image), repeat=repeat, warmup=2)
        theirs_enc = measure(torch_encode, repeat=repeat, warmup=2)
        rows.append(Row(f"{name} encoder, {engine} ({threads} threads)" if device == "cpu" else f"{name} encoder, {engine}",
                        median_ms(ours_enc), median_ms(theirs_enc), f"PyTorch eager {device}", target=">= 2.5x" if device == "cpu" else ""))
        embedding = predictor.encode(image)
        features = reference.encode(tensor) if device == "cpu" else None
        for count in (1, 8):
            boxes = _prompts(image, count)
            model_boxes = (boxes.reshape(-1, 2, 2) * np.array(scale)).reshape(-1, 4)
            ours = measure(lambda: predictor.decode(embedding, box=boxes), repeat=repeat * 2, warmup=2)
            if features is not None:
                theirs = measure(lambda: reference.decode(features, box=model_boxes), repeat=repeat * 2, warmup=2)
                rows.append(Row(f"{name} decoder per prompt, {count} prompt(s), {engine}", median_ms(ours) / count,
                                median_ms(theirs) / count, "PyTorch eager cpu", target=">= 2x"))
        # One correction click: three accumulated points and the previous logits as mask prompt.
        h, w = image.shape[:2]
        clicks = np.array([[w * 0.5, h * 0.5], [w * 0.3, h * 0.6], [w * 0.7, h * 0.4]])
        labels = np.array([1, 0, 1])
        previous, _ = predictor.decode(embedding, point_coords=clicks[:1], point_labels=labels[:1])
        ours = measure(lambda: predictor.decode(embedding, point_coords=clicks, point_labels=labels, mask_input=previous),
                       repeat=repeat * 2, warmup=2)
        if features is not None:
            # The decoder graph sees the points plus the padding point SAM's prompt encoder appends.
            model_clicks = (clicks * np.array(scale))[None]
            theirs = measure(lambda: reference.decode(features, model_clicks, labels[None], mask_input=previous),
                             repeat=repeat * 2, warmup=2)
            rows.append(Row(f"{name} decoder per click (3 points + mask prompt), {engine}", median_ms(ours),
                            median_ms(theirs), "PyTorch eager cpu"))
        ref_model.to("cpu")
        encoder.to("cpu")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedenhancer.bench models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both ONNX Runtime and PyTorch")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sam2", action="store_true", help="also MedSAM2 (512 px) with random weights (speed only)")
    parser.add_argument("--sam", action="store_true", help="also SAM ViT-B (1024 px) with random weights (speed only)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start and export-time measurements")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("bench models needs torch (the export extra) to measure PyTorch eager", file=sys.stderr)
        return 2

    from samedenhancer.engines import available_providers
    from samedenhancer.registry import load_model, model_dir
    from samedenhancer.export import export, export_random
    from samedenhancer.export.torch_models import TorchReference, build_litemedsam, build_sam, build_sam2

    providers_list = [None]
    if "CUDAExecutionProvider" in available_providers():
        providers_list.append("cuda")
    if "TensorrtExecutionProvider" in available_providers():
        providers_list.append("tensorrt")
    notes = []
    rows: list[Row] = []
    load_model("litemedsam")
    folder = model_dir("litemedsam")
    model, _ = build_litemedsam()
    rows += bench_model("LiteMedSAM", folder, TorchReference("litemedsam", model), args.threads, args.repeat, providers_list)
    if args.sam2:
        sam2_model, _ = build_sam2("medsam2", seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            out = export_random("medsam2", out=os.path.join(tmp, "medsam2"), seed=0)
            rows += bench_model("MedSAM2-512 (random weights)", out, TorchReference("sam2", sam2_model), args.threads, args.repeat, providers_list)
    if args.sam:
        sam_model, _ = build_sam("sam_vit_b", "vit_b", seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            out = export_random("sam_vit_b", out=os.path.join(tmp, "sam_vit_b"), seed=0)
            rows += bench_model("SAM ViT-B-1024 (random weights)", out, TorchReference("sam", sam_model), args.threads, args.repeat, providers_list)
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            export("litemedsam", out=os.path.join(tmp, "litemedsam"))
            notes.append(f"Export of litemedsam to ONNX (build, trace, write, hash): {time.perf_counter() - start:.1f} s.")
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        ours = [_cold(_COLD_OURS.format(model=os.fspath(folder), threads=args.threads), env) for _ in range(3)]
        theirs = [_cold(_COLD_TORCH.format(threads=args.threads), env) for _ in range(3)]
        rows.append(Row("cold start: fresh process to first mask (cached export)", 1e3 * float(np.median(ours)),
                        1e3 * float(np.median(theirs)), "PyTorch (import, load weights, first mask)"))
    report("Models: exported engines vs PyTorch eager", rows, as_json=args.json, notes=notes)
    return 0
