"""``python -m bitflip_lib.grading [grade|generate] ...`` (see :mod:`bitflip_lib.grading.cli`)."""
from __future__ import annotations

import sys

from bitflip_lib.grading.cli import main

if __name__ == "__main__":
    sys.exit(main())
