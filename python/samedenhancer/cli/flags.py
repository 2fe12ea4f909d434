"""The flags the subcommands share, declared once, the one function that turns the refinement
flags into an :class:`~samedenhancer.EnhanceOptions` and the one that turns the embedding store
flags into an :class:`~samedenhancer.EmbeddingStore`.

A subcommand asks for the shared flags by name (``flags.add(parser, "model", "threads", "quiet")``)
and may reword a flag's help for itself (``out="output folder: <stem>.png per image"``): the name,
type and default stay the same everywhere. Every on/off flag is an
:class:`argparse.BooleanOptionalAction` (``--overlay`` / ``--no-overlay``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import io
from ..embeddings import EmbeddingStore
from ..enhancer import POLICIES, EnhanceOptions


def count(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


#: The shared flags: option strings and argparse keywords, by name.
SHARED = {
    "model": (("--model",), dict(default="litemedsam", metavar="NAME|DIR",
                                 help="model name or exported model folder (default litemedsam, exported on first use)")),
    "providers": (("--providers",), dict(nargs="+", default=None, metavar="PROVIDER",
                                         help="ONNX Runtime execution providers, e.g. cuda tensorrt (default: CPU)")),
    "threads": (("--threads",), dict(type=count, default=None, metavar="N",
                                     help="ONNX Runtime threads per operator (default: one per core)")),
    "threshold": (("--threshold",), dict(type=float, default=None, metavar="T",
                                         help="threshold of soft coarse maps: 0.5 for probabilities, 127 for 0..255 maps")),
    "out": (("--out",), dict(required=True, metavar="DIR", help="output folder")),
    "resume": (("--resume",), dict(action=argparse.BooleanOptionalAction, default=False,
                                   help="skip images whose outputs exist and read back (a 0-byte or truncated output "
                                        "is redone)")),
    "quiet": (("--quiet",), dict(action=argparse.BooleanOptionalAction, default=False,
                                 help="no progress bar, only the end summary")),
    "ray": (("--ray",), dict(nargs="?", const="", default=None, metavar="ADDRESS",
                             help="run on a Ray cluster (the ray extra): ADDRESS of a running cluster (ray://HOST:10001, "
                                  "auto), or none for a local one")),
    "workers": (("--workers",), dict(type=count, default=None, metavar="N",
                                     help="Ray actors, one model session each (default: one per 2 cluster CPUs)")),
    "overlay": (("--overlay",), dict(action=argparse.BooleanOptionalAction, default=False,
                                     help="also write OUT/overlay/<stem>.png: the coarse (yellow) and refined (cyan) "
                                          "outlines over the image, small")),
}


#: The help of ``--threads`` for commands with ``--ray``.
RAY_THREADS = "ONNX Runtime threads per operator (default: one per core; with --ray: per worker, default cluster CPUs / workers)"


def add(parser: argparse.ArgumentParser, *names: str, **helps: str | dict) -> None:
    """Add the shared flags ``names`` (and those named in ``helps``) to ``parser``, in that order.

    ``helps`` rewords a flag for this command: a string replaces its help, a dict updates its
    argparse keywords (``out=dict(required=False, default="demo.png", help=...)``).
    """
    for name in [*names, *(n for n in helps if n not in names)]:
        strings, keywords = SHARED[name]
        keywords = dict(keywords)
        change = helps.get(name)
        keywords.update({"help": change} if isinstance(change, str) else change or {})
        parser.add_argument(*strings, **keywords)


def add_store(parser: argparse.ArgumentParser, *, required: bool = False, default: str = "") -> None:
    """The embedding store flags (``--embeddings DIR``, ``--embeddings-max-gb``,
    ``--embeddings-fp16``), as one group, for every command that encodes images; ``default`` says
    what the command does without ``--embeddings`` (``annotate``: a temporary store)."""
    group = parser.add_argument_group("embedding store (encode each image once, across runs and commands)")
    group.add_argument("--embeddings", required=required, default=None, metavar="DIR",
                       help="embedding store folder: an image already in it costs no encoder call, a new one is "
                            "encoded and stored (created if new; a folder the store did not make is refused; it may "
                            "not be, hold or lie in an input or the output)" + (f" (default: {default})" if default else ""))
    group.add_argument("--embeddings-max-gb", type=float, default=None, metavar="GB",
                       help="size limit of the store: the least recently used embeddings are removed beyond it "
                            "(default: none)")
    group.add_argument("--embeddings-fp16", action=argparse.BooleanOptionalAction, default=False,
                       help="store float16 embeddings: half the disk, masks may differ slightly from a float32 store's "
                            "(a store holds one kind; default: float32, the masks of a run without a store)")


def open_store(args: argparse.Namespace, inputs: Mapping[str, "str | os.PathLike | None"], *,
               files: Mapping[str, Iterable] | None = None, out: "str | os.PathLike | None" = None,
               write_errors: str = "warn") -> EmbeddingStore | None:
    """The store of the :func:`add_store` flags (``None`` without ``--embeddings``), checked
    before any work: the folder may not be, lie in, or hold an input (``inputs``, ``files``) or
    ``out``; it is created when new, and a folder the store did not make is refused
    (:class:`~samedenhancer.EmbeddingStore`)."""
    if args.embeddings is None:
        if args.embeddings_max_gb is not None or args.embeddings_fp16:
            raise ValueError("--embeddings-max-gb and --embeddings-fp16 go with --embeddings DIR")
        return None
    folder = Path(args.embeddings)
    resolved = folder.resolve()
    named = [(label, path) for label, path in inputs.items() if path is not None]
    for label, path in [*named, *([("--out", out)] if out is not None else [])]:
        other = Path(path).resolve()
        if other == resolved or resolved in other.parents or (label == "--out" and other in resolved.parents):
            where = "is" if other == resolved else "holds" if resolved in other.parents else "lies in"
            kind = "file" if other.is_file() else "folder"
            raise ValueError(f"--embeddings {folder} {where} the {label} {kind} {other}: the store must be a folder of its "
                             "own, apart from the inputs and the outputs; choose another folder")
    io.prepare_output_folder(folder, dict(named), files=files, name="--embeddings")
    return EmbeddingStore(folder, args.embeddings_max_gb, fp16=args.embeddings_fp16, write_errors=write_errors)


def store_detail(store: EmbeddingStore | None) -> str:
    """The end summary's word on the store: ``"embeddings: 98 reused, 2 encoded"`` (empty without one)."""
    if store is None:
        return ""
    stats = store.stats
    extra = "".join(f", {count} {what}" for count, what in ((stats.rejected, "untrusted entries encoded again"),
                                                             (stats.evicted, "evicted")) if count)
    return f"embeddings: {stats.hits} reused, {stats.misses} encoded{extra}"


def add_method(parser: argparse.ArgumentParser, *, threshold: str | None = None) -> None:
    """The flags of :class:`~samedenhancer.EnhanceOptions` (how a mask is refined), as one group."""
    group = parser.add_argument_group("how masks are refined")
    strings, keywords = SHARED["threshold"]
    group.add_argument(*strings, **(keywords | ({"help": threshold} if threshold else {})))
    group.add_argument("--policy", choices=POLICIES, default=None,
                       help="prompts given to the model (default: the model's own; box for LiteMedSAM)")
    group.add_argument("--prior", choices=("multi", "single"), default=None,
                       help="single keeps the largest region per class (default multi)")
    group.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None,
                       help="keep coarse regions the model disagrees with (default: on for multi-class maps "
                            "with the box policy)")
    group.add_argument("--fusion", action=argparse.BooleanOptionalAction, default=None,
                       help="fuse the model with a soft coarse map (default: on with the box policy)")
    group.add_argument("--box-rounds", type=int, default=None, metavar="N",
                       help="extra box rounds per region (default: 2 with the box policy on soft maps, else 0)")


#: The :class:`~samedenhancer.EnhanceOptions` fields the flags of :func:`add_method` set.
METHOD_FIELDS = ("threshold", "policy", "prior", "gate", "fusion", "box_rounds")


def enhance_options(args: argparse.Namespace) -> EnhanceOptions:
    """The :class:`~samedenhancer.EnhanceOptions` of the flags given (those left out keep their
    defaults): the one object the command hands to the Enhancer, the stream or the Ray path."""
    return EnhanceOptions(**{name: getattr(args, name) for name in METHOD_FIELDS if getattr(args, name, None) is not None})
