"""MkDocs hook: the docstrings are numpydoc with Sphinx roles (``:class:`Enhancer```), which
mkdocstrings renders literally; show them as the code they name (``~pkg.Name`` as ``Name``, as
Sphinx does)."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|obj|exc|const):(?=<code>)")
SHORT = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)</code>")


def on_page_content(html, page, config, files):
    return SHORT.sub(r"<code>\1</code>", ROLE.sub("", html))
