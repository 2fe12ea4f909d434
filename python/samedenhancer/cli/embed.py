"""``samedenhancer embed``: fill an embedding store with a folder of images, so that every later
command given ``--embeddings`` on them encodes nothing."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .. import runner
from ..predictor import as_predictor
from . import flags
from .enhance import silenced_stderr

NAME = "embed"
SUMMARY = "encode a folder of images once; writes the --embeddings store"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Encode every image of IMAGES (a folder or one file) into the embedding store --embeddings DIR, "
                          "exactly as enhance, pseudolabel, prior-maps and demo encode them: those commands, given the "
                          "same --embeddings and --model, then encode nothing. An image already in the store costs "
                          "only its hash, so a rerun resumes. Writes DIR/<2 digits>/<key>.npz per image.")
    p.add_argument("images", help="image file or folder (png/jpg/tif/bmp/npy/dcm)")
    flags.add(p, "model", "providers", "quiet", "workers", threads=flags.RAY_THREADS,
              ray=flags.SHARED["ray"][1]["help"] + "; the store must be a folder every worker sees")
    flags.add_store(p, required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.ray is None:
        raise ValueError("--workers applies to --ray runs")
    work = runner.plan(runner.embed_sources(args.images), None)
    store = flags.open_store(args, {"images": args.images}, files=work.input_files(), write_errors="raise")
    if args.ray is not None:
        from ..distributed import embed_dataset

        with silenced_stderr() if args.quiet else contextlib.nullcontext():
            report = embed_dataset(args.images, store, address=args.ray or None, num_workers=args.workers,
                                   threads_per_worker=args.threads, model=args.model, providers=args.providers)
        print(report.summary(), file=sys.stderr)
        return 1 if report.failures else 0
    predictor = as_predictor(args.model, providers=args.providers, threads=args.threads, embeddings=store)
    outcome = runner.run(work, lambda item: runner.embed_file(predictor, item), command=NAME, quiet=args.quiet)
    print(outcome.summary(store.path, detail=flags.store_detail(store)), file=sys.stderr)
    return outcome.exit_code
