"""Run a command with ``DKDATA_PG_DSN`` naming a PostgreSQL server, the tests' own.

    python scripts/with_postgres.py cargo test --workspace

The Rust store tests need a live server, and ``cargo test`` starts none: this starts the same
throwaway cluster the Python suite uses (tests/services/postgres.py), unless ``DKDATA_PG_DSN``
already names one, runs the command with the DSN in its environment, and stops the cluster
after. A cluster that cannot start is an error here, so those tests never pass unrun.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services import postgres


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if os.environ.get(postgres.ENV_DSN):
        return subprocess.call(argv)
    try:
        server = postgres.start_cluster()
    except (postgres.ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        print(f"with_postgres: cannot start PostgreSQL: {exc}", file=sys.stderr)
        return 1
    try:
        return subprocess.call(argv, env={**os.environ, postgres.ENV_DSN: server.dsn})
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
