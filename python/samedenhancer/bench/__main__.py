"""``python -m samedenhancer.bench NAME [options]``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
