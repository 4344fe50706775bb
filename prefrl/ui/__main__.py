"""``python -m prefrl.ui RUN_DIR``: the labelling window (same as ``prefrl label RUN_DIR``)."""

import sys

from prefrl.ui.cli import main

if __name__ == "__main__":
    sys.exit(main())
