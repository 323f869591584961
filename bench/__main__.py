"""``python -m bench``: see bench/cli.py and bench/README.md."""

import sys

from recon.engine.runtime import configure_process

configure_process()  # before bench.cli loads torch

from bench.cli import main  # noqa: E402

sys.exit(main())
