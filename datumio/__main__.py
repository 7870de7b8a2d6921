"""``python -m datumio COMMAND ...``: the ``datumio`` dispatcher, for the interpreter at hand
(whatever ``PATH`` holds)."""

import sys

from datumio.tools.entry import datumio

if __name__ == "__main__":
    sys.exit(datumio())
