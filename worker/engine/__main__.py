"""`python -m worker.engine reconstruct|example ...`: the `recon` engine commands."""

import sys

from worker.engine.cli import main

sys.exit(main())
