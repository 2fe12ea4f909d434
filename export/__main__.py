"""``python -m samedenhancer.export MODEL [options]`` (same as ``samedenhancer export``)."""

import sys

from . import main

sys.exit(main())
