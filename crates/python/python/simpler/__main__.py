"""``python -m simpler demo``: the report of ``simpler run``, from Python."""

import sys

from .demo import main

sys.exit(main(sys.argv[1:]))
