"""``python -m mutation``: the same as ``python mutation/mutants.py``."""

import sys

from mutation.mutants import main

sys.exit(main())
