"""``python -m bettersynth ...`` is the same as ``bsynth ...``."""

import sys

from bettersynth.cli import main

sys.exit(main())
