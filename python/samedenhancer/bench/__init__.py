"""``python -m samedenhancer.bench NAME``: speed and memory benchmarks, each printing ratios against a
named competitor measured in the same run, with the machine and the versions.

The quality studies (Dice of the refinement, the paper's tables, U-Nets) are not part of the
package: they live in the repository's ``studies/`` folder (``python -m studies``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Every benchmark with what it measures, in the order ``--help`` lists them.
BENCHMARKS = {
    "core": "The C++ core (prompt mining, exact EDT in 2-D and 3-D) against OpenCV, SciPy, seung-lab edt and "
            "research-style prompt mining, single-threaded.",
    "models": "Encoder and decoder latency of the exported models on ONNX Runtime against PyTorch eager, and the "
              "cold start from a fresh process to the first mask.",
    "enhance": "Images per second of Enhancer.enhance on real images against the research-style pipeline "
               "(PyTorch eager, one decoder call per prompt).",
    "stream": "Sustained frames per second and end-to-end latency of the pipelined stream against the same "
              "frames refined one after another.",
    "memory": "Peak memory of refining many regions of a large image against decoding every region at full size.",
    "distributed": "Images per second of the Ray Data pipeline on a local cluster against the single-process "
                   "samedenhancer enhance.",
    "embeddings": "A second run and the pseudo-label loop with the embedding store against re-encoding, the store's "
                  "cost on a first run, and its bytes per embedding (fp32, fp16).",
    "annotate": "Opening an image in the annotate page once the background pass stored its embedding against a "
                "cold open that encodes it (the page's HTTP request, median and p95).",
}


def run(argv: list[str] | None, *, prog: str, table: dict[str, str], package: str, description: str) -> int:
    """Dispatch ``prog NAME [options]`` to ``package.NAME.main(options)``; ``--help`` lists ``table``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"  {name:<12} {text}" for name, text in table.items())
        + f"\n\n`{prog} NAME --help` lists the options of one.",
    )
    parser.add_argument("name", choices=tuple(table), metavar="NAME", help="which one (listed below)")
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in table:
        parser.parse_args(argv[:1] or ["--help"])  # prints help (exit 0) or the error (exit 2)
    module = importlib.import_module(f"{package}.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


def main(argv: list[str] | None = None) -> int:
    return run(argv, prog="python -m samedenhancer.bench", table=BENCHMARKS, package="samedenhancer.bench",
               description=__doc__.split("\n\n")[0].split(": ", 1)[1])
