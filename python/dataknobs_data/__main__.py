"""``python -m dataknobs_data``: the same as the ``dataknobs-data`` command."""

import sys

from dataknobs_data.cli import main

if __name__ == "__main__":
    sys.exit(main())
