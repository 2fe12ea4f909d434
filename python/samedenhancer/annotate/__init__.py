"""``samedenhancer annotate``: a local web page to review refined masks and correct them with clicks.

- :mod:`.catalog`: the images of the given folders (nothing else is served), OUT and its
  ``annotations.csv`` ledger;
- :mod:`.workflow`: open (refine), click, undo, reset, box, accept, skip, with versions and
  operation ids so that queued, replayed or concurrent requests stay consistent; no web code;
- :mod:`.backend`: the real model (one Predictor for the Enhancer and the
  :class:`samedenhancer.InteractiveSession` of each image);
- :mod:`.server`: the Starlette app and the uvicorn server (the ``annotate`` extra);
- ``static/``: the page (plain HTML, CSS and JavaScript on a canvas, no external asset).

Only :mod:`.server` needs the ``annotate`` extra; the rest imports with the runtime.
"""

from __future__ import annotations

from .catalog import LEDGER_COLUMNS, STATES, Catalog, Entry, Ledger
from .views import AnnotateError, Conflict, Invalid, UnknownImage, Unprocessable
from .workflow import Annotator

__all__ = [
    "LEDGER_COLUMNS",
    "STATES",
    "AnnotateError",
    "Annotator",
    "Catalog",
    "Conflict",
    "Entry",
    "Invalid",
    "Ledger",
    "UnknownImage",
    "Unprocessable",
]
