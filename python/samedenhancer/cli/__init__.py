"""``samedenhancer`` command line: one module per subcommand, each adding its own parser.

enhance, pseudolabel, evaluate, stream, prior-maps, propagate, annotate, demo and export; every subcommand
reports a bad argument or input as ``samedenhancer COMMAND: message`` with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import annotate, demo, enhance, evaluate, export, prior_maps, propagate, pseudolabel, stream

#: The subcommands in the order ``--help`` lists them.
COMMANDS = (enhance, pseudolabel, evaluate, stream, prior_maps, propagate, annotate, demo, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samedenhancer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"samedenhancer {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
