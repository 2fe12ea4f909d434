"""``samedenhancer annotate``: serve a local page to review refined masks and correct them with clicks."""

from __future__ import annotations

import argparse
import sys
import tempfile

from ..embeddings import EmbeddingStore
from ..predictor import as_predictor
from . import flags

NAME = "annotate"
SUMMARY = "review and correct masks in the browser; writes OUT/<stem>.png, annotations.csv"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, description="Serve a local web page to review the refined mask of each image and correct it with "
                          "clicks. Writes OUT/<stem>.png (the accepted mask; --format) and OUT/annotations.csv "
                          "(one row per accept or skip); a restarted server picks up where the last one stopped.")
    p.add_argument("images", help="folder of images (png/jpg/tif/bmp/npy/dcm)")
    p.add_argument("--coarse", default=None, help="folder of coarse masks, matched to the images by stem")
    flags.add(p, "out", out="folder for the accepted masks and annotations.csv")
    p.add_argument("--format", choices=("png", "npy", "tif"), default="png", help="format of the written masks")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1); one that is not loopback needs --allow-remote")
    p.add_argument("--allow-remote", action=argparse.BooleanOptionalAction, default=False,
                   help="allow a --host other machines can reach (no authentication: a trusted network only)")
    p.add_argument("--port", type=int, default=None, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--prefetch", action=argparse.BooleanOptionalAction, default=True,
                   help="refine the next image in the background while one is shown (default: on)")
    p.add_argument("--precompute", action=argparse.BooleanOptionalAction, default=True,
                   help="encode every image into the embedding store in the background, so that opening one is "
                        "fast (default: on)")
    flags.add(p, "model", "providers", "threads", "threshold")
    flags.add_store(p, default="a temporary store, removed when the server stops")
    p.set_defaults(func=run)


def open_store(args: argparse.Namespace) -> tuple[EmbeddingStore, tempfile.TemporaryDirectory | None]:
    """The store of ``--embeddings`` (checked as every command checks it) or, without it, one in a
    temporary folder (returned too, for the caller to remove when the server stops)."""
    scratch = None
    if args.embeddings is None:
        scratch = tempfile.TemporaryDirectory(prefix="samedenhancer-annotate-")
        args = argparse.Namespace(**{**vars(args), "embeddings": scratch.name})
    try:
        store = flags.open_store(args, {"images": args.images, "coarse": args.coarse}, out=args.out)
    except (TypeError, ValueError):
        if scratch is not None:
            scratch.cleanup()
        raise
    return store, scratch


def run(args: argparse.Namespace) -> int:
    from ..annotate import Annotator, Catalog
    from ..annotate.backend import ModelBackend

    try:
        from ..annotate.server import DEFAULT_PORT, check_host, serve
    except ImportError as error:
        raise ValueError(f"annotate needs the web server: pip install 'samedenhancer[annotate]' ({error})") from None
    port = DEFAULT_PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {port}")
    loopback = check_host(args.host, args.allow_remote)
    catalog = Catalog(args.images, args.coarse, out=args.out, format=args.format)  # checks --out before any work
    for name, reason in catalog.refused:
        print(f"left out {name}: {reason}", file=sys.stderr)
    if not loopback:
        print(f"warning: listening on {args.host}, not loopback: anyone who can reach this machine can see the "
              "images and write masks into --out (no authentication)", file=sys.stderr)
    store, scratch = open_store(args)
    annotator = None
    try:
        model = as_predictor(args.model, providers=args.providers, threads=args.threads, embeddings=store)
        annotator = Annotator(catalog, ModelBackend(model, threshold=args.threshold), threshold=args.threshold,
                              prefetch=args.prefetch, precompute=args.precompute)
        done = annotator.listing().done
        print(f"{len(catalog)} images ({done} done) from {args.images}; masks go to {catalog.out}; embeddings in "
              f"{store.path}" + (" (temporary)" if scratch is not None else ""), file=sys.stderr)
        try:
            serve(annotator, args.host, port, allow_remote=args.allow_remote,
                  announce=lambda url: print(f"annotate: open {url} in a browser (Ctrl+C stops)", flush=True))
        except OSError as error:
            raise ValueError(f"cannot listen on {args.host}:{port}: {error.strerror or error}") from None
    except KeyboardInterrupt:
        pass
    finally:
        if annotator is not None:
            annotator.close()  # the background pass ends before its store is removed
        if scratch is not None:
            scratch.cleanup()
    return 0
