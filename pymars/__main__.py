"""``python -m pymars``: the command line (see pymars.cli)."""
import sys

from pymars.cli import main

sys.exit(main())
