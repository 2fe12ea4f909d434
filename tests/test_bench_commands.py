"""Every speed and memory benchmark runs end to end at its smallest size and prints its table as
JSON on stdout: each row a measured case with a competitor and a finite, positive ratio.

The numbers are not the subject (timing assertions do not belong in tests; the reports in
``benchmarks/`` hold them): a benchmark that no longer runs after a change of the API is. Each runs
in its own process, as a user runs it, on the real LiteMedSAM and real images.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

#: name -> the smallest arguments that still run every part of the benchmark (distributed: see
#: tests/test_distributed.py, which runs the same Ray path on a real local cluster).
SMALLEST = {
    "core": ["--quick"],
    "enhance": ["--limit", "1"],
    "stream": ["--frames", "4", "--images", "2", "--size", "128x160"],
    "memory": ["--size", "500", "--regions", "2"],
    "embeddings": ["--images", "2", "--quality", "1", "--no-models"],
    "annotate": ["--images", "2"],
    "models": ["--no-cold", "--repeat", "1"],
}


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_the_benchmark_runs_and_prints_its_rows_as_json(name, data_root, litemedsam_dir, tmp_path):
    pytest.importorskip("torch", reason="the benchmarks' PyTorch references need the export extra (torch)")
    env = {**os.environ, "SAMEDENHANCER_DATA": str(data_root)}
    done = subprocess.run([sys.executable, "-m", "samedenhancer.bench", name, *SMALLEST[name], "--json"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["benchmark"] and report["machine"]["cores"] >= 1 and report["rows"]
    for row in report["rows"]:
        assert row["case"] and row["competitor_name"], row
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
    assert list(tmp_path.iterdir()) == []  # a benchmark writes a report only where --out says
