"""`python -m recon.engine reconstruct|example ...`: the `recon` engine commands."""

import sys

from recon.engine.cli import main

sys.exit(main())
