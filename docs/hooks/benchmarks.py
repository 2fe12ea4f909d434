"""MkDocs hook: publish the reports of ``benchmarks/`` (Markdown and figures) under ``benchmarks/``
of the site, so that results live once, beside the package, and the pages link to them."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SOURCE = Path(__file__).resolve().parents[2] / "benchmarks"
PUBLISHED = (".md", ".png")


def on_files(files, config):
    for path in sorted(SOURCE.iterdir()):
        if path.suffix in PUBLISHED:
            files.append(File(f"benchmarks/{path.name}", str(SOURCE.parent), config["site_dir"],
                              config["use_directory_urls"]))
    return files
