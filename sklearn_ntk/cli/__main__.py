"""``python -m sklearn_ntk.cli``: the same command line as ``python -m sklearn_ntk``."""

import sys

from sklearn_ntk.cli import main

if __name__ == "__main__":
    sys.exit(main())
