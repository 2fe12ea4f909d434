"""What every sub-benchmark shares: the machine and versions, timing, the table and ``--json``."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

_VERSIONED = ("samedenhancer", "numpy", "onnxruntime", "opencv-python-headless", "scipy", "torch", "edt")


def machine() -> dict:
    """CPU model, cores, GPU (if any) and package versions, for the header of every table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = None
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            gpu = os.popen("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null").read().strip() or "CUDA"
    except ImportError:
        pass
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
    }


def measure(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1, min_time: float = 0.0) -> list[float]:
    """Wall-clock seconds of ``fn()`` over ``repeat`` runs (after ``warmup``), repeated further
    until ``min_time`` seconds have been spent in total."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeat or sum(times) < min_time:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


@dataclass
class Row:
    """One figure: ours against the competitor measured in the same run (seconds, lower is better),
    or any other pair of numbers where ``unit`` says what they are."""

    case: str
    ours: float
    competitor: float
    competitor_name: str
    unit: str = "ms"
    target: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """How many times faster (competitor / ours) for times; ours / competitor for rates."""
        if self.unit in ("fps", "img/s"):
            return self.ours / self.competitor if self.competitor else float("inf")
        return self.competitor / self.ours if self.ours else float("inf")


def write_report(out: str | os.PathLike | None, text: str) -> Path | None:
    """Write ``text`` to ``out`` (atomically, creating its folder) when a path is given; benchmarks
    and studies write nowhere else, so a run never touches the checkout unless told to."""
    if not out:
        return None
    from samedenhancer.io import write_text_atomically

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, text if text.endswith("\n") else text + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def report(title: str, rows: list[Row], *, as_json: bool = False, notes: list[str] | None = None, stream=None) -> str:
    """Print (and return) a Markdown table of ``rows`` under a header naming the machine."""
    stream = stream or sys.stdout
    info = machine()
    if as_json:
        text = json.dumps(
            {"benchmark": title, "machine": info, "rows": [asdict(r) | {"ratio": r.ratio} for r in rows], "notes": notes or []},
            indent=2,
        )
        print(text, file=stream)
        return text
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [
        f"## {title}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; Python {info['python']}; {versions}; {info['date']}",
        "",
        "| case | ours | competitor | competitor | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.ours:.3g} {r.unit} | {r.competitor:.3g} {r.unit} | {r.competitor_name} | {r.ratio:.2f}x | {r.target} |"
        )
    for note in notes or []:
        lines.append(f"\n{note}")
    text = "\n".join(lines)
    print(text, file=stream)
    return text
