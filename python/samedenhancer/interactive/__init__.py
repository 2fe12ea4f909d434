"""Interactive correction: a session (state: clicks, undo) over plain mechanism functions.

``mechanisms`` holds the prompt functions and the two corrections (MedicoSAM's prompt protocol for
point-trained models, the local graph cut for LiteMedSAM); ``session`` holds
:class:`InteractiveSession`. The evaluation protocol (simulated users, Dice per click) stands beside
the package with the quality studies; its results are in ``benchmarks/INTERACTIVE.md``.
"""

from __future__ import annotations

from . import mechanisms
from .session import InteractiveSession

__all__ = ["InteractiveSession", "mechanisms"]
