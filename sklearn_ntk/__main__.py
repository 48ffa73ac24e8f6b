"""``python -m sklearn_ntk``: the ``sklearn-ntk`` command line (see :mod:`sklearn_ntk.cli`)."""

import sys

from sklearn_ntk.cli import main

if __name__ == "__main__":
    sys.exit(main())
