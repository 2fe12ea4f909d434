"""Connected components, the exact distance transform and prompt mining: the numpy facade of the
C++ core (``samedenhancer._core``), one module per concern: :mod:`.labels` (coarse masks in),
:mod:`.geometry` (components, distance transform), :mod:`.prompts` (mining).

Every function validates its input here (the single place where coarse masks are checked and soft
maps thresholded: :func:`as_label_map`), hands C-contiguous arrays to the C++ core, which releases
the GIL, and returns fixed result types.
"""

from .geometry import ComponentStats, connected_components, distance_transform
from .labels import as_label_map, check_label_map, coarse_log_odds, validate_threshold
from .prompts import MiningOptions, Prompts, mine_prompts

__all__ = [
    "ComponentStats",
    "MiningOptions",
    "Prompts",
    "as_label_map",
    "check_label_map",
    "coarse_log_odds",
    "connected_components",
    "distance_transform",
    "mine_prompts",
    "validate_threshold",
]
