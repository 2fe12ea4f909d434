"""Interactive correction: a session (state: clicks, undo) over plain mechanism functions.

``mechanisms`` holds the prompt functions and the two corrections (MedicoSAM's prompt protocol for
point-trained models, the local graph cut for LiteMedSAM); ``session`` holds
:class:`InteractiveSession`; the evaluation protocol is ``samedenhancer.bench._interactive_protocol`` (run and reported by ``python -m samedenhancer.bench interactive``).
"""

from __future__ import annotations

from . import mechanisms
from .session import InteractiveSession

__all__ = ["InteractiveSession", "mechanisms"]
