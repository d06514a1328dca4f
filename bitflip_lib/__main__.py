"""``python -m bitflip_lib ...`` runs the ``bitflip`` command line."""
from bitflip_lib.cli import main

raise SystemExit(main())
