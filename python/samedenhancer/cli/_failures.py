"""What the subcommands share: per-file failures and their report."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class Failure:
    """One input the command could not process, and why."""

    stem: str
    error: str


def report_failures(failures: list[Failure], total: int) -> None:
    """Print the failures (if any) at the end of a run, one per line."""
    if not failures:
        return
    print(f"\n{len(failures)} of {total} failed:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure.stem}: {failure.error}", file=sys.stderr)
