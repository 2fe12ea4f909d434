"""``python -m samedenhancer.export MODEL [options]`` (the same as ``samedenhancer export``)."""

import sys

from samedenhancer.cli import main

sys.exit(main(["export", *sys.argv[1:]]))
