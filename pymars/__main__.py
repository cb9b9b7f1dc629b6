"""``python -m pymars``: the command line (see pymars.cli)."""
import sys

from .cli import main

sys.exit(main())
