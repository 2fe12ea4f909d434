"""The flags the subcommands share, declared once, and the one function that turns the refinement
flags into an :class:`~samedenhancer.EnhanceOptions`.

A subcommand asks for the shared flags by name (``flags.add(parser, "model", "threads", "quiet")``)
and may reword a flag's help for itself (``out="output folder: <stem>.png per image"``): the name,
type and default stay the same everywhere. Every on/off flag is an
:class:`argparse.BooleanOptionalAction` (``--overlay`` / ``--no-overlay``).
"""

from __future__ import annotations

import argparse

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
    "overlay": (("--overlay",), dict(action=argparse.BooleanOptionalAction, default=False,
                                     help="also write OUT/overlay/<stem>.png: the coarse (yellow) and refined (cyan) "
                                          "outlines over the image, small")),
    "embeddings": (("--embeddings",), dict(default=None, metavar="DIR",
                                           help="embedding store folder: images encoded once are read back from it by "
                                                "every later run and command (a new or empty folder becomes a store)")),
    "embeddings_max_gb": (("--embeddings-max-gb",), dict(type=float, default=None, metavar="GB",
                                                         help="size limit of the embedding store; the least recently "
                                                              "used embeddings go first (default: none)")),
    "embeddings_fp16": (("--embeddings-fp16",), dict(action=argparse.BooleanOptionalAction, default=False,
                                                     help="store embeddings as float16: half the disk, masks may "
                                                          "differ slightly (default: float32, masks unchanged)")),
}


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
