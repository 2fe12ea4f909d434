"""``samedenhancer`` command line: one module per subcommand, each adding its own parser.

Every subcommand reports a bad argument or input as ``samedenhancer COMMAND: message`` with exit
status 2 (before any work), files that failed or could not be written with status 1 (after the
others were done), and success with 0; a reader that goes away (``samedenhancer evaluate ... | head``) ends the command
quietly, with the status a shell gives a command stopped by SIGPIPE (141).
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import annotate, demo, embed, enhance, evaluate, export, prior_maps, propagate, pseudolabel, stream

#: The subcommands by task, in the order ``--help`` lists them.
GROUPS = {
    "Refine masks": (enhance, stream, propagate, pseudolabel),
    "Encode once for every command": (embed,),
    "Review and measure": (annotate, evaluate),
    "Prepare training inputs": (prior_maps,),
    "Try it, and models": (demo, export),
}
COMMANDS = tuple(command for group in GROUPS.values() for command in group)
#: Exit status of a command whose reader went away (what a shell reports for SIGPIPE).
BROKEN_PIPE = 128 + 13

DESCRIPTION = """\
samedenhancer refines coarse medical segmentation masks, from any model, with a
Segment-Anything-family model (LiteMedSAM by default, on ONNX Runtime on the CPU or
a GPU): give it images and their coarse masks, get masks that follow the anatomy.
Around that core: whole folders, videos and cine loops, volumes and DICOM, a review
page with click correction, quality checks for pseudo-labels, and Ray scale-out."""

EXAMPLE = """\
example:
  samedenhancer demo                                    # try it on the shipped sample
  samedenhancer enhance images/ coarse/ --out refined/ --threshold 127 --overlay

Run `samedenhancer COMMAND --help` for what a command reads, writes and takes."""


def _command_list() -> str:
    lines = []
    for title, commands in GROUPS.items():
        lines.append(f"{title}:")
        lines += [f"  {command.NAME:<12} {command.SUMMARY}" for command in commands]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samedenhancer", usage="samedenhancer [-h] [--version] COMMAND ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"{DESCRIPTION}\n\n{_command_list()}", epilog=EXAMPLE)
    parser.add_argument("--version", action="version", version=f"samedenhancer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS,
                                prog="samedenhancer")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # a stdout without a file descriptor (captured in tests)
        pass
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE
    except (FileNotFoundError, ValueError, TypeError, ImportError) as error:  # a bad argument, input or install
        print(f"samedenhancer {args.command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an output that could not be written (a full disk, a file system gone read-only)
        where = f": {error.filename}" if error.filename else ""
        print(f"samedenhancer {args.command}: {error.strerror or error}{where}", file=sys.stderr)
        return 1
