"""Docs are code: every ```python and ```bash block of README.md and docs/**/*.md runs here.

Each page runs in a fresh temporary folder holding a tiny workspace made from the shipped sample
(``samedenhancer.data.fundus()``), named as the guides name it: ``images/`` and ``coarse/`` (two
images and their 0..255 coarse maps, paired by stem), ``masks/`` (stand-in ground truth, only so
that ``evaluate`` has something to score), ``clip.avi`` with ``clip_coarse/`` (three video frames and
a coarse mask per frame) and ``series/`` (pydicom's own five-slice CT series). A page's python
blocks run in order in one namespace, its bash blocks with ``bash -euo pipefail``, all in one fresh
process with the real LiteMedSAM, so a traceback points at the Markdown line that failed.

A block that cannot run here (it installs the package, needs a GPU, a user checkpoint, a cluster
address or serves a page until stopped) says so on the line before its fence::

    <!-- docs-test: skip (needs a CUDA GPU) -->

and is reported as skipped with that reason; every other block must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = tuple([ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])
#: Languages whose blocks run, and those shown only (output, configuration). Any other language,
#: or a fence without one, is an error: an example cannot escape the runner by its spelling.
RUN = ("python", "bash")
SHOWN = ("text", "yaml", "toml", "csv", "json")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<language>[^\s`]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
SKIP = re.compile(r"^\s*skip\s*\((?P<reason>[^()]*\S[^()]*)\)\s*$")
TIMEOUT_S = 900


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the block's first code line
    language: str
    code: str
    skip: str | None  # the reason of a skip marker


def parse(text: str, page: str) -> tuple[list[Block], list[str]]:
    """The fenced blocks of one Markdown page, and the problems found (unclosed fences, markers
    that are malformed or stand before no runnable block)."""
    lines = text.splitlines()
    blocks, problems, pending = [], [], None
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if marker:
            skip = SKIP.match(marker.group("body"))
            if skip is None:
                problems.append(f"{page}:{i + 1}: a docs-test marker reads 'docs-test: skip (reason)', got {lines[i]!r}")
            pending = (i + 1, skip.group("reason").strip() if skip else None)
            i += 1
            continue
        opening = FENCE.match(lines[i])
        if opening is None:
            if pending and lines[i].strip():
                problems.append(f"{page}:{pending[0]}: the docs-test marker is not on the line before a fence")
                pending = None
            i += 1
            continue
        indent, fence, language = opening.group("indent"), opening.group("fence"), opening.group("language")
        end = i + 1
        while end < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        if end == len(lines):
            problems.append(f"{page}:{i + 1}: the fence is never closed")
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
        reason = None
        if pending is not None:
            if language not in RUN:
                problems.append(f"{page}:{pending[0]}: a docs-test marker stands before a ```{language} block, which never runs")
            reason = pending[1]
            pending = None
        blocks.append(Block(page, i + 2, language, "\n".join(body) + "\n", reason))
        i = end + 1
    if pending:
        problems.append(f"{page}:{pending[0]}: the docs-test marker is not on the line before a fence")
    return blocks, problems


PARSED = {page: parse(path.read_text(encoding="utf-8"), page) for path in PAGES for page in [path.relative_to(ROOT).as_posix()]}
RUNNABLE = {page: [b for b in blocks if b.language in RUN and b.skip is None] for page, (blocks, _) in PARSED.items()}
SKIPPED = [b for blocks, _ in PARSED.values() for b in blocks if b.language in RUN and b.skip is not None]


def test_every_block_is_run_or_says_why_not():
    problems = [p for _, found in PARSED.values() for p in found]
    for blocks, _ in PARSED.values():
        problems += [f"{b.page}:{b.line - 1}: a ```{b.language or '(no language)'} block neither runs ({', '.join(RUN)}) "
                     f"nor is shown only ({', '.join(SHOWN)})" for b in blocks if b.language not in RUN + SHOWN]
    assert not problems, "\n".join(problems)
    assert sum(map(len, RUNNABLE.values())) >= 20, "the runner found almost no example: is the parser broken?"


def test_the_parser_finds_blocks_skip_reasons_and_bad_markers():
    page = "\n".join([
        "text", "<!-- docs-test: skip (needs a GPU) -->", "```python", "x = 1", "```",
        "  ```bash", "  echo indented", "  ```",
        "<!-- docs-test: skip -->", "```bash", "true", "```",
        "<!-- docs-test: skip (stray) -->", "a paragraph, not a fence",
        "```text", "shown", "```", "```python", "never closed",
    ])
    blocks, problems = parse(page, "page.md")
    assert [(b.line, b.language, b.code, b.skip) for b in blocks] == [
        (4, "python", "x = 1\n", "needs a GPU"), (7, "bash", "echo indented\n", None), (11, "bash", "true\n", None),
        (16, "text", "shown\n", None), (19, "python", "never closed\n", None)]
    assert [p.split(": ", 1)[0] for p in problems] == ["page.md:9", "page.md:13", "page.md:18"]


def test_the_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "../shared" not in readme and "shared/data" not in readme
    for path in (*PAGES, *sorted((ROOT / "benchmarks").glob("*.md"))):
        assert "METHOD.md" not in path.read_text(encoding="utf-8"), f"{path.relative_to(ROOT)} cites METHOD.md"
    # GitHub shows the README outside the site: its relative links must name files of the checkout
    targets = re.findall(r"\]\((?!https?://)([^)#\s]+)", readme)
    assert targets and not [t for t in targets if not (ROOT / t).exists()]
    # the quick start: one command runs the demo, one the tests, and CI runs that test command
    blocks = [b.code.strip() for b in PARSED["README.md"][0] if b.language == "bash"]
    assert "bash scripts/install.sh && samedenhancer demo" in blocks[0]
    assert "bash scripts/install.sh dev && python -m pytest" in blocks[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "bash scripts/install.sh dev && python -m pytest" in ci


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """The tiny workspace every page starts from (see the module docstring)."""
    import cv2

    from samedenhancer.data import fundus

    root = tmp_path_factory.mktemp("docs-workspace")
    sample = fundus()
    pairs = {"fundus": (sample.image, sample.coarse), "fundus_flipped": (sample.image[:, ::-1], sample.coarse[:, ::-1])}
    for folder in ("images", "coarse", "masks", "clip_coarse"):
        (root / folder).mkdir()
    for stem, (image, coarse) in pairs.items():
        assert cv2.imwrite(str(root / "images" / f"{stem}.png"), np.ascontiguousarray(image[..., ::-1]))
        assert cv2.imwrite(str(root / "coarse" / f"{stem}.png"), np.ascontiguousarray(coarse))
        # a stand-in truth: the coarse map at its threshold, so that `evaluate` has something to score
        assert cv2.imwrite(str(root / "masks" / f"{stem}.png"), np.where(coarse > sample.threshold, 255, 0).astype(np.uint8))
    height, width = sample.coarse.shape
    video = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    for k, shift in enumerate((0, 4, 8)):
        video.write(np.ascontiguousarray(np.roll(sample.image, shift, axis=1)[..., ::-1]))
        assert cv2.imwrite(str(root / "clip_coarse" / f"frame_{k:03d}.png"), np.roll(sample.coarse, shift, axis=1))
    video.release()
    pydicom = pytest.importorskip("pydicom", reason="the volume guide's series needs the dicom extra (pydicom)")
    (root / "series").mkdir()
    for path in sorted((Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests" / "98892001" / "CT5N").iterdir()):
        shutil.copyfile(path, root / "series" / f"{path.name}.dcm")  # the folder commands find DICOM files by suffix
    return root


DRIVER = """\
import json, subprocess, sys
namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    print(f"\\n===== {block['page']}:{block['line']} ({block['language']})", flush=True)
    if block["language"] == "python":
        # padded so that a traceback names the Markdown file and line
        exec(compile("\\n" * (block["line"] - 1) + block["code"], block["path"], "exec"), namespace)
    else:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block["code"]])
        if done.returncode:
            sys.exit(f"{block['page']}:{block['line']}: the bash block exited with status {done.returncode}")
"""


@pytest.mark.parametrize("page", [page for page, blocks in RUNNABLE.items() if blocks])
def test_page_examples_run(page, workspace, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(workspace, work)
    program = tmp_path / "driver.py"
    program.write_text(DRIVER, encoding="utf-8")
    blocks = tmp_path / "blocks.json"
    blocks.write_text(json.dumps([asdict(b) | {"path": str(ROOT / b.page)} for b in RUNNABLE[page]]), encoding="utf-8")
    # the commands of this environment first; `python -m studies` runs "from the repository root"
    env = dict(os.environ, MPLBACKEND="Agg", PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, str(program), str(blocks)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"an example of {page} failed:\n{output[-12000:]}"
    assert output.count("\n===== ") == len(RUNNABLE[page])  # every block ran


@pytest.mark.parametrize("block", SKIPPED, ids=[f"{b.page}:{b.line}" for b in SKIPPED])
def test_marked_block_is_skipped(block):
    pytest.skip(f"{block.page}:{block.line}: {block.skip}")
