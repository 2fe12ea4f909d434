"""Dispatch ``python -m samedenhancer.bench <name> [options]`` to ``samedenhancer.bench.<name>.main``."""

from __future__ import annotations

import importlib
import sys

from . import SUBCOMMANDS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        print(f"usage: python -m samedenhancer.bench {{{','.join(SUBCOMMANDS)}}} [--json] [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"samedenhancer.bench.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
